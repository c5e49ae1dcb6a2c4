{#-
    The key types a lead and a person are matched by, in the order every model lists
    them: `phone`, `document`, `email`.
-#}
{%- macro key_types() -%}
{{ return(['phone', 'document', 'email']) }}
{%- endmacro %}
