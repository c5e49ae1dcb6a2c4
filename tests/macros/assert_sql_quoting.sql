-- sql_literal, sql_identifier and sql_integer on hostile values: returns the cases where
-- what PostgreSQL reads differs from the value (built here with chr(), independently).
{%- set q = "'" %}
{%- set dq = '"' %}
{%- set bs = '\\' %}

with

literals as (
    select *
    from (
        values
            ('plain', {{ sql_literal('cabinet_leads') }}, 'cabinet_leads'),
            ('quote', {{ sql_literal('it' ~ q ~ 's') }}, 'it' || chr(39) || 's'),
            (
                'injection',
                {{ sql_literal('x' ~ q ~ '); drop table canary; --') }},
                'x' || chr(39) || '); drop table canary; --'
            ),
            ('double quote', {{ sql_literal('a' ~ dq ~ 'b') }}, 'a' || chr(34) || 'b'),
            ('backslash', {{ sql_literal('a' ~ bs ~ q ~ 'b') }}, 'a' || chr(92) || chr(39) || 'b'),
            ('dollars', {{ sql_literal('$$; select 1; $$') }}, chr(36) || chr(36) || '; select 1; ' || chr(36) || chr(36)),
            ('newline', {{ sql_literal('a\nb') }}, 'a' || chr(10) || 'b'),
            ('unicode', {{ sql_literal('Ñuñoa – 東京') }}, 'Ñuñoa – 東京'),
            ('number', {{ sql_literal(51) }}, '51'),
            ('none', {{ sql_literal(none) }}, null)
    ) as cases (case_name, rendered, expected)
),

identifiers as (
    select *
    from (
        values
            ('spaces', {{ sql_literal(sql_identifier('Cabinet Leads')) }}, 'Cabinet Leads'),
            ('quote', {{ sql_literal(sql_identifier('kpi ' ~ dq ~ 'red' ~ dq)) }}, 'kpi ' || chr(34) || 'red' || chr(34)),
            (
                'injection',
                {{ sql_literal(sql_identifier('x' ~ dq ~ '; drop table canary; --')) }},
                'x' || chr(34) || '; drop table canary; --'
            )
    ) as cases (case_name, rendered, expected)
),

integers as (
    select *
    from (
        values
            ('integer', {{ sql_integer('n', 60) }}, 60),
            ('text', {{ sql_integer('n', '10080') }}, 10080),
            ('negative', {{ sql_integer('n', '-3', -5) }}, -3)
    ) as cases (case_name, rendered, expected)
),

wrong as (
    select 'sql_literal' as macro_name, case_name
    from literals
    where rendered is distinct from expected
    union all
    select 'sql_identifier' as macro_name, case_name
    from identifiers
    where rendered is distinct from quote_ident(expected)
    union all
    select 'sql_integer' as macro_name, case_name
    from integers
    where rendered is distinct from expected
)

select * from wrong
