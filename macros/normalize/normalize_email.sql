{#-
    The trimmed (space, tab, CR, LF), lower-cased address when it has an ASCII
    local@domain.tld shape and at most 254 characters; else null. The same rules as
    matcher.normalize.normalize_email.
-#}
{%- macro normalize_email(raw) -%}
    {%- set trimmed = "btrim((" ~ raw ~ ")::text, e' \\t\\r\\n')" -%}
case
    when char_length({{ trimmed }}) <= 254
        and {{ trimmed }}
        ~ '^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$'
        then translate(
            {{ trimmed }},
            'ABCDEFGHIJKLMNOPQRSTUVWXYZ',
            'abcdefghijklmnopqrstuvwxyz'
        )
end
{%- endmacro %}
