-- normalize_phone on messy real-world formats: returns the rows where the macro disagrees
-- with the expected E.164 digits. Country and lengths are pinned so --vars cannot move it.
with

cases as (
    select *
    from (
        values
            ('+51 987 654 321', '51987654321'),
            ('987654321', '51987654321'),
            ('0051987654321', '51987654321'),
            ('51-987-654-321', '51987654321'),
            ('51987654321', '51987654321'),
            ('(+51) 987.654.321', '51987654321'),
            (e'\t+51987654321\n', '51987654321'),
            ('tel:+51-987-654-321', '51987654321'),
            ('0987654321', '51987654321'),
            ('+51 (0) 987 654 321', '51987654321'),
            ('+51 (0)1 234 5678', '5112345678'),
            ('51 01 234 5678', '5112345678'),
            ('+51 00 987 654 321', null),
            ('(01) 234-5678', '5112345678'),
            ('01 234 5678', '5112345678'),
            ('+51 1 2345678', '5112345678'),
            ('12345678', '5112345678'),
            ('(044) 123-456', '5144123456'),
            ('51 51 123456', '5151123456'),
            ('+1 (212) 555-0123', '12125550123'),
            ('001 212 555 0123', '12125550123'),
            ('+44 20 7946 0958', '442079460958'),
            ('999999999', null),
            ('+51 999 999 999', null),
            ('00000000', null),
            ('51 000 000 000', null),
            ('+1 111 111 1111', null),
            ('+0051987654321', null),
            ('1234567', null),
            ('98765432101', null),
            ('987 654 321 ext. 5', null),
            ('51 987 654 321 / 987 111 222', null),
            ('+1 234', null),
            ('٩٨٧٦٥٤٣٢١', null),
            ('９８７６５４３２１', null),
            ('n/a', null),
            ('-', null),
            ('', null),
            ('   ', null),
            (repeat('9', 65), null),
            (cast(null as text), null)
    ) as cases (raw_phone, expected_phone)
),

normalized as (
    select
        raw_phone,
        expected_phone,
        {{ normalize_phone('raw_phone', country_code='51', national_lengths=[8, 9]) }}
            as actual_phone
    from cases
),

final as (
    select *
    from normalized
    where actual_phone is distinct from expected_phone
)

select * from final
