{#-
    Post-hook of `cabinet_kpi_red_recovery_queue`, run in the model's transaction: the rows
    of leads with no backlog interval any more (deleted upstream, or found never red) go.
    After the run's inserts every lead of `int_backlog_intervals` has a row, so there is
    something to delete only when the queue has more rows than the intervals have leads:
    a build with nothing to delete reads two counts.
-#}
{%- macro delete_stale_queue_rows(relation) -%}
delete from {{ relation }} as queue
where
    (select count(*) from {{ relation }})
    > (
        select count(*) from {{ ref('int_backlog_intervals') }}
        where interval_number = 1
    )
    and not exists (
        select 1 from {{ ref('int_backlog_intervals') }} as intervals
        where intervals.lead_source_pk = queue.lead_source_pk
    )
{%- endmacro %}
