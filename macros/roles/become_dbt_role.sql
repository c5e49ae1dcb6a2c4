{#-
    `set role <dbt_role>` when the var `dbt_role` is set, else nothing: the pre-hook of
    every model (first in its transaction, before anything is created; a `set role` made
    in a transaction that commits stays for the session). A build run by a
    member of that role or a superuser then creates and replaces relations as that role,
    so they keep their owner and get its default privileges (the matcher's and the
    reader's access); a role that may not act as it fails here, before changing anything.
-#}
{%- macro become_dbt_role() -%}
    {%- set role = var('dbt_role', none) -%}
    {%- if role is not none and (role | string | trim) not in ('', 'None', 'null') -%}
        set role {{ sql_identifier(role) }}
    {%- endif -%}
{%- endmacro %}
