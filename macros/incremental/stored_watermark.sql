{% macro stored_watermark(relation, column) -%}
{#- The newest `column` stored in `relation`, future-dated rows ignored (they never move
    the watermark, and are re-read every run); '-infinity' when the table is empty. A
    `where`, not an aggregate `filter`: PostgreSQL then reads the maximum from the
    column's index (one backward probe) instead of scanning the table. -#}
(
    select coalesce(max({{ column }}), '-infinity')
    from {{ relation }}
    where {{ column }} <= now()
)
{%- endmacro %}
