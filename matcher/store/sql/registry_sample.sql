-- A sample of the registry for the matcher: the names its word frequencies count
-- (matcher.names.TokenWeights). About {target_pages} of person_keys' blocks,
-- the same sample every run on an unchanged table (repeatable). One row per person.
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

-- a person's name is the same on each of its rows
final as (
    select min(full_name) as full_name
    from sampled
    group by person_key
)

select * from final
