{% macro analyze_when_changed(relation, share=0.1) -%}
{#- `analyze` the table when this run wrote more than `share` of its rows (those whose
    `loaded_at` is the run's transaction time), or it was never analyzed (a first build):
    autovacuum's own threshold. An hour's few changed leads barely move the statistics,
    and sampling 30,000 rows of a large table cost each incremental build up to 0.4 s per
    table. A post-hook: it runs in the run's transaction, so `now()` is its `loaded_at`. -#}
do $analyze$
begin
    if (
        select
            tables.reltuples < 0
            or (
                select count(*) from {{ relation }}
                where loaded_at = now()
            ) > {{ share }} * tables.reltuples
        from pg_class as tables
        where tables.oid = '{{ relation.include(database=false) }}'::regclass
    ) then
        analyze {{ relation }};
    end if;
end
$analyze$
{%- endmacro %}
