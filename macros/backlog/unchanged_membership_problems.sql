{#-
    The problem rows (`problem`, `key_value`) of the leads of `disagreeing` (a CTE with
    `lead_source_pk`: leads red in one of the live backlog view and
    `int_backlog_intervals` only) whose inputs are still the ones their intervals were
    built from (`backlog_lead_inputs`' hash against the stored `inputs_hash`): the view
    and the build disagree on an unchanged lead. A lead changed since the build is the
    next build's. The leads are read by `= any(array(...))`, planned as a few, so each is
    an index probe; the comparison is a column, filtered last, so no join is planned on a
    guess of its result.
-#}
{%- macro unchanged_membership_problems(disagreeing) -%}
{%- set compared_leads -%}
(
    select
        leads.lead_id,
        leads.created_at
    from {{ ref('stg_cabinet__leads') }} as leads
    where leads.lead_id = any(array(
        select disagreeing.lead_source_pk from {{ disagreeing }} as disagreeing
    ))
)
{%- endset -%}
select
    compared.lead_source_pk as key_value,
    'an unchanged lead is red in one of the view and the intervals only' as problem
from (
    select
        live_inputs.lead_id as lead_source_pk,
        coalesce(stored.inputs_hash = live_inputs.inputs_hash, false) as is_unchanged
    from (
        {{ backlog_lead_inputs(compared_leads) }}
    ) as live_inputs
    left join {{ ref('int_backlog_intervals') }} as stored
        on
            stored.lead_source_pk = live_inputs.lead_id
            and stored.interval_number = 1
) as compared
where compared.is_unchanged
{%- endmacro %}
