{#-
    One row per (person, key type) of `persons` (a relation or CTE with the columns of
    `stg_canon__persons`): the normalized `key_value` (null when absent, so a person who
    loses a key drops it), the name, `changed_at` and `identifiers_hash`. The one
    definition behind `person_keys` (stored) and `person_keys_changed` (live).
-#}
{%- macro unpivot_person_keys(persons) -%}
select
    persons.person_key,
    person_key_values.key_type,
    person_key_values.key_value,
    persons.full_name,
    persons.changed_at,
    persons.identifiers_hash
from {{ persons }} as persons
cross join {{ key_values('persons') }} as person_key_values (key_type, key_value)
{%- endmacro %}
