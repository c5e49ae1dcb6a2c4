{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='lead_source_pk',
    on_schema_change='append_new_columns',
    indexes=[
        {'columns': ['lead_source_pk', 'interval_number'], 'unique': true},
        {'columns': ['lead_source_pk', 'entered_at'], 'unique': true},
        {'columns': ['entered_at']},
        {'columns': ['left_at']},
        {'columns': ['loaded_at']},
    ],
    post_hook=[
        "{{ delete_stale_backlog_intervals(this) }}",
        "{{ unique_open_index(this, 'lead_source_pk', 'left_at') }}",
        '{{ analyze_when_changed(this) }}',
    ],
) }}

-- depends_on: {{ ref('int_lead_attempts__stored') }}

{%- set backlog_changes = var('backlog_changes') | string %}
{%- if backlog_changes not in ('all', 'match') %}
    {{ exceptions.raise_compiler_error(
        "var backlog_changes must be 'all' or 'match', not '" ~ backlog_changes ~ "'"
    ) }}
{%- endif %}

{#- Incremental (delete+insert on `lead_source_pk`), exact by construction: a lead's
    intervals are a function of its inputs (`backlog_lead_inputs`: creation, current
    link, first claim, matched attempts, review links, logged link removals), and each
    row stores them (the link's person, time and author, the first claim, the newest
    review link and logged removal, and `inputs_hash`, their md5 with the matched
    attempts). A run finds the leads whose inputs can differ without evaluating every
    lead: each source compared whole with what is stored (no timestamp trusted, so a
    late row of any age, a backdated or removed link or claim is seen), and the leads
    whose attempts `int_lead_attempts__stored` re-folded since this table's last write.
    With the var `backlog_changes: match` (the second build of `kpi-red cycle`, right
    after its first build compared every source) a run takes only those re-folded leads:
    what the match wrote. An upstream change made since the first build is the next
    build's, as one made after the cycle is.
    A run recomputes those whose hash changed, and the leads with no stored row that
    have an interval now; a lead that was never red (linked or claimed at its creation)
    and stays so is compared again each run, and not stored. A recomputed lead with no
    interval left, or deleted upstream, emits a marker row (`interval_number = 0`) so
    its old rows are deleted; the post-hook removes the markers, in the same
    transaction. #}

with

-- read in several places: `not materialized` keeps each read a plan of its own (a CTE
-- read twice is otherwise computed whole first, half a million leads at `large`)
all_leads as not materialized (
    select
        lead_id,
        created_at
    from {{ ref('stg_cabinet__leads') }}
),

links as not materialized (
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

{% if is_incremental() and relation_has_column(this, 'has_link') -%}

stored as not materialized (
    select * from {{ this }}
    where interval_number = 1
),

watermark as (
    select coalesce(max(loaded_at), '-infinity') as loaded_since
    from {{ this }}
),

claims as (
    select
        lead_id,
        min(claimed_at) as first_claimed_at
    from {{ ref('stg_claims__lead_claims') }}
    where lead_id is not null
    group by lead_id
),

-- each lead's newest review link and logged removal (the two logs kpi-red appends to)
logged as (
    select
        lead_source_pk,
        max(last_review_id) as last_review_id,
        max(last_removal_id) as last_removal_id
    from (
        select
            lead_source_pk,
            decision_id as last_review_id,
            null::bigint as last_removal_id
        from all_review_links
        union all
        select
            lead_source_pk,
            null::bigint as last_review_id,
            removal_id as last_removal_id
        from {{ ref('stg_kpi_red__link_removals') }}
    ) as entries
    group by lead_source_pk
),

-- the leads whose inputs can differ from the stored ones, each source compared whole
-- with what the rows store (a lead deleted upstream among them); with `backlog_changes:
-- match`, only the leads whose attempts were re-folded since (the last arm)
candidates as (
    {%- if backlog_changes == 'all' %}
    select coalesce(all_leads.lead_id, stored.lead_source_pk) as lead_id
    from all_leads
    full outer join stored
        on stored.lead_source_pk = all_leads.lead_id
    where
        all_leads.lead_id is null
        or stored.lead_source_pk is null
        or all_leads.created_at is distinct from stored.lead_created_at
    union
    select coalesce(links.source_pk, stored.lead_source_pk)
    from links
    full outer join (  -- noqa: ST05
        select * from stored
        where has_link
    ) as stored
        on stored.lead_source_pk = links.source_pk
    where
        links.source_pk is null
        or stored.lead_source_pk is null
        or (links.person_key, links.linked_at, links.linked_by)
        is distinct from (stored.link_person_key, stored.linked_at, stored.linked_by)
    union
    select coalesce(claims.lead_id, stored.lead_source_pk)
    from claims
    full outer join (  -- noqa: ST05
        select * from stored
        where has_claim
    ) as stored
        on stored.lead_source_pk = claims.lead_id
    where
        claims.lead_id is null
        or stored.lead_source_pk is null
        or claims.first_claimed_at is distinct from stored.first_claimed_at
    union
    select coalesce(logged.lead_source_pk, stored.lead_source_pk)
    from logged
    full outer join (  -- noqa: ST05
        select * from stored
        where last_review_id is not null or last_removal_id is not null
    ) as stored
        on stored.lead_source_pk = logged.lead_source_pk
    where
        (logged.last_review_id, logged.last_removal_id)
        is distinct from (stored.last_review_id, stored.last_removal_id)
    union
    {%- endif %}
    select folds.lead_source_pk as lead_id
    from {{ ref('int_lead_attempts__stored') }} as folds
    where folds.loaded_at > (select watermark.loaded_since from watermark)
),

-- `= any(array(...))`: PostgreSQL plans an array of unknown length as a few elements, so
-- what follows probes indexes per candidate. The `in` it replaced was planned on a guess
-- of a million candidates and hashed whole tables. At `large`, 5,100 new leads:
-- 1.36-1.88 s -> 0.88-0.97 s per build; 411,574 candidates (80% of the leads changed):
-- 11.0 s -> 14.8 s.
candidate_leads as (
    select all_leads.*
    from all_leads
    where all_leads.lead_id = any(array(select candidates.lead_id from candidates))
),

-- each candidate's inputs now (read more than once: PostgreSQL materializes it)
inputs as (
    {{ backlog_lead_inputs('candidate_leads') }}
),

changed_inputs as (
    select inputs.*
    from inputs
    left join stored
        on stored.lead_source_pk = inputs.lead_id
    where
        stored.inputs_hash is distinct from inputs.inputs_hash
        and (
            stored.lead_source_pk is not null
            or inputs.final_left_at is null
            or inputs.final_left_at > inputs.created_at
        )
),

-- stored leads no longer in the leads table (a marker each, below)
deleted_leads as (
    select stored.lead_source_pk
    from stored
    where
        stored.lead_source_pk in (select candidates.lead_id from candidates)
        and not exists (
            select 1 from candidate_leads
            where candidate_leads.lead_id = stored.lead_source_pk
        )
),

{%- elif is_incremental() %}

-- stored before the rows carried their inputs: every lead is recomputed once
changed_inputs as (
    {{ backlog_lead_inputs('all_leads') }}
),

deleted_leads as (
    select stored.lead_source_pk
    from {{ this }} as stored
    where
        stored.interval_number = 1
        and not exists (
            select 1 from all_leads
            where all_leads.lead_id = stored.lead_source_pk
        )
),

{%- else %}

changed_inputs as (
    {{ backlog_lead_inputs('all_leads') }}
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
        -- the inputs each row stores, compared source by source on the next run
        leads.has_link,
        leads.link_person_key,
        leads.linked_at,
        leads.linked_by,
        leads.has_claim,
        leads.first_claimed_at,
        leads.last_review_id,
        leads.last_removal_id,
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
        final_exits.has_link,
        final_exits.link_person_key,
        final_exits.linked_at,
        final_exits.linked_by,
        final_exits.has_claim,
        final_exits.first_claimed_at,
        final_exits.last_review_id,
        final_exits.last_removal_id,
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
        has_link,
        link_person_key,
        linked_at,
        linked_by,
        has_claim,
        first_claimed_at,
        last_review_id,
        last_removal_id,
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
        has_link,
        link_person_key,
        linked_at,
        linked_by,
        has_claim,
        first_claimed_at,
        last_review_id,
        last_removal_id,
        inputs_hash,
        now() as loaded_at
    from bounded
    where left_at is null or left_at > entered_at
),

{% if is_incremental() -%}

-- the leads whose stored rows go with no replacement (recomputed with no interval left,
-- or deleted upstream): a marker row each, so that the run's delete removes their rows;
-- the post-hook removes the markers
markers as (
    select
        unreplaced.lead_source_pk,
        0 as interval_number,
        null::timestamptz as entered_at,
        null::timestamptz as left_at,
        null::text as exit_kind,
        null::text as entry_kind,
        null::boolean as is_open,
        null::timestamptz as lead_created_at,
        null::timestamptz as changed_at,
        null::boolean as has_link,
        null::text as link_person_key,
        null::timestamptz as linked_at,
        null::text as linked_by,
        null::boolean as has_claim,
        null::timestamptz as first_claimed_at,
        null::bigint as last_review_id,
        null::bigint as last_removal_id,
        null::text as inputs_hash,
        now() as loaded_at
    from (
        select final_exits.lead_id as lead_source_pk
        from final_exits
        where
            not exists (
                select 1 from kept
                where kept.lead_source_pk = final_exits.lead_id
            )
        union all
        select deleted_leads.lead_source_pk
        from deleted_leads
    ) as unreplaced
),

final as (
    select * from kept
    union all
    select * from markers
)

{%- else %}

final as (
    select * from kept
)

{%- endif %}

select * from final
