{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='person_key',
    on_schema_change='append_new_columns',
    indexes=[
        {'columns': ['key_type', 'variant', 'person_key'], 'unique': true},
        {'columns': ['person_key']},
        {'columns': ['loaded_at']},
    ],
) }}

{#- The symmetric deletion neighbourhood of the registry's documents and phones, for the
    matcher's one-edit lookup: a lead value and a person value one edit apart
    (substitution, insertion, deletion, adjacent transposition) always share a variant
    here (the value itself or one of its 1-character deletions). The edit applies to the
    document NUMBER (the TYPE stays) and to the national number of a phone of the
    configured country; values shorter than `near_match_min_length` are left out.

    Incremental, from `person_keys` (the stored, incremental registry keys): a run
    rebuilds the rows of exactly the persons `person_keys` rewrote since this table's
    last run (its `loaded_at`, the writing run's transaction time, after this table's
    own maximum), delete+insert by person. (A watermark on `changed_at` minus the
    look-back re-read every person changed in the last hour on every build, although
    `person_keys` had skipped them as unchanged: 14 of 20 s of an incremental build
    at medium.) Every holder of a value is kept, junk and shared values
    too: those filters are the matcher's, at query time (`matcher/sql/near_candidates.sql`
    reads the holders of each value in `person_keys` without junk, so no stale key,
    and drops a value held by two or more persons), so a change of the junk list or of another
    person's keys never forces a rebuild here. The unique index is the primary key,
    enforced as rows are written, and the lookup index through its `(key_type, variant)`
    prefix; `person_key` serves the incremental delete, `loaded_at` the watermark. -#}

{%- set country_code = var('phone_country_code') | string %}

with

person_keys as (
    select * from {{ ref('person_keys') }}
    {% if is_incremental() -%}
    {%- if relation_has_column(this, 'loaded_at') %}
    where loaded_at > {{ stored_watermark(this, 'loaded_at') }}
    {%- endif %}
    {%- endif %}
),

near_keys as (
    select
        key_type,
        key_value,
        person_key,
        loaded_at
    from person_keys
    where
        key_type in ('document', 'phone')
        and key_value is not null
),

split_values as (
    select
        key_type,
        key_value,
        person_key,
        loaded_at,
        case
            when key_type = 'document' then split_part(key_value, ':', 1) || ':'
            else {{ sql_literal(country_code) }}
        end as fixed_prefix,
        case
            when key_type = 'document' then split_part(key_value, ':', 2)
            else substr(key_value, {{ country_code | length + 1 }})
        end as editable_part
    from near_keys
    where
        key_type = 'document'
        or left(key_value, {{ country_code | length }}) = {{ sql_literal(country_code) }}
),

eligible_values as (
    select *
    from split_values
    where
        length(editable_part)
        >= {{ sql_integer('near_match_min_length', var('near_match_min_length', 6), 1) }}
),

-- position 0 keeps the value itself; deleting any character of a run of equal ones
-- gives the same variant, so only the first of each run is deleted (no duplicates)
variants as (
    select
        eligible_values.key_type,
        case
            when deleted_at = 0 then eligible_values.key_value
            else
                eligible_values.fixed_prefix
                || overlay(eligible_values.editable_part placing '' from deleted_at for 1)
        end as variant,
        eligible_values.key_value,
        eligible_values.person_key,
        eligible_values.loaded_at
    from eligible_values
    cross join lateral generate_series(0, length(eligible_values.editable_part)) as deleted_at
    where
        deleted_at <= 1
        or substr(eligible_values.editable_part, deleted_at, 1)
        <> substr(eligible_values.editable_part, deleted_at - 1, 1)
),

final as (
    select
        key_type,
        variant,
        key_value,
        person_key,
        loaded_at
    from variants
)

select * from final
