{#- A `select` of `key_value`: every value one edit from a document or phone key, the
    key itself included, for a `cross join lateral`. The same edits as the matcher's
    one-edit pass (`matcher.edits`), from the other side: a lead's key is one edit from
    a person's exactly when the person's is one edit from the lead's (a character
    substituted, two neighbours swapped, one left out or added), so these are the lead
    keys whose one-edit lookup can find the person. A superset of what the pass spells
    out (no shortest length, no shapes), checked against `matcher.edits` in the tests;
    nothing for emails and other countries' phones, which the pass never edits. -#}
{%- macro one_edit_neighbours(key_type, key_value) -%}
{%- set country_code = var('phone_country_code') | string %}
{%- set digits = '0123456789' %}
{%- set letters = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ' %}
select split.prefix || edits.part as key_value
from (
    select
        case
            when {{ key_type }} = 'document' then split_part({{ key_value }}, ':', 1) || ':'
            else {{ sql_literal(country_code) }}
        end as prefix,
        case
            when {{ key_type }} = 'document'
                then substr({{ key_value }}, strpos({{ key_value }}, ':') + 1)
            else substr({{ key_value }}, {{ country_code | length + 1 }})
        end as part,
        case
            when {{ key_type }} = 'document' then {{ sql_literal(digits ~ letters) }}
            else {{ sql_literal(digits) }}
        end as alphabet
    where
        ({{ key_type }} = 'document' and strpos({{ key_value }}, ':') > 0)
        or (
            {{ key_type }} = 'phone'
            and left({{ key_value }}, {{ country_code | length }}) = {{ sql_literal(country_code) }}
        )
) as split
cross join lateral (
    -- a character substituted: a digit for a digit, a letter for a letter (itself too)
    select
        substr(split.part, 1, positions.at - 1)
        || chars.char
        || substr(split.part, positions.at + 1) as part
    from generate_series(1, length(split.part)) as positions (at)
    cross join lateral unnest(string_to_array(
        case
            when substr(split.part, positions.at, 1) ~ '[0-9]' then {{ sql_literal(digits) }}
            else {{ sql_literal(letters) }}
        end,
        null
    )) as chars (char)
    union all
    -- two neighbours swapped
    select
        substr(split.part, 1, positions.at - 1)
        || substr(split.part, positions.at + 1, 1)
        || substr(split.part, positions.at, 1)
        || substr(split.part, positions.at + 2)
    from generate_series(1, length(split.part) - 1) as positions (at)
    union all
    -- one left out
    select substr(split.part, 1, positions.at - 1) || substr(split.part, positions.at + 1)
    from generate_series(1, length(split.part)) as positions (at)
    union all
    -- one added
    select
        substr(split.part, 1, positions.at - 1)
        || chars.char
        || substr(split.part, positions.at)
    from generate_series(1, length(split.part) + 1) as positions (at)
    cross join lateral unnest(string_to_array(split.alphabet, null)) as chars (char)
) as edits
{%- endmacro %}
