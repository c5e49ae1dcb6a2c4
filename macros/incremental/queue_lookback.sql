{#- `queue_lookback_minutes` as an interval: how far back an incremental build re-reads
    rows older than its watermark (late commits). A compile error unless a whole number. -#}
{%- macro queue_lookback() -%}
    make_interval(mins => {{ sql_integer('queue_lookback_minutes', var('queue_lookback_minutes')) }})
{%- endmacro %}
