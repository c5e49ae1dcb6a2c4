{{ config(
    materialized='table',
    indexes=[
        {'columns': ['key_type', 'variant', 'person_key'], 'unique': true},
    ],
) }}

{#- The symmetric deletion neighbourhood of the registry's documents and phones, for the
    matcher's one-edit lookup: a lead value and a person value one edit apart
    (substitution, insertion, deletion, adjacent transposition) always share a variant
    here (the value itself or one of its 1-character deletions). The edit applies to the
    document NUMBER (the TYPE stays) and to the national number of a phone of the
    configured country. Junk values are already out of `int_person_identifiers`; values
    held by more than one person, and values shorter than `near_match_min_length`, never
    produce near candidates. The unique index is the primary key, enforced as the table is
    built (cheaper than a test over tens of millions of rows), and the lookup index
    through its `(key_type, variant)` prefix. -#}

{%- set country_code = var('phone_country_code') | string %}

with

person_identifiers as (
    select * from {{ ref('int_person_identifiers') }}
),

sole_owner_values as (
    select
        key_type,
        key_value,
        min(person_key) as person_key
    from person_identifiers
    where key_type in ('document', 'phone')
    group by key_type, key_value
    having count(distinct person_key) = 1
),

split_values as (
    select
        key_type,
        key_value,
        person_key,
        case
            when key_type = 'document' then split_part(key_value, ':', 1) || ':'
            else '{{ country_code }}'
        end as fixed_prefix,
        case
            when key_type = 'document' then split_part(key_value, ':', 2)
            else substr(key_value, {{ country_code | length + 1 }})
        end as editable_part
    from sole_owner_values
    where
        key_type = 'document'
        or left(key_value, {{ country_code | length }}) = '{{ country_code }}'
),

eligible_values as (
    select *
    from split_values
    where length(editable_part) >= {{ var('near_match_min_length', 6) }}
),

-- position 0 keeps the value itself; deleting any character of a run of equal ones
-- gives the same variant, so only the first of each run is deleted (no duplicates)
variants as (
    select
        eligible_values.key_type,
        case
            when deleted_at = 0 then eligible_values.key_value
            else
                eligible_values.fixed_prefix
                || overlay(eligible_values.editable_part placing '' from deleted_at for 1)
        end as variant,
        eligible_values.key_value,
        eligible_values.person_key
    from eligible_values
    cross join lateral generate_series(0, length(eligible_values.editable_part)) as deleted_at
    where
        deleted_at <= 1
        or substr(eligible_values.editable_part, deleted_at, 1)
        <> substr(eligible_values.editable_part, deleted_at - 1, 1)
),

final as (
    select
        key_type,
        variant,
        key_value,
        person_key
    from variants
)

select * from final
