{#- The vars this build used, one row each, as JSON: what `kpi-red` checks its own
    configuration against (a matcher must write the tables dbt reads, with the
    `linked_by` dbt counts as its own) and where the panel reads `metrics_time_zone`. The
    same names as `dbt_project.yml`; values exactly as dbt resolved them (CLI `--vars`,
    then the host project's package-scoped and global vars, then this project's). -#}

{%- set names = [
    'leads_schema', 'leads_table', 'registry_schema', 'registry_table',
    'links_schema', 'links_table', 'origin_schema', 'origin_table',
    'claims_schema', 'claims_table', 'attempts_schema', 'attempts_table',
    'lead_source_table', 'matcher_linked_by',
    'review_decisions_schema', 'review_decisions_table', 'link_removals_schema',
    'link_removals_table', 'review_linked_by',
    'phone_country_code', 'phone_national_lengths', 'default_document_type',
    'junk_phones', 'junk_documents', 'junk_emails', 'junk_shared_threshold',
    'near_match_min_length', 'metrics_time_zone', 'metrics_lookback_days',
    'queue_lookback_minutes', 'as_of', 'retry_base_minutes', 'retry_cap_minutes',
    'dbt_role',
] %}

with

settings as (
    select
        settings.setting_name,
        settings.setting_value::jsonb as setting_value
    from (
        values
        {%- for name in names %}
        ({{ sql_literal(name) }}, {{ sql_literal(tojson(var(name, none))) }}){{ ',' if not loop.last }}
        {%- endfor %}
    ) as settings (setting_name, setting_value)
),

final as (
    select
        setting_name::text as setting_name,
        setting_value
    from settings
)

select * from final
