{{ config(
    materialized='table',
    indexes=[
        {'columns': ['key_type', 'key_value'], 'unique': true},
    ],
) }}

{#- The unique index is the primary key, and it lets PostgreSQL drop the junk joins of
    `int_lead_identifiers` from queries that read no key (the backlog view's count). -#}

{%- set blocklists = {
    'phone': var('junk_phones', []),
    'document': var('junk_documents', []),
    'email': var('junk_emails', []),
} %}

with

person_keys as (
    select * from {{ ref('int_person_keys') }}
),

blocklisted as (
    select
        blocked.key_type,
        blocked.key_value,
        'blocklist'::text as junk_reason
    from (
        values
        (null::text, null::text)
        {%- for key_type, values in blocklists.items() %}{% for value in values %},
        ('{{ key_type }}', '{{ value | replace("'", "''") }}')
        {%- endfor %}{% endfor %}
    ) as blocked (key_type, key_value)
    where blocked.key_value is not null
),

shared as (
    select
        key_type,
        key_value,
        'shared'::text as junk_reason
    from person_keys
    where key_value is not null
    group by key_type, key_value
    -- one row per (person, key type) (the unique index of int_person_keys): count(*)
    -- counts persons, read from the (key_type, key_value) index alone
    having count(*) > {{ var('junk_shared_threshold') }}
),

combined as (
    select * from blocklisted
    union all
    select * from shared
),

final as (
    select distinct on (key_type, key_value)
        key_type,
        key_value,
        junk_reason
    from combined
    order by key_type asc, key_value asc, junk_reason = 'blocklist' desc
)

select * from final
