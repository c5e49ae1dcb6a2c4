with

origin as (
    select * from {{ source('canon', 'identity_origin') }}
),

final as (
    select
        person_key::text as person_key,
        origin_tag::text as origin_tag,
        origin_source_pk::text as origin_source_pk,
        origin_created_at::timestamptz as origin_created_at,
        recorded_at::timestamptz as recorded_at
    from origin
)

select * from final
