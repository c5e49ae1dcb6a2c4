{#-
    Post-hook of `person_keys`, run in the model's transaction: the rows of persons no
    longer in the registry go. Only when there are more stored persons than registry rows
    (after the run's inserts every registry person is stored), so a build with no deletion
    reads two counts and deletes nothing.
-#}
{%- macro delete_removed_persons(relation) -%}
delete from {{ relation }} as stored
where
    (select count(*) from {{ relation }} where key_type = 'phone')
    > (select count(*) from {{ ref('stg_canon__persons') }})
    and not exists (
        select 1 from {{ ref('stg_canon__persons') }} as persons
        where persons.person_key = stored.person_key
    )
{%- endmacro %}
