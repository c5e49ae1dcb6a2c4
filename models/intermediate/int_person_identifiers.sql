{{ config(
    materialized='table',
    indexes=[
        {'columns': ['key_type', 'key_value']},
        {'columns': ['person_key']},
    ],
) }}

with

person_keys as (
    select * from {{ ref('int_person_keys') }}
),

junk as (
    select * from {{ ref('int_junk_identifiers') }}
),

usable_keys as (
    select person_keys.*
    from person_keys
    left join junk
        on
            junk.key_type = person_keys.key_type
            and junk.key_value = person_keys.key_value
    where
        person_keys.key_value is not null
        and junk.key_value is null
),

final as (
    select
        person_key,
        key_type,
        key_value,
        full_name
    from usable_keys
)

select * from final
