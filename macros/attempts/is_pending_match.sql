{% macro is_pending_match(has_attempts, last_identifiers_hash, identifiers_hash, last_outcome) -%}
    {#- Nothing to learn from the last attempt: never tried, new identifiers since, or its
        match was undone (the link is gone). The one definition of "pending", used by the
        backlog view (`reason_bucket = 'pending_match'`) and the queue (`status = 'pending'`). -#}
    (
        not ({{ has_attempts }})
        or {{ last_identifiers_hash }} <> {{ identifiers_hash }}
        or {{ last_outcome }} = 'matched'
    )
{%- endmacro %}
