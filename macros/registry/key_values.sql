{#-
    `lateral (values ...)`: one row `(key_type, key_value)` per key type of `row` (an
    alias with the columns `phone_key`, `document_key` and `email_key`), the value null
    when absent. The one list of key types a person's or a lead's keys are unpivoted by
    (`unpivot_person_keys`, `int_lead_registry_touches`).
-#}
{%- macro key_values(row) -%}
lateral (
    values
    {%- for key_type in key_types() %}
    ('{{ key_type }}', {{ row }}.{{ key_type }}_key){{ ',' if not loop.last }}
    {%- endfor %}
)
{%- endmacro %}
