{#- Every `fail_reason` the matcher records, in the order the metrics list their
    `failed_<reason>` columns. The one list for the SQL that counts them; the YAML tests
    (`accepted_values`) repeat it. -#}
{%- macro fail_reasons() -%}
    {{ return([
        'missing_identifiers', 'no_match', 'conflict', 'low_confidence', 'ambiguous',
        'name_mismatch', 'person_changed',
    ]) }}
{%- endmacro %}
