{#-
    'TYPE:NUMBER' or null. The same rules as matcher.normalize.normalize_document (see
    _normalize__macros.yml). Non-ASCII is dropped before upper-casing, and case is mapped
    with translate(), so the result is the same in every locale.
-#}
{%- macro normalize_document(doc_type, number, default_type=none) -%}
    {%- set default_type = (default_type if default_type is not none else var('default_document_type', 'DNI')) | string -%}
    {%- set kept = namespace(chars='') -%}
    {%- for char in default_type if char in 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789' -%}
        {%- set kept.chars = kept.chars ~ (char | upper) -%}
    {%- endfor -%}
    {%- set default_type = kept.chars -%}
    {%- if not default_type -%}
        {{ exceptions.raise_compiler_error("default_document_type needs an ASCII letter or digit") }}
    {%- endif -%}
    {%- set lower_ascii = "'abcdefghijklmnopqrstuvwxyz'" -%}
    {%- set upper_ascii = "'ABCDEFGHIJKLMNOPQRSTUVWXYZ'" -%}
(
    select
        case
            when char_length(document_parts.number_key) between 1 and 20
                and btrim(document_parts.number_key, left(document_parts.number_key, 1)) <> ''
                then document_parts.type_key || ':' || document_parts.number_key
        end
    from (
        select
            coalesce(
                nullif(
                    translate(
                        regexp_replace(document_raw.type_text, '[^A-Za-z0-9]', '', 'g'),
                        {{ lower_ascii }},
                        {{ upper_ascii }}
                    ),
                    ''
                ),
                '{{ default_type }}'
            ) as type_key,
            ltrim(
                translate(
                    regexp_replace(document_raw.number_text, '[^A-Za-z0-9]', '', 'g'),
                    {{ lower_ascii }},
                    {{ upper_ascii }}
                ),
                '0'
            ) as number_key
        from (
            select
                ({{ doc_type }})::text as type_text,
                ({{ number }})::text as number_text
        ) as document_raw
        where char_length(document_raw.number_text) <= 64
            and coalesce(char_length(document_raw.type_text), 0) <= 64
        offset 0
    ) as document_parts
)
{%- endmacro %}
