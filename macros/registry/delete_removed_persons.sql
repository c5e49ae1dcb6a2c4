{#-
    Post-hook of `person_keys`, run in the model's transaction: the persons no longer in
    the registry go, in two steps so that `int_lead_registry_touches` (built next) sees
    which keys they held.

    1. The tombstones an earlier run left are deleted (the touches have read them; a
       partial index on `loaded_at` finds them, created here when this table has none:
       `partial_index`).
    2. The rows of persons no longer in the registry become tombstones: their keys and
       hash move to `previous_key_value` and `previous_identifiers_hash`, `key_value`,
       `full_name` and `identifiers_hash` are nulled (no lookup finds them: every reader
       looks up by key value) and `loaded_at` is this run's. Only when there are more
       stored persons than registry rows (after the run's inserts every registry person
       is stored), so a build with no deletion reads two counts and changes nothing.
-#}
{%- macro delete_removed_persons(relation) -%}
{{ partial_index(relation, ['loaded_at'], '(identifiers_hash IS NULL)') }};

delete from {{ relation }}
where identifiers_hash is null and loaded_at < now();

update {{ relation }} as stored
set
    previous_key_value = stored.key_value,
    previous_identifiers_hash = stored.identifiers_hash,
    key_value = null,
    full_name = null,
    identifiers_hash = null,
    loaded_at = now()
where
    (select count(*) from {{ relation }} where key_type = 'phone')
    > (select count(*) from {{ ref('stg_canon__persons') }})
    and not exists (
        select 1 from {{ ref('stg_canon__persons') }} as persons
        where persons.person_key = stored.person_key
    )
{%- endmacro %}
