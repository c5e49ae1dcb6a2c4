-- Registry names for the matcher's word frequencies (matcher.names.TokenWeights): a
-- sample of person_keys' blocks, about {target_pages} of them, the same sample every
-- run on an unchanged table (repeatable). One row per person.
with

sampled as (
    select
        person_keys.person_key,
        person_keys.full_name
    from {person_keys} as person_keys
    tablesample system (
        least(
            100,
            100.0 * {target_pages} / greatest(
                1, pg_relation_size({person_keys_name}::regclass)
                / current_setting('block_size')::integer
            )
        )
    ) repeatable (0)
),

final as (
    select distinct on (person_key) full_name
    from sampled
    order by person_key
)

select * from final
