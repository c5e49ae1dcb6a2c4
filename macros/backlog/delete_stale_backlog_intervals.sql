{#-
    Post-hook of `int_backlog_intervals`, run in the model's transaction: drops the
    markers (`interval_number = 0`) of recomputed leads that have no interval any more,
    and the rows of leads deleted upstream.
-#}
{%- macro delete_stale_backlog_intervals(relation) -%}
delete from {{ relation }} as intervals
where
    intervals.interval_number = 0
    or not exists (
        select 1 from {{ ref('stg_cabinet__leads') }} as leads
        where leads.lead_id = intervals.lead_source_pk
    )
{%- endmacro %}
