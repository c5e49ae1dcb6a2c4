{#-
    Post-hook of `int_backlog_intervals`, run in the model's transaction: drops the
    markers (`interval_number = 0`) an incremental run writes for the leads it recomputed
    that have no interval any more, and for the leads deleted upstream (whose stored rows
    the run's delete removed).
-#}
{%- macro delete_stale_backlog_intervals(relation) -%}
delete from {{ relation }}
where interval_number = 0
{%- endmacro %}
