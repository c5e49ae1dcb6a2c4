-- name: add
-- An origin row for each given person that has none (ORIGIN_MISSING otherwise), from the
-- earliest of the sources given for it; every column set. The one statement that writes
-- origin rows: the matcher's links, a review's links and `kpi-red repair-origin` all pass
-- theirs here. Parameters: arrays %(person_keys)s, %(origin_tags)s, %(source_pks)s,
-- %(created_at)s (null: %(recorded_at)s), and %(recorded_at)s.
with new_origins as (
    insert into {origin} (
        person_key, origin_tag, origin_source_pk, origin_created_at, recorded_at
    )
    select distinct on (given.person_key)
        given.person_key,
        given.origin_tag,
        given.source_pk,
        coalesce(given.created_at, %(recorded_at)s) as origin_created_at,
        %(recorded_at)s
    from
        unnest(
            %(person_keys)s::text[],
            %(origin_tags)s::text[],
            %(source_pks)s::text[],
            %(created_at)s::timestamptz[]
        ) as given (person_key, origin_tag, source_pk, created_at)
    order by given.person_key asc, given.created_at asc nulls last, given.source_pk asc
    on conflict (person_key) do nothing
    returning 1
)

select count(*) from new_origins
