-- The registry persons holding a value one edit from a batch's unsettled values of one
-- key type (run once per key type, the parts joined by union all): the values are
-- spelled out in Python (matcher.near: one character substituted, swapped, left out or
-- added), so every row returned is one edit from a lead's value, found by exact probes
-- of person_keys' (key_type, key_value) index. identifiers_hash is the holder's raw
-- identifiers as the build read them (what the write checks the live registry row
-- against). Junk is left out here (junk_keys), values held by several persons by the
-- caller.
with

junk as (
    select key_value from {junk}
    where key_type = {key_type}
),

-- The values come as one text, separated by spaces (normalized values hold none), split
-- by the server: a text[] parameter of 150,000 values took psycopg 40 MB and 60 ms more
-- to send. The array is made in an InitPlan, so the planner never looks at its elements
-- (it estimated each one: 40 ms per statement). PostgreSQL 17 and later sort the values
-- and walk the index once, descending again only when the next value is off the current
-- leaf page; earlier versions descend once per value.
held as (
    select
        keys.key_type,
        keys.key_value,
        keys.person_key,
        keys.full_name,
        keys.identifiers_hash
    from {person_keys} as keys
    where
        keys.key_type = {key_type}
        and keys.key_value = any((select string_to_array(%s, ' '))::text[])
),

final as (
    select held.*
    from held
    where held.key_value not in (select junk.key_value from junk)
)

select * from final
