{#-
    A one-row `select` of `is_bulk`: true when the rows `counted` (a CTE or relation) are
    more than `backlog_due_bulk_percent` percent of `relation`'s estimated rows. Read as
    an InitPlan (`where (select is_bulk ...)`), it picks once per query between reading
    the backlog view one lead at a time and reading it whole (a drain, a full build).
-#}
{%- macro is_bulk_share(counted, relation) -%}
select
    (select count(*) from {{ counted }}) * 100
    > {{ sql_integer('backlog_due_bulk_percent', var('backlog_due_bulk_percent')) }}
    * greatest(tables.reltuples, 0) as is_bulk
from pg_class as tables
where tables.oid = '{{ relation.include(database=false) }}'::regclass
{%- endmacro %}
