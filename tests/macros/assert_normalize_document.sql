-- normalize_document on messy inputs: returns the rows where the macro disagrees with the
-- expected TYPE:NUMBER key. The default type is pinned so --vars cannot move it.
with

cases as (
    select *
    from (
        values
            ('DNI', '45678912', 'DNI:45678912'),
            ('dni', '4567-8912', 'DNI:45678912'),
            (null, '045678912', 'DNI:45678912'),
            ('', '00045678912', 'DNI:45678912'),
            ('  ', ' 4567 8912 ', 'DNI:45678912'),
            ('C.E.', 'x12345', 'CE:X12345'),
            ('Pasaporte', 'AB 123 456', 'PASAPORTE:AB123456'),
            ('ruc', '20123456789', 'RUC:20123456789'),
            ('ÑÑ', '45678912', 'DNI:45678912'),
            ('DNI', 'ß12345', 'DNI:12345'),
            ('DNI', 'ı12345', 'DNI:12345'),
            ('DNI', '１２３４５６７８', null),
            ('DNI', '11111111', null),
            ('DNI', '00000000', null),
            ('DNI', 'X', null),
            ('DNI', '0', null),
            ('DNI', '123456789012345678901', null),
            ('DNI', repeat('1', 65), null),
            (repeat('X', 65), '45678912', null),
            ('DNI', '', null),
            ('DNI', '---', null),
            ('DNI', null, null)
    ) as cases (raw_type, raw_number, expected_key)
),

normalized as (
    select
        raw_type,
        raw_number,
        expected_key,
        {{ normalize_document('raw_type', 'raw_number', default_type='DNI') }} as actual_key
    from cases
),

final as (
    select *
    from normalized
    where actual_key is distinct from expected_key
)

select * from final
