{#-
    True when the view `view` reads `column` of `relation` (its rewrite rule depends on
    that column, in the catalog), at run time; false while parsing, or when either does
    not exist. A model that reads a source through a staging view asks the view, not the
    source: a staging view built before the source gained a column reads it as null until
    the view is rebuilt.
-#}
{%- macro view_reads_column(view, relation, column) -%}
    {%- if not execute -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set query -%}
        select exists (
            select 1
            from pg_catalog.pg_rewrite as rules
            inner join pg_catalog.pg_depend as depends
                on
                    depends.classid = 'pg_catalog.pg_rewrite'::regclass
                    and depends.objid = rules.oid
            inner join pg_catalog.pg_attribute as attributes
                on
                    attributes.attrelid = depends.refobjid
                    and attributes.attnum = depends.refobjsubid
            where
                rules.ev_class = to_regclass({{ sql_literal(view.include(database=false).render()) }})
                and depends.refobjid = to_regclass({{ sql_literal(relation.include(database=false).render()) }})
                and attributes.attname = {{ sql_literal(column) }}
        )
    {%- endset -%}
    {{ return(run_query(query).columns[0].values()[0]) }}
{%- endmacro %}
