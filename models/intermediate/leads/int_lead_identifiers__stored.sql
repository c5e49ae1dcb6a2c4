{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='lead_id',
    on_schema_change='append_new_columns',
    indexes=[
        {'columns': ['lead_id'], 'unique': true},
        {'columns': ['loaded_at']},
    ],
    post_hook=['{{ analyze_when_changed(this) }}'],
) }}

{#- The normalized keys of every lead, computed once per change of its identifiers, so
    the live backlog view does not normalize every lead on every query. An incremental
    run normalizes only the leads that are new or whose `identifiers_hash` differs from
    the stored one (an anti-join on `(lead_id, identifiers_hash)`: no watermark to miss a
    backdated update). Junk is not removed here (it changes with the registry):
    `int_lead_identifiers` removes it live. A lead deleted upstream keeps its row, which
    nothing reads (every reader starts from the leads). `loaded_at` (the writing run's
    transaction time) tells the queue which leads' identifiers changed since its own last
    run. -#}

with

leads as (
    select * from {{ ref('stg_cabinet__leads') }}
),

{% if is_incremental() -%}

stored as (
    select * from {{ this }}
),

changed_leads as (
    select leads.*
    from leads
    where not exists (
        select 1 from stored
        where
            stored.lead_id = leads.lead_id
            and stored.identifiers_hash = leads.identifiers_hash
    )
),

{%- else %}

changed_leads as (
    select * from leads
),

{%- endif %}

final as (
    select
        lead_id,
        identifiers_hash,
        phone_key,
        document_key,
        email_key,
        now() as loaded_at
    from changed_leads
)

select * from final
