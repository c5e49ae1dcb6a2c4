{{ config(
    materialized='table_in_place',
    indexes=[
        {'columns': ['key_type', 'key_value'], 'unique': true},
    ],
) }}

{#- The unique index is the primary key, and it lets PostgreSQL drop the junk joins of
    `int_lead_identifiers` from queries that read no key (the backlog view's count). -#}

{#- a list, or one value given as text (`--vars '{junk_emails: a@b.co}'`) -#}
{%- set blocklists = {} %}
{%- for key_type in ['phone', 'document', 'email'] %}
{%- set values = var('junk_' ~ key_type ~ 's', []) %}
{%- do blocklists.update({key_type: [values] if values is string else (values or [])}) %}
{%- endfor %}

with

person_keys as (
    select * from {{ ref('person_keys') }}
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
        ({{ sql_literal(key_type) }}, {{ sql_literal(value) }})
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
    -- one row per (person, key type) (the unique index of person_keys): count(*)
    -- counts persons, read from the (key_type, key_value) index alone
    having count(*) > {{ sql_integer('junk_shared_threshold', var('junk_shared_threshold')) }}
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
