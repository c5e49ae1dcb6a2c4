{#-
    True when `candidate` (a view just built) is `existing` again: PostgreSQL deparses both
    stored queries to the same text (`pg_get_viewdef`: the same output columns with their
    names, the same expressions and referenced relations; both live in one schema, so
    names resolve alike). The columns' types, type modifiers and collations follow from
    that query, so they are the same too.
-#}
{%- macro view_unchanged(existing, candidate) -%}
    {%- set query -%}
        select
            pg_catalog.pg_get_viewdef(
                {{ sql_literal(existing.include(database=false).render()) }}::regclass
            )
            = pg_catalog.pg_get_viewdef(
                {{ sql_literal(candidate.include(database=false).render()) }}::regclass
            )
    {%- endset -%}
    {{ return(run_query(query).columns[0].values()[0]) }}
{%- endmacro %}
