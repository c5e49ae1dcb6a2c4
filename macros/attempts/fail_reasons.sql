{#- Every `fail_reason` the matcher records, in the order the metrics list their
    `failed_<reason>` columns. The one list for the SQL that counts them, retries them at
    a registry change and checks the backlog's reason buckets; the YAML tests
    (`accepted_values`) repeat it. -#}
{%- macro fail_reasons() -%}
    {{ return([
        'missing_identifiers', 'no_match', 'conflict', 'low_confidence', 'ambiguous',
        'name_mismatch', 'person_changed',
    ]) }}
{%- endmacro %}

{#- True when a failed attempt's `fail_reason` (a SQL expression) is one a registry change
    can undo: the backlog view retries such a lead at the change, and `backlog_due` takes
    it as a candidate then. -#}
{%- macro retries_on_registry_change(fail_reason) -%}
    {#- every fail reason but a lead's own missing identifiers, which no registry fixes -#}
    {{ fail_reason }} in (
        {%- for reason in fail_reasons() | reject('equalto', 'missing_identifiers') -%}
            {{ sql_literal(reason) }}{{ ', ' if not loop.last }}
        {%- endfor -%}
    )
{%- endmacro %}

{#- True when `reason_bucket` (a SQL expression) is a bucket the backlog view knows: a
    fail reason, or `pending_match` (not attempted since a change). -#}
{%- macro is_known_reason_bucket(reason_bucket) -%}
    {{ reason_bucket }} in (
        'pending_match'
        {%- for reason in fail_reasons() -%}
            , {{ sql_literal(reason) }}
        {%- endfor -%}
    )
{%- endmacro %}
