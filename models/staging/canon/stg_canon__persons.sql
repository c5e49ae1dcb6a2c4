{#- No WITH clause: PostgreSQL inlines a plain view into the query that reads it, so
    filters and joins reach the source's indexes and unread columns are never computed
    (a view with a WITH clause is planned apart, as a whole). -#}

select
    person_key::text as person_key,
    full_name::text as full_name,
    phone::text as phone,
    document_type::text as document_type,
    document_number::text as document_number,
    email::text as email,
    {{ normalize_phone('phone') }} as phone_key,
    {{ normalize_document('document_type', 'document_number') }} as document_key,
    {{ normalize_email('email') }} as email_key,
    created_at::timestamptz as created_at,
    updated_at::timestamptz as updated_at,
    coalesce(updated_at, created_at)::timestamptz as changed_at,
    {{ lead_identifiers_hash('full_name', 'phone', 'document_type', 'document_number', 'email') }}
        as identifiers_hash
from {{ source('canon', 'identity_registry') }}
