-- normalize_email on messy inputs: returns the rows where the macro disagrees with the
-- expected key.
with

cases as (
    select *
    from (
        values
            ('Foo.Bar@Example.COM', 'foo.bar@example.com'),
            (e' a.b@c.de\r\n', 'a.b@c.de'),
            (e'\tuser+tag@sub.domain.pe', 'user+tag@sub.domain.pe'),
            ('first_last%x@example.museum', 'first_last%x@example.museum'),
            ('A@B.CO', 'a@b.co'),
            ('no-at-sign', null),
            ('a@b', null),
            ('a@b.c', null),
            ('a@b.com.', null),
            ('a@@b.com', null),
            ('a b@c.com', null),
            ('josé@example.com', null),
            ('a@exa_mple.com', null),
            (e'\u00a0a@b.com', null),
            ('x@' || repeat('a', 250) || '.com', null),
            ('', null),
            (cast(null as text), null)
    ) as cases (raw_email, expected_email)
),

normalized as (
    select
        raw_email,
        expected_email,
        {{ normalize_email('raw_email') }} as actual_email
    from cases
),

final as (
    select *
    from normalized
    where actual_email is distinct from expected_email
)

select * from final
