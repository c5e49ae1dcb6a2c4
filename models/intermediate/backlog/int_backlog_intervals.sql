{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='lead_source_pk',
    on_schema_change='append_new_columns',
    indexes=[
        {'columns': ['lead_source_pk']},
        {'columns': ['entered_at']},
        {'columns': ['left_at']},
        {'columns': ['loaded_at']},
    ],
    post_hook=[
        "{{ delete_stale_backlog_intervals(this) }}",
        'analyze {{ this }}',
    ],
) }}

{#- Incremental (delete+insert on `lead_source_pk`), exact by construction: a lead's
    intervals are a function of its inputs (`backlog_lead_inputs`: creation, current link,
    first claim, matched attempts, review links, logged link removals), stored with their md5 `inputs_hash`. A run recomputes
    every interval of the leads whose hash changed, whatever their timestamps say (a late
    row of any age, a removed or backdated link or claim), and of the leads with no stored
    row that have an interval now; a lead that was never red (linked or claimed at its
    creation) and stays so is not read again. A recomputed lead with no interval left
    emits a marker row (`interval_number = 0`) so its old rows are deleted; the post-hook
    removes the markers and the rows of leads deleted upstream, in the same
    transaction. -#}

with

all_leads as (
    select
        lead_id,
        created_at
    from {{ ref('stg_cabinet__leads') }}
),

links as (
    select * from {{ ref('stg_canon__identity_links') }}
    where is_lead_link
),

all_matched_attempts as (
    select * from {{ ref('stg_kpi_red__match_attempts') }}
    where is_matched
),

all_review_links as (
    select * from {{ ref('stg_kpi_red__review_decisions') }}
    where is_link
),

all_removals as (
    select * from {{ ref('stg_kpi_red__link_removals') }}
    where source_table = {{ sql_literal(var("lead_source_table")) }}
),

-- each lead's inputs now (read more than once: PostgreSQL materializes it)
inputs as (
    {{ backlog_lead_inputs('all_leads') }}
),

{% if is_incremental() -%}

stored_inputs as (
    {%- if relation_has_column(this, 'inputs_hash') %}
    select
        lead_source_pk,
        inputs_hash
    from {{ this }}
    where interval_number = 1
    {%- else %}
    -- stored before the hash existed: every lead is recomputed once
    select
        null::text as lead_source_pk,
        null::text as inputs_hash
    where false
    {%- endif %}
),

changed_inputs as (
    select inputs.*
    from inputs
    left join stored_inputs
        on stored_inputs.lead_source_pk = inputs.lead_id
    where
        stored_inputs.inputs_hash is distinct from inputs.inputs_hash
        and (
            stored_inputs.lead_source_pk is not null
            or inputs.final_left_at is null
            or inputs.final_left_at > inputs.created_at
        )
),

{%- else %}

changed_inputs as (
    select * from inputs
),

{%- endif %}

leads as (
    select * from changed_inputs
),

matched_attempts as (
    select all_matched_attempts.*
    from all_matched_attempts
    where all_matched_attempts.lead_source_pk in (
        select leads.lead_id from leads
    )
),

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

-- a review's link: a link decision for the lead's current person, the link by the review
live_review_links as (
    select distinct links.source_pk as lead_source_pk
    from links
    inner join all_review_links
        on
            all_review_links.lead_source_pk = links.source_pk
            and all_review_links.person_key = links.person_key
    where
        links.linked_by = {{ sql_literal(var("review_linked_by")) }}
        and links.source_pk in (select leads.lead_id from leads)
),

-- the links `kpi-red unlink` removed: the lead left at the link and came back at removal
removals as (
    select all_removals.*
    from all_removals
    where all_removals.lead_source_pk in (
        select leads.lead_id from leads
    )
),

-- the lead leaves for good at its current link or first claim (clamped to creation)
final_exits as (
    select
        leads.lead_id,
        leads.created_at,
        leads.final_left_at,
        case
            when
                live_link_attempts.attempt_id is not null
                and coalesce(leads.linked_at, '-infinity')
                <= coalesce(leads.first_claimed_at, 'infinity')
                then 'matched'
            when
                live_review_links.lead_source_pk is not null
                and coalesce(leads.linked_at, '-infinity')
                <= coalesce(leads.first_claimed_at, 'infinity')
                then 'reviewed'
            when leads.has_link or leads.has_claim
                then 'other'
        end as final_exit_kind,
        -- the newest source timestamp behind the lead's intervals
        greatest(
            leads.created_at,
            leads.linked_at,
            leads.first_claimed_at,
            last_matches.last_matched_at
        ) as changed_at,
        leads.inputs_hash
    from leads
    left join live_link_attempts
        on live_link_attempts.lead_source_pk = leads.lead_id
    left join live_review_links
        on live_review_links.lead_source_pk = leads.lead_id
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
        -- a removal `kpi-red unlink` logged is dated by its log (below)
        and not exists (
            select 1 from removals
            where
                removals.lead_source_pk = matched_attempts.lead_source_pk
                and removals.person_key = matched_attempts.person_key
                and removals.link_run_id = matched_attempts.run_id
        )
),

-- a logged removal: the lead left when the link was made, and is red again from removal
logged_removals as (
    select
        final_exits.lead_id,
        removals.removed_at,
        greatest(coalesce(removals.linked_at, removals.removed_at), final_exits.created_at)
            as linked_at,
        case
            when removals.linked_by = {{ sql_literal(var("matcher_linked_by")) }} then 'matched'
            when removals.linked_by = {{ sql_literal(var("review_linked_by")) }} then 'reviewed'
            else 'other'
        end as link_exit_kind
    from final_exits
    inner join removals
        on removals.lead_source_pk = final_exits.lead_id
    where
        removals.removed_at > final_exits.created_at
        and removals.removed_at < coalesce(final_exits.final_left_at, 'infinity')
),

-- each entry with how the interval before it ended (its time and kind)
entries as (
    select
        lead_id,
        created_at as entered_at,
        'created' as entry_kind,
        null::timestamptz as prior_left_at,
        null::text as prior_exit_kind
    from final_exits
    union all
    select
        lead_id,
        bounced_at as entered_at,
        'link_removed' as entry_kind,
        bounced_at as prior_left_at,
        'matched' as prior_exit_kind
    from removed_link_matches
    union all
    select
        lead_id,
        removed_at as entered_at,
        'link_removed' as entry_kind,
        linked_at as prior_left_at,
        link_exit_kind as prior_exit_kind
    from logged_removals
),

intervals as (
    select
        entries.lead_id,
        entries.entered_at,
        entries.entry_kind,
        lead(entries.prior_left_at) over lead_timeline as next_left_at,
        lead(entries.prior_exit_kind) over lead_timeline as next_exit_kind,
        final_exits.final_left_at,
        final_exits.final_exit_kind,
        final_exits.created_at,
        final_exits.changed_at,
        final_exits.inputs_hash
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
        coalesce(next_left_at, final_left_at) as left_at,
        case
            when next_left_at is not null then next_exit_kind
            else final_exit_kind
        end as exit_kind,
        created_at as lead_created_at,
        changed_at,
        inputs_hash
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
        changed_at,
        inputs_hash,
        now() as loaded_at
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
        final_exits.changed_at,
        final_exits.inputs_hash,
        now() as loaded_at
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
