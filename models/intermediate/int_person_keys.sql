{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='person_key',
    on_schema_change='append_new_columns',
    indexes=[
        {'columns': ['person_key']},
        {'columns': ['changed_at']},
    ],
) }}

{#- Normalizing the registry is the costliest step of a build, so it is done once per
    person change: an incremental run re-normalizes only persons whose
    `coalesce(updated_at, created_at)` is at or after the stored maximum minus
    `queue_lookback_minutes` (future-dated rows are ignored for the maximum, so they are
    re-read each run). (A person deleted from the registry keeps its rows until
    the next --full-refresh.) -#}

with

persons as (
    select * from {{ ref('stg_canon__persons') }}
    {% if is_incremental() -%}
    where
        changed_at is null
        or changed_at >= (
            -- future-dated rows never move the watermark (and are re-read every run)
            select coalesce(max(changed_at) filter (where changed_at <= now()), '-infinity')
                - interval '{{ var("queue_lookback_minutes") }} minutes'
            from {{ this }}
        )
    {%- endif %}
),

unpivoted as (
    select
        persons.person_key,
        person_key_values.key_type,
        person_key_values.key_value,
        persons.full_name,
        persons.changed_at
    from persons
    cross join lateral (
        values
        ('phone', persons.phone_key),
        ('document', persons.document_key),
        ('email', persons.email_key)
    ) as person_key_values (key_type, key_value)
),

-- a null key is kept, so a person who loses a key drops it on the next run
final as (
    select
        person_key,
        key_type,
        key_value,
        full_name,
        changed_at
    from unpivoted
)

select * from final
