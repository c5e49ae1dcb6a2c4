{#- Live: the leads are read as they are now. Their normalized keys come from
    `int_lead_identifiers__stored` when the stored `identifiers_hash` is the lead's current one; a lead
    that is new or changed since the last build is normalized here, by the same macros,
    inside the CASE so they run for those rows only. (The macros are called on the raw
    columns here rather than read from `stg_cabinet__leads`: a view with a WITH clause is
    planned as a separate subquery, which would compute every lead's keys first.) Junk
    values go by an `in` over `junk_keys` of the key's type: an uncorrelated subquery,
    hashed once per statement, so a key is computed twice (the test, then the value)
    whatever the junk's size. (Left joins on `junk_keys` cost a drain the same, but for
    the few leads an hour's match reads one at a time PostgreSQL joined the five junk
    emails and two junk documents by nested loop, computing a new lead's email once per
    junk email and its document once per junk document: the worklist of an hour's 5,000
    new leads at `large` took 279–334 ms, now 197–208 ms.) A query that reads no key
    (a count) computes none.

    No WITH clause, only subqueries in FROM, for the same reason: PostgreSQL then inlines
    this view into the query that reads it. The backlog view keeps the leads with no link
    and no claim first, and computes the keys of those only: a third of the leads at
    `large`, where a WITH clause computed every lead's keys before that filter. -#}

select
    without_junk.lead_id,
    without_junk.created_at,
    without_junk.changed_at,
    without_junk.full_name,
    without_junk.identifiers_hash,
    without_junk.phone_key,
    without_junk.document_key,
    without_junk.email_key,
    coalesce(
        without_junk.phone_key, without_junk.document_key, without_junk.email_key
    ) is not null as has_usable_identifier
from (
    select
        keyed.lead_id,
        keyed.created_at,
        keyed.changed_at,
        keyed.full_name,
        {% for key_type in key_types() -%}
        case
            when keyed.{{ key_type }}_key in (
                select junk.key_value from {{ ref('junk_keys') }} as junk
                where junk.key_type = '{{ key_type }}'
            ) then null
            else keyed.{{ key_type }}_key
        end as {{ key_type }}_key,
        {% endfor -%}
        keyed.identifiers_hash
    from (
        select
            leads.lead_id,
            leads.created_at,
            leads.changed_at,
            leads.full_name,
            leads.identifiers_hash,
            case
                when stored_keys.lead_id is not null then stored_keys.phone_key
                else {{ normalize_phone('leads.phone') }}
            end as phone_key,
            case
                when stored_keys.lead_id is not null then stored_keys.document_key
                else {{ normalize_document('leads.document_type', 'leads.document_number') }}
            end as document_key,
            case
                when stored_keys.lead_id is not null then stored_keys.email_key
                else {{ normalize_email('leads.email') }}
            end as email_key
        from {{ ref('stg_cabinet__leads') }} as leads
        left join {{ ref('int_lead_identifiers__stored') }} as stored_keys
            on
                stored_keys.lead_id = leads.lead_id
                and stored_keys.identifiers_hash = leads.identifiers_hash
    ) as keyed
) as without_junk
