{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='lead_source_pk',
    on_schema_change='append_new_columns',
    indexes=[
        {'columns': ['lead_source_pk'], 'unique': true},
    ],
) }}

{#- Which leads a registry change can cure: for each lead, when the build last loaded a
    change of a person who holds, or held until that change, one of the lead's keys or a
    document or phone one edit from it (`one_edit_neighbours`): the persons the
    matcher's exact and one-edit lookups find for that lead, before and after. A person
    counts as changed when `person_keys` loaded it since this model's last run with
    another `identifiers_hash` than it replaced (its name or raw identifiers changed, or
    it is new). `touched_at` is that load's `loaded_at` (our clock: an upstream
    `updated_at` dated in the past cannot hide a change). The backlog view retries a
    failed lead touched after its last attempt; a change that touches no lead's keys
    retries nothing.

    The row `lead_source_pk = '*'` stands for every lead. Built from scratch (the first
    build, `--full-refresh`), this table cannot know what was touched before: `*` takes
    the registry's newest `changed_at`, the rule before this model (every failed lead
    attempted before the newest registry change is due once), which a rebuild reaches
    again from the same sources. When one run reads more than
    `registry_touch_max_persons` changed persons (a rebuilt registry, a bulk
    correction), `*` takes that load's `loaded_at` instead of spelling out their leads.
    Its `loaded_at` (every row's: the writing run's transaction time) is the watermark:
    the next run reads the persons `person_keys` loaded after it.

    A blocklisted junk value (`junk_phones`, ...) touches nothing: it is never a lead's
    key, whoever holds it. A deleted person touches the leads holding the keys it held:
    `person_keys` keeps its rows for one build as a tombstone (keys and hash moved to
    `previous_*`, `identifiers_hash` null), read here like any other change. -#}

{%- set max_persons = sql_integer(
    'registry_touch_max_persons', var('registry_touch_max_persons')
) | trim | int %}

with

person_keys as (
    select * from {{ ref('person_keys') }}
),

lead_keys as (
    select * from {{ ref('int_lead_identifiers__stored') }}
),

{% if is_incremental() -%}
stored_every_lead as (
    select
        touched_at,
        loaded_at
    from {{ this }}
    where lead_source_pk = '*'
),
{%- else %}
stored_every_lead as (
    select
        null::timestamptz as touched_at,
        null::timestamptz as loaded_at
    where false
),
{%- endif %}

-- the persons loaded since the last run, changed (every row of a person: its three keys)
loaded as (
    select person_keys.*
    from person_keys
    where
        person_keys.loaded_at > coalesce(
            (select stored_every_lead.loaded_at from stored_every_lead), '-infinity'
        )
        and person_keys.identifiers_hash is distinct from person_keys.previous_identifiers_hash
),

-- the changed persons' rows, counted up to the limit only (three rows a person)
loaded_up_to_limit as (
    select loaded.person_key
    from loaded
    limit {{ 3 * max_persons + 1 }}
),

-- spelled out lead by lead unless this table starts empty or too many persons changed
run as (
    select
        (select stored_every_lead.loaded_at from stored_every_lead) is null as is_from_scratch,
        (select count(*) from loaded_up_to_limit) > {{ 3 * max_persons }} as is_bulk
),

-- values blocklisted as junk are never a lead's key, whoever holds them
blocklisted as (
    select * from {{ ref('junk_keys') }}
    where junk_reason = 'blocklist'
),

-- the keys the changed persons hold now and those they held before the change
changed_keys as (
    select
        key_type,
        key_value,
        loaded_at
    from loaded
    where key_value is not null
    union
    select
        key_type,
        previous_key_value as key_value,
        loaded_at
    from loaded
    where previous_key_value is not null
),

touching_keys as (
    select changed_keys.*
    from changed_keys
    where not exists (
        select 1 from blocklisted
        where
            blocklisted.key_type = changed_keys.key_type
            and blocklisted.key_value = changed_keys.key_value
    )
),

-- those keys, and every value one edit from a document or phone among them
touching_values as (
    select
        key_type,
        key_value,
        loaded_at
    from touching_keys
    union all
    select
        touching_keys.key_type,
        neighbours.key_value,
        touching_keys.loaded_at
    from touching_keys
    cross join lateral (  -- noqa: ST05
        {{ one_edit_neighbours('touching_keys.key_type', 'touching_keys.key_value') }}
    ) as neighbours
),

touching as (
    select
        key_type,
        key_value,
        max(loaded_at) as loaded_at
    from touching_values
    group by key_type, key_value
),

-- each lead's keys, one row a key (one scan: each import CTE is read once, so inlined)
lead_values as (
    select
        lead_keys.lead_id,
        lead_key_values.key_type,
        lead_key_values.key_value
    from lead_keys
    cross join {{ key_values('lead_keys') }} as lead_key_values (key_type, key_value)
    where lead_key_values.key_value is not null
),

touched_leads as (
    select
        lead_values.lead_id as lead_source_pk,
        max(touching.loaded_at) as touched_at
    from touching
    inner join lead_values
        on
            lead_values.key_type = touching.key_type
            and lead_values.key_value = touching.key_value
    where
        not (select run.is_from_scratch or run.is_bulk from run)
        and lead_values.lead_id <> '*'  -- a lead named so is every lead's row
    group by lead_values.lead_id
),

final as (
    select
        lead_source_pk,
        touched_at,
        now() as loaded_at
    from touched_leads
    union all
    select
        '*' as lead_source_pk,
        case
            -- the table, not the import CTE: read twice, the CTE would be materialized
            -- whole (six million rows at `large`); this is an index read
            when run.is_from_scratch
                then (select max(registry.changed_at) from {{ ref('person_keys') }} as registry)
            when run.is_bulk then (select max(loaded.loaded_at) from loaded)
            else (select stored_every_lead.touched_at from stored_every_lead)
        end as touched_at,
        now() as loaded_at
    from run
)

select * from final
