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

first_links as (
    select distinct on (person_key)
        person_key,
        source_table as first_source_table,
        source_pk as first_source_pk,
        linked_at as first_linked_at
    from orphan_links
    order by person_key asc, linked_at asc nulls last, source_table asc, source_pk asc
),

link_counts as (
    select
        person_key,
        count(*) as link_count
    from orphan_links
    group by person_key
),

final as (
    select
        first_links.person_key,
        link_counts.link_count::integer as link_count,
        first_links.first_linked_at,
        first_links.first_source_table,
        first_links.first_source_pk
    from first_links
    inner join link_counts
        on link_counts.person_key = first_links.person_key
)

select * from final
