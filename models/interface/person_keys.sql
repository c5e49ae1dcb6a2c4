{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='person_key',
    on_schema_change='append_new_columns',
    indexes=[
        {'columns': ['person_key', 'key_type'], 'unique': true},
        {'columns': ['key_type', 'key_value']},
        {'columns': ['changed_at']},
        {'columns': ['loaded_at']},
    ],
    post_hook=[
        "{{ delete_removed_persons(this) }}",
        '{{ analyze_when_changed(this) }}',
        {'sql': 'vacuum {{ this }}', 'transaction': false},
    ],
) }}

{#- Normalizing the registry is the costliest step of a build, so it is done once per
    person change: an incremental run re-normalizes only persons whose
    `coalesce(updated_at, created_at)` is at or after the stored maximum minus
    `queue_lookback_minutes` (future-dated rows are ignored for the maximum, so they are
    re-read each run); a person with neither timestamp only when its identifiers hash
    (`lead_identifiers_hash` over the person's columns) differs from the stored one. The
    post-hook `delete_removed_persons` turns the persons deleted from the registry into
    tombstones (keys null, the old ones in `previous_*`) and removes the last build's. A
    person inserted or edited with timestamps older than the watermark minus the look-back
    (a backdated row) is normalized at the next --full-refresh; until then the matcher's
    write, which checks each chosen person's live registry row, refuses any link that
    rests on its stale keys. The unique index is the primary key, enforced as rows are
    written (its primary-key test reads the catalog); `(key_type, key_value)` serves
    the matcher's candidate lookups (exact, and every value one edit from a lead's),
    `max(changed_at)` is the registry's newest change (an index read: the touches' row
    `*` when built from scratch), and
    `max(loaded_at)` (the writing run's transaction time) the build
    `person_keys_changed` reads changes after. `previous_key_value` and
    `previous_identifiers_hash` keep what each rewritten row replaced, so
    `int_lead_registry_touches` sees the keys a person dropped too. The
    post-hooks analyze the table when the run wrote a tenth of it (`analyze_when_changed`:
    sampling 30,000 rows took 0.5 s at `large`, on every build), and vacuum it after the
    transaction, so the index-only scans of `junk_keys` and the matcher's lookups need no
    heap visits (10 ms when nothing changed). -#}

with

all_persons as (
    select * from {{ ref('stg_canon__persons') }}
),

persons as (
    select all_persons.*
    from all_persons
    {% if is_incremental() -%}
    cross join (  -- noqa: ST05
        select {{ stored_watermark(this, 'changed_at') }} as changed_at
    ) as watermark
    where
        all_persons.changed_at > watermark.changed_at
        or (
            (
                all_persons.changed_at is null
                or all_persons.changed_at
                >= watermark.changed_at - {{ queue_lookback() }}
            )
            {%- if relation_has_column(this, 'identifiers_hash') %}
            -- within the look-back, only persons whose identifiers changed since stored
            and not exists (
                select 1 from {{ this }} as stored
                where
                    stored.person_key = all_persons.person_key
                    and stored.key_type = 'phone'
                    and stored.identifiers_hash = all_persons.identifiers_hash
            )
            {%- endif %}
        )
    {%- endif %}
),

unpivoted as (
    {{ unpivot_person_keys('persons') }}
),

-- what each rewritten row replaces, read before the delete+insert: the key a person held
-- before this run (one probe of the unique index per written row: a lateral with a limit,
-- so PostgreSQL never joins the whole registry to this table for the few changed)
{% if is_incremental() -%}
replaced as (
    select * from {{ this }}
),
{%- else %}
replaced as (
    select
        null::text as person_key,
        null::text as key_type,
        null::text as key_value,
        null::text as identifiers_hash
    where false
),
{%- endif %}

-- a null key is kept, so a person who loses a key drops it on the next run
final as (
    select
        unpivoted.person_key,
        unpivoted.key_type,
        unpivoted.key_value,
        unpivoted.full_name,
        unpivoted.changed_at,
        unpivoted.identifiers_hash,
        now() as loaded_at,
        replaced_row.key_value as previous_key_value,
        replaced_row.identifiers_hash as previous_identifiers_hash
    from unpivoted
    left join lateral (
        select
            replaced.key_value,
            replaced.identifiers_hash
        from replaced
        where
            replaced.person_key = unpivoted.person_key
            and replaced.key_type = unpivoted.key_type
        order by replaced.key_type
        limit 1
    ) as replaced_row on true
)

select * from final
