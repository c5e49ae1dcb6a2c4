{{ config(
    materialized='table_in_place',
    indexes=[
        {'columns': ['key_type', 'key_value'], 'unique': true},
    ],
) }}

{#- The unique index is the primary key. `int_lead_identifiers` tests each lead's keys
    against the values of one type (a subquery hashed once per statement). Counted
    incrementally: a value becomes shared only by gaining a holder, a person
    `person_keys` (re)loaded since the last count (its `loaded_at` after this table's:
    each build writes `person_keys` before this), and stops being junk only by losing
    one, so a build recounts those persons' values and the values already junk, each
    from the `(key_type, key_value)` index. Every value is counted on `--full-refresh`,
    on the first build, and while the table is empty (no watermark). -#}

{#- a list, or one value given as text (`--vars '{junk_emails: a@b.co}'`) -#}
{%- set blocklists = {} %}
{%- for key_type in key_types() %}
{%- set values = var('junk_' ~ key_type ~ 's', []) %}
{%- do blocklists.update({key_type: [values] if values is string else (values or [])}) %}
{%- endfor %}

{%- set counts_since_last = not should_full_refresh() and relation_has_column(this, 'loaded_at') %}

with

-- read in several places: `not materialized` keeps each a scan of the table's indexes
-- (a CTE read twice is otherwise materialized: six million rows at `large`)
person_keys as not materialized (
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

{%- set threshold = sql_integer('junk_shared_threshold', var('junk_shared_threshold')) %}

{% if counts_since_last -%}

stored as (
    select * from {{ this }}
),

last_count as (
    select max(loaded_at) as loaded_at
    from stored
),

-- the values that can have crossed the threshold since the last count
recounted_values as (
    select
        stored.key_type,
        stored.key_value
    from stored
    union
    select
        person_keys.key_type,
        person_keys.key_value
    from person_keys
    where
        person_keys.key_value is not null
        and person_keys.loaded_at > (select last_count.loaded_at from last_count)
),

-- one index probe per value (a lateral count: a join would be planned on a guess)
recounted as (
    select
        recounted_values.key_type,
        recounted_values.key_value,
        'shared'::text as junk_reason
    from recounted_values
    cross join
        lateral (
            select count(*) as persons
            from person_keys as holders
            where
                holders.key_type = recounted_values.key_type
                and holders.key_value = recounted_values.key_value
        ) as holders
    where holders.persons > {{ threshold }}
),

-- no watermark (an empty table): every value, as on a first build
counted_whole as (
    select
        key_type,
        key_value,
        'shared'::text as junk_reason
    from person_keys
    where
        key_value is not null
        and (select last_count.loaded_at from last_count) is null
    group by key_type, key_value
    having count(*) > {{ threshold }}
),

shared as (
    select * from recounted
    union all
    select * from counted_whole
),

{%- else %}

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
    having count(*) > {{ threshold }}
),

{%- endif %}

combined as (
    select * from blocklisted
    union all
    select * from shared
),

final as (
    select distinct on (key_type, key_value)
        key_type,
        key_value,
        junk_reason,
        now() as loaded_at
    from combined
    order by key_type asc, key_value asc, junk_reason = 'blocklist' desc
)

select * from final
