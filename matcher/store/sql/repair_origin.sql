-- kpi-red repair-origin: the origin row due to every linked person without one
-- (ORIGIN_MISSING), whoever linked them, from their earliest link (written by
-- origin.sql, as every origin row): the persons and links
-- dbt's v_identity_origin_missing shows, read live from the tables themselves (the matcher
-- role reads those, not the view). A cabinet lead's link gets origin_tag 'cabinet_lead'
-- and the lead's creation time. Parameters: %(lead_source_table)s, %(origin_tag)s.
with first_links as (
    select distinct on (links.person_key)
        links.person_key,
        links.source_table,
        links.source_pk,
        links.linked_at
    from {links} as links
    where
        not exists (
            select 1 from {origin} as origin
            where origin.person_key = links.person_key
        )
    order by links.person_key asc, links.linked_at asc nulls last, links.source_table asc, links.source_pk asc
),

origin_sources as (
    select
        first_links.person_key,
        case
            when first_links.source_table = %(lead_source_table)s then %(origin_tag)s
            else first_links.source_table
        end as origin_tag,
        first_links.source_pk as origin_source_pk,
        coalesce(leads.created_at, first_links.linked_at) as origin_created_at
    from first_links
    left join {leads} as leads
        on
            first_links.source_table = %(lead_source_table)s
            and leads.lead_id::text = first_links.source_pk
)

select
    origin_sources.person_key,
    origin_sources.origin_tag,
    origin_sources.origin_source_pk,
    origin_sources.origin_created_at
from origin_sources
