{#-
    A table refreshed in place. dbt-postgres's `table` builds `<name>__dbt_tmp`, swaps it
    in and drops the old table with CASCADE, which drops every view built on it until
    their models run again (see `view_in_place`). Here the new rows are built as
    `<name>__dbt_tmp`; when its columns are exactly the existing table's, the table's rows
    are replaced with `delete` + `insert` in the build's transaction (readers see the old
    rows until the commit and are never blocked; the table keeps its dependents, indexes,
    owner and grants). Otherwise, or when no table exists yet, it does what dbt's `table`
    does. For small tables: `delete` rewrites every row.
-#}
{%- materialization table_in_place, adapter='postgres' -%}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set intermediate_relation = make_intermediate_relation(target_relation) -%}
    {%- set backup_relation_type = 'table' if existing_relation is none else existing_relation.type -%}
    {%- set backup_relation = make_backup_relation(target_relation, backup_relation_type) -%}
    {%- set grant_config = config.get('grants') -%}

    {{ drop_relation_if_exists(load_cached_relation(intermediate_relation)) }}
    {{ drop_relation_if_exists(load_cached_relation(backup_relation)) }}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}

    -- `BEGIN` happens here:
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {%- call statement('candidate') -%}
        {{ get_create_table_as_sql(False, intermediate_relation, sql) }}
    {%- endcall %}

    {%- set in_place = existing_relation is not none
        and existing_relation.is_table
        and columns_compatible(existing_relation, intermediate_relation, exact=true) %}

    {%- if in_place %}
        {%- set columns = adapter.get_columns_in_relation(existing_relation)
            | map(attribute='quoted') | join(', ') %}
        {%- call statement('main') -%}
            delete from {{ target_relation }};
            insert into {{ target_relation }} ({{ columns }})
            select {{ columns }} from {{ intermediate_relation }}
        {%- endcall %}
        {{ drop_relation_if_exists(intermediate_relation) }}
    {%- else %}
        {%- call statement('main') -%}
            select 1
        {%- endcall %}
        {%- do create_indexes(intermediate_relation) %}
        {%- if existing_relation is not none %}
            {{ adapter.rename_relation(existing_relation, backup_relation) }}
        {%- endif %}
        {{ adapter.rename_relation(intermediate_relation, target_relation) }}
    {%- endif %}

    {{ run_hooks(post_hooks, inside_transaction=True) }}

    {%- set should_revoke = should_revoke(existing_relation, full_refresh_mode=not in_place) %}
    {%- do apply_grants(target_relation, grant_config, should_revoke=should_revoke) %}

    {%- do persist_docs(target_relation, model) %}

    -- `COMMIT` happens here
    {{ adapter.commit() }}

    {%- if not in_place %}
        {{ drop_relation_if_exists(backup_relation) }}
    {%- endif %}

    {{ run_hooks(post_hooks, inside_transaction=False) }}

    {{ return({'relations': [target_relation]}) }}
{%- endmaterialization -%}
