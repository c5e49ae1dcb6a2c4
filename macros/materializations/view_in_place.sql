{#-
    A view replaced in place. dbt-postgres's `view` builds `<name>__dbt_tmp`, renames the
    old view away and drops it with CASCADE after the commit, which drops every view
    built on it; those come back only when their own models run later in the same build,
    so a failure anywhere between (a missing source table) leaves them dropped: the live
    backlog view, and with it the matcher, down until the next good build.

    Here the new definition is built as `<name>__dbt_tmp` too, then compared with the
    existing view. When it is the same view (`view_unchanged`: the same deparsed query,
    hence the same columns, as in every build after the first of a release), nothing is
    replaced: `create or replace view` takes an ACCESS EXCLUSIVE lock, which waits for
    every read of the view in progress (a BI query, the matcher's) and makes every later
    read wait behind it. When it keeps every existing column (same position, name and type; new
    columns may follow), the view is replaced with `create or replace view`, which keeps
    its dependent views, its owner and its grants. Otherwise (a column renamed, retyped or
    removed), or when no view exists yet, it does what dbt's `view` does. Grants and
    comments (`persist_docs`) are applied in every case; neither blocks a read.
-#}
{%- materialization view_in_place, adapter='postgres' -%}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set target_relation = this.incorporate(type='view') -%}
    {%- set intermediate_relation = make_intermediate_relation(target_relation) -%}
    {%- set backup_relation_type = 'view' if existing_relation is none else existing_relation.type -%}
    {%- set backup_relation = make_backup_relation(target_relation, backup_relation_type) -%}
    {%- set grant_config = config.get('grants') -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}

    {{ drop_relation_if_exists(load_cached_relation(intermediate_relation)) }}
    {{ drop_relation_if_exists(load_cached_relation(backup_relation)) }}

    -- `BEGIN` happens here:
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {%- call statement('candidate') -%}
        {{ get_create_view_as_sql(intermediate_relation, sql) }}
    {%- endcall %}

    {%- set is_view = existing_relation is not none and existing_relation.is_view %}
    {%- set unchanged = is_view and view_unchanged(existing_relation, intermediate_relation) %}
    {%- set in_place = unchanged
        or (is_view and columns_compatible(existing_relation, intermediate_relation)) %}

    {%- if in_place %}
        {{ drop_relation_if_exists(intermediate_relation) }}
        {%- call statement('main') -%}
            {{ 'select 1' if unchanged else get_replace_view_sql(target_relation, sql) }}
        {%- endcall %}
    {%- else %}
        {%- call statement('main') -%}
            select 1
        {%- endcall %}
        {%- if existing_relation is not none %}
            {{ adapter.rename_relation(existing_relation, backup_relation) }}
        {%- endif %}
        {{ adapter.rename_relation(intermediate_relation, target_relation) }}
    {%- endif %}

    {%- set should_revoke = should_revoke(existing_relation, full_refresh_mode=not in_place) %}
    {%- do apply_grants(target_relation, grant_config, should_revoke=should_revoke) %}

    {%- do persist_docs(target_relation, model) %}

    {{ run_hooks(post_hooks, inside_transaction=True) }}

    {{ adapter.commit() }}

    {%- if not in_place %}
        {{ drop_relation_if_exists(backup_relation) }}
    {%- endif %}

    {{ run_hooks(post_hooks, inside_transaction=False) }}

    {{ return({'relations': [target_relation]}) }}
{%- endmaterialization -%}
