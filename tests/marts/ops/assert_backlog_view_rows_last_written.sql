-- The hour's share of `assert_backlog_view_rows` (which reads the whole view, once a
-- day: tag `whole_history`): the leads whose intervals the last build wrote (the newest
-- `loaded_at`: an hour's new, matched or changed leads), each read through the live
-- backlog view. Each is in the view once at most, with a known reason bucket; and each
-- whose inputs are still the ones its intervals were built from (`inputs_hash`) is in the
-- view exactly when it is open. A lead changed since (a link written after the build)
-- is the next build's.

with

-- read twice: `not materialized` keeps each read on the table's indexes
intervals as not materialized (
    select * from {{ ref('int_backlog_intervals') }}
),

written as (
    select
        lead_source_pk,
        bool_or(is_open) as is_open
    from intervals
    where loaded_at = (select max(newest.loaded_at) from intervals as newest)
    group by lead_source_pk
),

-- after a drain or a full build (most leads written) every lead at once, one pass of the
-- view; an hour's few one lead at a time. Decided once per query (an InitPlan), with
-- `backlog_due`'s threshold: PostgreSQL runs only the branch whose filter holds
is_bulk as (
    {{ is_bulk_share('written', ref('int_backlog_intervals')) }}
),

-- materialized: each branch runs once, not once per written lead of the join below
view_rows as materialized (
    -- one lead at a time: `offset 0` keeps the view a subquery, so PostgreSQL probes its
    -- indexes per lead (as `backlog_due` does) instead of evaluating every lead
    select backlog.*
    from written
    inner join lateral (
        select
            backlog.lead_source_pk,
            backlog.reason_bucket
        from {{ ref('v_cabinet_kpi_red_backlog') }} as backlog
        where backlog.lead_source_pk = written.lead_source_pk
        order by backlog.lead_source_pk
        offset 0
    ) as backlog on true
    where not (select is_bulk.is_bulk from is_bulk)
    union all
    select
        backlog.lead_source_pk,
        backlog.reason_bucket
    from written
    inner join {{ ref('v_cabinet_kpi_red_backlog') }} as backlog
        on backlog.lead_source_pk = written.lead_source_pk
    where (select is_bulk.is_bulk from is_bulk)
),

in_view as (
    select
        written.lead_source_pk,
        written.is_open,
        count(backlog.lead_source_pk) as view_rows,
        bool_and({{ is_known_reason_bucket('backlog.reason_bucket') }}) as is_bucket_known
    from written
    left join view_rows as backlog
        on backlog.lead_source_pk = written.lead_source_pk
    group by written.lead_source_pk, written.is_open
),

view_problems as (
    select
        lead_source_pk as key_value,
        case
            when view_rows > 1 then 'backlog: lead_source_pk is not unique'
            when view_rows = 1 and not coalesce(is_bucket_known, false)
                then 'backlog: unknown or null reason_bucket'
        end as problem
    from in_view
),

-- red in one of the view and the intervals only: usually none, or the few changed since
disagreeing as (
    select lead_source_pk
    from in_view
    where (view_rows = 1) <> is_open
),

membership_problems as (
    {{ unchanged_membership_problems('disagreeing') }}
),

final as (
    select
        problem,
        key_value
    from view_problems
    where problem is not null
    union all
    select
        problem,
        key_value
    from membership_problems
)

select * from final
