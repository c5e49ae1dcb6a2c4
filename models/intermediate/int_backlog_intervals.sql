{{ config(
    materialized='table',
    indexes=[
        {'columns': ['lead_source_pk']},
        {'columns': ['entered_at']},
        {'columns': ['left_at']},
    ],
) }}

with

leads as (
    select * from {{ ref('stg_cabinet__leads') }}
),

links as (
    select * from {{ ref('stg_canon__identity_links') }}
    where is_lead_link
),

claims as (
    select * from {{ ref('stg_claims__lead_claims') }}
    where lead_id is not null
),

matched_attempts as (
    select * from {{ ref('stg_kpi_red__match_attempts') }}
    where is_matched
),

first_claims as (
    select
        lead_id,
        min(claimed_at) as first_claimed_at
    from claims
    group by lead_id
),

-- the matcher attempt that made the lead's current link (the newest match to that person)
live_link_attempts as (
    select distinct on (matched_attempts.lead_source_pk)
        matched_attempts.lead_source_pk,
        matched_attempts.attempt_id
    from matched_attempts
    inner join links
        on
            links.source_pk = matched_attempts.lead_source_pk
            and links.person_key = matched_attempts.person_key
            and links.linked_by = '{{ var("matcher_linked_by") }}'
    order by
        matched_attempts.lead_source_pk asc,
        matched_attempts.attempted_at desc,
        matched_attempts.attempt_id desc
),

-- the lead leaves for good at its current link or first claim (clamped to creation)
final_exits as (
    select
        leads.lead_id,
        leads.created_at,
        case
            when links.source_pk is not null or first_claims.lead_id is not null
                then greatest(
                    least(
                        case
                            when links.source_pk is not null
                                then coalesce(links.linked_at, '-infinity')
                        end,
                        first_claims.first_claimed_at
                    ),
                    leads.created_at
                )
        end as final_left_at,
        case
            when
                live_link_attempts.attempt_id is not null
                and coalesce(links.linked_at, '-infinity')
                <= coalesce(first_claims.first_claimed_at, 'infinity')
                then 'matched'
            when links.source_pk is not null or first_claims.lead_id is not null
                then 'other'
        end as final_exit_kind
    from leads
    left join links
        on links.source_pk = leads.lead_id
    left join first_claims
        on first_claims.lead_id = leads.lead_id
    left join live_link_attempts
        on live_link_attempts.lead_source_pk = leads.lead_id
),

-- a match whose link is gone: the lead left then and came back (see the model's docs)
removed_link_matches as (
    select distinct
        final_exits.lead_id,
        matched_attempts.attempted_at as bounced_at
    from final_exits
    inner join matched_attempts
        on matched_attempts.lead_source_pk = final_exits.lead_id
    left join live_link_attempts
        on live_link_attempts.attempt_id = matched_attempts.attempt_id
    where
        live_link_attempts.attempt_id is null
        and matched_attempts.attempted_at > final_exits.created_at
        and matched_attempts.attempted_at < coalesce(final_exits.final_left_at, 'infinity')
),

entries as (
    select
        lead_id,
        created_at as entered_at,
        'created' as entry_kind
    from final_exits
    union all
    select
        lead_id,
        bounced_at as entered_at,
        'link_removed' as entry_kind
    from removed_link_matches
),

intervals as (
    select
        entries.lead_id,
        entries.entered_at,
        entries.entry_kind,
        lead(entries.entered_at) over lead_timeline as next_entered_at,
        final_exits.final_left_at,
        final_exits.final_exit_kind,
        final_exits.created_at
    from entries
    inner join final_exits
        on final_exits.lead_id = entries.lead_id
    window lead_timeline as (partition by entries.lead_id order by entries.entered_at)
),

bounded as (
    select
        lead_id as lead_source_pk,
        entered_at,
        entry_kind,
        coalesce(next_entered_at, final_left_at) as left_at,
        case
            when next_entered_at is not null then 'matched'
            else final_exit_kind
        end as exit_kind,
        created_at as lead_created_at
    from intervals
),

final as (
    select
        lead_source_pk,
        row_number() over (partition by lead_source_pk order by entered_at)::integer as interval_number,
        entered_at,
        left_at,
        exit_kind,
        entry_kind,
        left_at is null as is_open,
        lead_created_at
    from bounded
    where left_at is null or left_at > entered_at
)

select * from final
