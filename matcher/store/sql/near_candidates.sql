-- The registry persons one edit from a batch's unsettled values of one key type (run
-- once per key type, the parts joined by union all). Two index lookups, both returning
-- only values exactly one edit away:
--   1. the lead's values one character substituted, swapped or left out (computed in
--      Python, matcher.near.one_edit_values), held by someone: person_keys' index
--      on (key_type, key_value);
--   2. the lead's values themselves as a deletion variant of a longer value (the lead
--      left a character out): person_key_deletions' index, then the holder's
--      name through person_keys' (person_key, key_type) index.
-- found_by is the value looked up (1: the value itself; 2: the lead's value);
-- identifiers_hash is the holder's raw identifiers as the build read them (what the
-- write checks the live registry row against). Junk is left out here
-- (junk_keys), values held by several persons by the caller.
with

junk as (
    select key_value from {junk}
    where key_type = {key_type}
),

-- One index descent per value looked up (a lateral join behind an offset 0 fence): an
-- `= any(array)` of tens of thousands of close values made PostgreSQL walk the whole
-- index of the key type, and a plain join became a sort of every key.
held as (
    select
        person_keys.key_type,
        person_keys.key_value as found_by,
        person_keys.key_value,
        person_keys.person_key,
        person_keys.full_name,
        person_keys.identifiers_hash
    from unnest(%s::text[]) as probes (key_value)
    cross join lateral (
        select
            keys.key_type,
            keys.key_value,
            keys.person_key,
            keys.full_name,
            keys.identifiers_hash
        from {person_keys} as keys
        where keys.key_type = {key_type} and keys.key_value = probes.key_value
        offset 0  -- a fence: an index probe per value, never a scan of every key
    ) as person_keys
),

longer as (
    select
        deletions.key_type,
        deletions.variant as found_by,
        deletions.key_value,
        deletions.person_key,
        holders.full_name,
        holders.identifiers_hash
    from unnest(%s::text[]) as lead_values (variant)
    cross join lateral (
        select
            rows.key_type,
            rows.variant,
            rows.key_value,
            rows.person_key
        from {deletions} as rows
        where
            rows.key_type = {key_type}
            and rows.variant = lead_values.variant
            and rows.key_value <> rows.variant
        offset 0
    ) as deletions
    cross join lateral (
        select
            keys.full_name,
            keys.identifiers_hash
        from {person_keys} as keys
        where
            keys.person_key = deletions.person_key
            and keys.key_type = deletions.key_type
            and keys.key_value = deletions.key_value
    ) as holders
),

found as (
    select * from held
    union all
    select * from longer
),

final as (
    select found.*
    from found
    where found.key_value not in (select junk.key_value from junk)
)

select * from final
