{#-
    True when `candidate` (a relation just built) can take `existing`'s place in place:
    every column of `existing` is at the same position in `candidate` with the same name,
    type, type modifier and collation (PostgreSQL's own rule for `create or replace
    view`); with `exact`, `candidate` has no other columns either (for `delete` + `insert`).
-#}
{%- macro columns_compatible(existing, candidate, exact=false) -%}
    {%- set query -%}
        with

        existing_columns as (
            select attnum, attname, atttypid, atttypmod, attcollation
            from pg_catalog.pg_attribute
            where
                attrelid = {{ sql_literal(existing.include(database=false).render()) }}::regclass
                and attnum > 0
                and not attisdropped
        ),

        candidate_columns as (
            select attnum, attname, atttypid, atttypmod, attcollation
            from pg_catalog.pg_attribute
            where
                attrelid = {{ sql_literal(candidate.include(database=false).render()) }}::regclass
                and attnum > 0
                and not attisdropped
        )

        select
            not exists (
                select 1
                from existing_columns
                left join candidate_columns
                    on candidate_columns.attnum = existing_columns.attnum
                where
                    candidate_columns.attname is distinct from existing_columns.attname
                    or candidate_columns.atttypid is distinct from existing_columns.atttypid
                    or candidate_columns.atttypmod is distinct from existing_columns.atttypmod
                    or candidate_columns.attcollation is distinct from existing_columns.attcollation
            )
            {%- if exact %}
            and (select count(*) from existing_columns) = (select count(*) from candidate_columns)
            {%- endif %}
            as is_compatible
    {%- endset -%}
    {{ return(run_query(query).columns[0].values()[0]) }}
{%- endmacro %}
