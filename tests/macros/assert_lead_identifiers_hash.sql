-- lead_identifiers_hash over raw columns: returns the rows where the macro disagrees with
-- the md5 computed in Python (matcher.normalize.identifiers_hash).
with

cases as (
    select *
    from (
        values
            (
                'Ana', '987654321', null, '45678912', null,
                '95a8675a2e1cf391ef8d382d0827e290'
            ),
            (
                null, null, null, null, null,
                '0291484219556e8aa5c605e0524e89b1'
            )
    ) as cases (full_name, phone, document_type, document_number, email, expected_hash)
),

hashed as (
    select
        cases.*,
        {{ lead_identifiers_hash() }} as actual_hash
    from cases
),

final as (
    select *
    from hashed
    where actual_hash is distinct from expected_hash
)

select * from final
