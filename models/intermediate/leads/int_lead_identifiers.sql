{#- Live: the leads are read as they are now. Their normalized keys come from
    `int_lead_identifiers__stored` when the stored `identifiers_hash` is the lead's current one; a lead
    that is new or changed since the last build is normalized here, by the same macros,
    inside the CASE so they run for those rows only. (The macros are called on the raw
    columns here rather than read from `stg_cabinet__leads`: a view with a WITH clause is
    planned as a separate subquery, which would compute every lead's keys first.) The
    junk joins are on the unique `(key_type, key_value)` index, one CTE per key type, so a
    query that reads no key (a count) skips them. -#}

with

leads as (
    select * from {{ ref('stg_cabinet__leads') }}
),

stored_keys as (
    select * from {{ ref('int_lead_identifiers__stored') }}
),

junk_phones as (
    select * from {{ ref('junk_keys') }}
    where key_type = 'phone'
),

junk_documents as (
    select * from {{ ref('junk_keys') }}
    where key_type = 'document'
),

junk_emails as (
    select * from {{ ref('junk_keys') }}
    where key_type = 'email'
),

keyed as (
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
    from leads
    left join stored_keys
        on
            stored_keys.lead_id = leads.lead_id
            and stored_keys.identifiers_hash = leads.identifiers_hash
),

without_junk as (
    select
        keyed.lead_id,
        keyed.created_at,
        keyed.changed_at,
        keyed.full_name,
        keyed.identifiers_hash,
        case when junk_phones.key_value is null then keyed.phone_key end as phone_key,
        case when junk_documents.key_value is null then keyed.document_key end as document_key,
        case when junk_emails.key_value is null then keyed.email_key end as email_key
    from keyed
    left join junk_phones
        on
            junk_phones.key_type = 'phone'
            and junk_phones.key_value = keyed.phone_key
    left join junk_documents
        on
            junk_documents.key_type = 'document'
            and junk_documents.key_value = keyed.document_key
    left join junk_emails
        on
            junk_emails.key_type = 'email'
            and junk_emails.key_value = keyed.email_key
),

final as (
    select
        lead_id,
        created_at,
        changed_at,
        full_name,
        identifiers_hash,
        phone_key,
        document_key,
        email_key,
        coalesce(phone_key, document_key, email_key) is not null as has_usable_identifier
    from without_junk
)

select * from final
