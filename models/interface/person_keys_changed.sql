{#- Live: the registry persons changed since `person_keys` was built, one row per
    (person, key type) like it, their keys normalized now by the same macros
    (`unpivot_person_keys` over `stg_canon__persons`). A person counts as changed when
    its identifiers hash differs from the stored one, or it is not stored, among the
    persons whose `changed_at` is at or after the last build that wrote the table (its
    newest `loaded_at`) minus `queue_lookback_minutes` (a change committed after that
    build's snapshot, from a transaction shorter than the look-back), or missing. The
    registry has no index on its timestamps, so a read scans it once; only those few are
    hashed. `kpi-red match` reads it once per run and decides on these keys instead of
    the stored ones. -#}

with

all_persons as (
    select * from {{ ref('stg_canon__persons') }}
),

stored as (
    select * from {{ ref('person_keys') }}
),

-- the stored hash of each candidate: a probe of the unique `(person_key, key_type)` index
-- (a lateral, so a hash of every stored person is never built for the few changed)
changed_persons as (
    select all_persons.*
    from all_persons
    left join lateral (
        select stored.identifiers_hash
        from stored
        where
            stored.person_key = all_persons.person_key
            and stored.key_type = 'phone'
        order by stored.key_type
        limit 1
    ) as stored_hash on true
    where
        (
            all_persons.changed_at is null
            or all_persons.changed_at >= (
                {{ stored_watermark(ref('person_keys'), 'loaded_at') }}
                - {{ queue_lookback() }}
            )
        )
        and stored_hash.identifiers_hash is distinct from all_persons.identifiers_hash
),

unpivoted as (
    {{ unpivot_person_keys('changed_persons') }}
),

final as (
    select
        person_key,
        key_type,
        key_value,
        full_name,
        changed_at,
        identifiers_hash
    from unpivoted
)

select * from final
