{#-
    md5 of the raw identifiers of a lead, joined by chr(31) with nulls as ''. A lead whose hash
    differs from the one of its last attempt has changed identifiers. The same value as
    matcher.normalize.identifiers_hash.
-#}
{%- macro lead_identifiers_hash(full_name='full_name', phone='phone', document_type='document_type', document_number='document_number', email='email') -%}
md5(
    concat_ws(
        chr(31),
        coalesce(({{ full_name }})::text, ''),
        coalesce(({{ phone }})::text, ''),
        coalesce(({{ document_type }})::text, ''),
        coalesce(({{ document_number }})::text, ''),
        coalesce(({{ email }})::text, '')
    )
)
{%- endmacro %}
