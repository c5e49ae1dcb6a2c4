{#- Live: the leads are read as they are now. Their normalized keys come from
    `int_lead_identifiers__stored` when the stored `identifiers_hash` is the lead's current one; a lead
    that is new or changed since the last build is normalized here, by the same macros,
    inside the CASE so they run for those rows only. (The macros are called on the raw
    columns here rather than read from `stg_cabinet__leads`: a view with a WITH clause is
    planned as a separate subquery, which would compute every lead's keys first.) The
    junk joins are on the unique `(key_type, key_value)` index, so a query that reads no
    key (a count) skips them.

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
        keyed.identifiers_hash,
        case when junk_phones.key_value is null then keyed.phone_key end as phone_key,
        case when junk_documents.key_value is null then keyed.document_key end as document_key,
        case when junk_emails.key_value is null then keyed.email_key end as email_key
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
    left join {{ ref('junk_keys') }} as junk_phones
        on
            junk_phones.key_type = 'phone'
            and junk_phones.key_value = keyed.phone_key
    left join {{ ref('junk_keys') }} as junk_documents
        on
            junk_documents.key_type = 'document'
            and junk_documents.key_value = keyed.document_key
    left join {{ ref('junk_keys') }} as junk_emails
        on
            junk_emails.key_type = 'email'
            and junk_emails.key_value = keyed.email_key
) as without_junk
