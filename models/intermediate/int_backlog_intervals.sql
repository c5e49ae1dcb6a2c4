{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='lead_source_pk',
    on_schema_change='append_new_columns',
    indexes=[
        {'columns': ['lead_source_pk']},
        {'columns': ['entered_at']},
        {'columns': ['left_at']},
        {'columns': ['changed_at']},
    ],
    post_hook=[
        "{{ delete_stale_backlog_intervals(this) }}",
        'analyze {{ this }}',
    ],
) }}

{#- Incremental (delete+insert on `lead_source_pk`): a run recomputes every interval of
    the leads whose inputs may have changed: leads, links, claims or matched attempts
    with a timestamp at or after the stored `max(changed_at)` (future-dated rows ignored)
    minus `queue_lookback_minutes`, leads with no stored row, and leads whose stored
    in/out state no longer matches the links and claims (a removed or backdated link or
    claim). A recomputed lead with no interval left emits a marker row
    (`interval_number = 0`) so its old rows are deleted; the post-hook removes the
    markers and the rows of leads deleted upstream, in the same transaction. -#}


with

-- only the columns used: the CTE is read more than once, so PostgreSQL materializes it
all_leads as (
    select
        lead_id,
        created_at,
        changed_at
    from {{ ref('stg_cabinet__leads') }}
),

links as (
    select * from {{ ref('stg_canon__identity_links') }}
    where is_lead_link
),

claims as (
    select * from {{ ref('stg_claims__lead_claims') }}
    where lead_id is not null
),

all_matched_attempts as (
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

{% if is_incremental() -%}

existing as (
    select * from {{ this }}
),

watermark as (
    -- a future-dated source row must not hide the rows that come after it (a table
    -- stored before `changed_at` existed is recomputed whole)
    select  -- noqa: LT02
        {%- if relation_has_column(this, 'changed_at') %}
        {{ stored_watermark(this, 'changed_at') }}
        - {{ queue_lookback() }} as changed_since
        {%- else %}
        '-infinity'::timestamptz as changed_since
        {%- endif %}
),

stored_states as (
    select
        lead_source_pk,
        bool_or(is_open) as is_open
    from existing
    group by lead_source_pk
),

changed_leads as (
    select all_leads.lead_id as lead_source_pk
    from all_leads
    where all_leads.changed_at >= (select watermark.changed_since from watermark)
    union
    select links.source_pk
    from links
    where links.linked_at >= (select watermark.changed_since from watermark)
    union
    select claims.lead_id
    from claims
    where claims.claimed_at >= (select watermark.changed_since from watermark)
    union
    select all_matched_attempts.lead_source_pk
    from all_matched_attempts
    where all_matched_attempts.attempted_at >= (select watermark.changed_since from watermark)
    union
    -- no stored row: new, late, or never red
    select all_leads.lead_id
    from all_leads
    where
        not exists (
            select 1 from stored_states
            where stored_states.lead_source_pk = all_leads.lead_id
        )
    union
    -- stored in/out state no longer true (a link removed, a backdated link or claim);
    -- joins, not correlated EXISTS: a subplan over a CTE too big to hash rescans it per
    -- lead (after a large drain: 500k leads x 300k links)
    select stored_states.lead_source_pk
    from stored_states
    left join links
        on links.source_pk = stored_states.lead_source_pk
    left join first_claims
        on first_claims.lead_id = stored_states.lead_source_pk
    where
        stored_states.is_open
        = (links.source_pk is not null or first_claims.lead_id is not null)
),

leads as (
    select all_leads.*
    from all_leads
    where all_leads.lead_id in (
        select changed_leads.lead_source_pk from changed_leads
    )
),

matched_attempts as (
    select all_matched_attempts.*
    from all_matched_attempts
    where all_matched_attempts.lead_source_pk in (
        select changed_leads.lead_source_pk from changed_leads
    )
),

{%- else %}

leads as (
    select * from all_leads
),

matched_attempts as (
    select * from all_matched_attempts
),

{%- endif %}

last_matches as (
    select
        lead_source_pk,
        max(attempted_at) as last_matched_at
    from matched_attempts
    group by lead_source_pk
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
            and links.linked_by = {{ sql_literal(var("matcher_linked_by")) }}
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
        end as final_exit_kind,
        -- the newest source timestamp behind the lead's intervals (the watermark)
        greatest(
            leads.changed_at,
            links.linked_at,
            first_claims.first_claimed_at,
            last_matches.last_matched_at
        ) as changed_at
    from leads
    left join links
        on links.source_pk = leads.lead_id
    left join first_claims
        on first_claims.lead_id = leads.lead_id
    left join live_link_attempts
        on live_link_attempts.lead_source_pk = leads.lead_id
    left join last_matches
        on last_matches.lead_source_pk = leads.lead_id
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
        final_exits.created_at,
        final_exits.changed_at
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
        created_at as lead_created_at,
        changed_at
    from intervals
),

kept as (
    select
        lead_source_pk,
        row_number() over (partition by lead_source_pk order by entered_at)::integer as interval_number,
        entered_at,
        left_at,
        exit_kind,
        entry_kind,
        left_at is null as is_open,
        lead_created_at,
        changed_at
    from bounded
    where left_at is null or left_at > entered_at
),

{% if is_incremental() -%}

-- a recomputed lead with no interval any more: a marker so that its stored rows go
-- (removed by the post-hook)
emptied as (
    select
        final_exits.lead_id as lead_source_pk,
        0 as interval_number,
        final_exits.created_at as entered_at,
        final_exits.created_at as left_at,
        'other' as exit_kind,
        'created' as entry_kind,
        false as is_open,
        final_exits.created_at as lead_created_at,
        final_exits.changed_at
    from final_exits
    where not exists (
        select 1 from kept
        where kept.lead_source_pk = final_exits.lead_id
    )
),

final as (
    select * from kept
    union all
    select * from emptied
)

{%- else %}

final as (
    select * from kept
)

{%- endif %}

select * from final
