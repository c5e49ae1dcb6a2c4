{#- A lead's attempts fold now, column by column: the live one (`int_lead_attempts__recent`)
    when it was attempted since the build, else the stored one (`int_lead_attempts__stored`),
    both left-joined on the lead. -#}
{%- macro current_attempts_fold(column, recent='recent_attempts', stored='stored_attempts') -%}
case
    when {{ recent }}.lead_source_pk is not null then {{ recent }}.{{ column }}
    else {{ stored }}.{{ column }}
end
{%- endmacro %}
