with

leads as (
    select * from {{ ref('stg_cabinet__leads') }}
),

junk as (
    select * from {{ ref('int_junk_identifiers') }}
),

without_junk as (
    select
        leads.lead_id,
        leads.created_at,
        leads.changed_at,
        leads.full_name,
        leads.identifiers_hash,
        case when junk_phones.key_value is null then leads.phone_key end as phone_key,
        case when junk_documents.key_value is null then leads.document_key end as document_key,
        case when junk_emails.key_value is null then leads.email_key end as email_key
    from leads
    left join junk as junk_phones
        on
            junk_phones.key_type = 'phone'
            and junk_phones.key_value = leads.phone_key
    left join junk as junk_documents
        on
            junk_documents.key_type = 'document'
            and junk_documents.key_value = leads.document_key
    left join junk as junk_emails
        on
            junk_emails.key_type = 'email'
            and junk_emails.key_value = leads.email_key
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
