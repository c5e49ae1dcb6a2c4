with

links as (
    select * from {{ ref('stg_canon__identity_links') }}
),

origin as (
    select * from {{ ref('stg_canon__identity_origin') }}
),

orphan_links as (
    select links.*
    from links
    where not exists (
        select 1 from origin
        where origin.person_key = links.person_key
    )
),

-- each person's links in order, counted in the same pass: one sort, no join (a join of
-- the first links with the counts was planned as a nested loop on a misestimate of the
-- anti-join, quadratic in the orphans: 34 s for 21,778 persons at `large`)
ranked_links as (
    select
        person_key,
        source_table,
        source_pk,
        linked_at,
        count(*) over by_person as link_count,
        row_number() over (
            by_person
            order by linked_at asc nulls last, source_table asc, source_pk asc
        ) as link_rank
    from orphan_links
    window by_person as (partition by person_key)
),

final as (
    select
        person_key,
        link_count::integer as link_count,
        linked_at as first_linked_at,
        source_table as first_source_table,
        source_pk as first_source_pk
    from ranked_links
    where link_rank = 1
)

select * from final
