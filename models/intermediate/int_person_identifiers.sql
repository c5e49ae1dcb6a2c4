{#- A view: the usable keys are `int_person_keys` (incremental, indexed on
    `(key_type, key_value)`) minus junk, so a build never copies the registry again, and
    the matcher's `key_type = ... and key_value = any(...)` lookup is an index scan on
    `int_person_keys` plus a probe of the small junk table. -#}

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
