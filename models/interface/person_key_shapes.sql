{{ config(
    materialized='table_in_place',
    indexes=[
        {'columns': ['key_type', 'kind', 'value_length'], 'unique': true},
    ],
) }}

{#- The shapes the registry's documents and phones come in: per key type, document type
    (`DNI` of `DNI:45678912`; '' for a phone) and length, whether a number of that shape
    holds a letter. The one-edit lookup spells out only values of a shape somebody holds
    (`matcher.edits.KeyShapes`): every DNI in the registry has 8 digits, so a lead's
    8-digit DNI is never looked up with a digit left out or added. Counted incrementally:
    the stored shapes and those of the keys `person_keys` loaded since this table's
    `loaded_at` (each build writes `person_keys` first). A shape is never dropped between
    full refreshes: one nobody holds any more only costs lookups, one missing would miss
    persons. Every key is read on `--full-refresh`, on the first build, and while the
    table is empty. -#}

{%- set adds_to_stored = not should_full_refresh() and relation_has_column(this, 'loaded_at') %}
{%- set loaded_after = (
    "(select coalesce(max(stored.loaded_at), '-infinity') from " ~ this ~ " as stored)"
    if adds_to_stored else "'-infinity'::timestamptz"
) %}

with

person_keys as (
    select * from {{ ref('person_keys') }}
    where
        key_type in ('document', 'phone')
        and key_value is not null
        and loaded_at > {{ loaded_after }}
),

-- the type and number of a document as `matcher.edits.editable_split` splits them
keys as (
    select
        key_type,
        length(key_value) as value_length,
        case
            when key_type = 'document' then split_part(key_value, ':', 1) else ''
        end as kind,
        key_type = 'document'
        and strpos(key_value, ':') > 0
        and substr(key_value, strpos(key_value, ':') + 1) ~ '[A-Z]' as has_letters
    from person_keys
),

shapes as (
    select
        key_type,
        kind,
        value_length,
        has_letters
    from keys
    {%- if adds_to_stored %}
    union all
    select
        key_type,
        kind,
        value_length,
        has_letters
    from {{ this }}
    {%- endif %}
),

final as (
    select
        key_type,
        kind,
        value_length,
        bool_or(has_letters) as has_letters,
        now() as loaded_at
    from shapes
    group by key_type, kind, value_length
)

select * from final
