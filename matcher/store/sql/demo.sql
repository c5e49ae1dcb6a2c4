-- Demo data: `kpi-red demo` (matcher/demo.py). Sections are run one by one by
-- matcher.store.demo.run_demo_sql, all inside one transaction. A section with parameters is a
-- single statement; a section of several statements takes none (it reads demo_params).
-- Schema and table names are psycopg.sql identifiers, never spliced text.
-- Randomness is a hash of (seed, row number, salt) (hashtextextended, the stable hash of
-- hash partitioning): the same seed gives the same rows whatever the plan. Scenarios and their shares are documented in matcher/demo.py.

-- name: lock
select pg_advisory_xact_lock(hashtext('kpi-red demo'));

-- name: ddl
-- The data contract's upstream tables, created when missing, as their owner would (run
-- `kpi-red demo` as that role): exactly the contract's columns, keys and recommended
-- indexes, and no defaults (the matcher sets every column it writes).
create schema if not exists {leads_schema};
create schema if not exists {registry_schema};
create schema if not exists {links_schema};
create schema if not exists {origin_schema};
create schema if not exists {claims_schema};
create schema if not exists kpi_red_demo;

create table if not exists {leads} (
    lead_id text primary key,
    created_at timestamptz not null,
    updated_at timestamptz,
    full_name text,
    phone text,
    document_type text,
    document_number text,
    email text
);
create index if not exists leads_created_at_idx on {leads} (created_at);

create table if not exists {registry} (
    person_key text primary key,
    full_name text,
    phone text,
    document_type text,
    document_number text,
    email text,
    created_at timestamptz,
    updated_at timestamptz
);

create table if not exists {claims} (
    claim_id text primary key,
    lead_id text,
    claimed_at timestamptz
);
create index if not exists lead_claims_lead_id_idx on {claims} (lead_id);

-- the matcher needs the unique key (its inserts are `on conflict do nothing` on it)
create table if not exists {links} (
    source_table text not null,
    source_pk text not null,
    person_key text not null,
    match_rule text,
    match_score real,
    linked_at timestamptz not null,
    linked_by text,
    run_id text,
    unique (source_table, source_pk)
);
-- recommended: a person's links (ORIGIN_MISSING, `kpi-red repair-origin`)
create index if not exists identity_links_person_key_idx on {links} (person_key);

create table if not exists {origin} (
    person_key text primary key,
    origin_tag text,
    origin_source_pk text,
    origin_created_at timestamptz,
    recorded_at timestamptz not null
);

-- Not part of the data contract: which person each demo lead really is.
create table if not exists kpi_red_demo.lead_truth (
    lead_id text primary key,
    person_key text,
    scenario text not null
);

create table if not exists kpi_red_demo.loaded (
    size text not null,
    seed bigint not null,
    density real not null default 0,
    leads bigint not null,
    persons bigint not null,
    links bigint not null,
    claims bigint not null,
    origin_rows bigint not null,
    anchor_at timestamptz not null,
    seconds real not null,
    loaded_at timestamptz not null default now()
);

alter table kpi_red_demo.loaded add column if not exists density real not null default 0;

-- name: state
select size, seed, density, leads, persons, links, claims, origin_rows, seconds
from kpi_red_demo.loaded
order by loaded_at desc
limit 1;

-- name: has_rows
select exists (select 1 from {leads}) or exists (select 1 from {registry});

-- name: reset
truncate {leads}, {registry}, {claims}, {links}, {origin},
    kpi_red_demo.lead_truth, kpi_red_demo.loaded;

-- name: reset_attempts
-- the project's attempts log, when `kpi-red init` has made it
truncate {attempts};

-- name: has_attempts
select to_regclass(format('%%I.%%I', %(schema)s::text, %(table)s::text)) is not null;

-- name: params
create temporary table demo_params on commit drop as
select
    %(seed)s::bigint as seed,
    %(persons)s::integer as persons,
    %(leads)s::integer as leads,
    coalesce(%(anchor_at)s::timestamptz, now()) as anchor_at,
    %(lead_source_table)s::text as lead_source_table,
    %(density)s::float8 as density,
    %(first_names)s::text[] as first_names,
    %(last_names)s::text[] as last_names,
    %(nickname_names)s::text[] as nickname_names,
    %(nicknames)s::text[] as nicknames,
    %(zipf_offset)s::float8 as zipf_offset,
    %(name_slots)s::integer as name_slots,
    %(scenario_names)s::text[] as scenario_names,
    %(scenario_bounds)s::integer[] as scenario_bounds,
    -- offsets of the bijections that make every phone and document unique
    ('x' || substr(md5(%(seed)s::text || ':offsets'), 1, 7))::bit(28)::bigint as offset_a,
    ('x' || substr(md5(%(seed)s::text || ':offsets'), 9, 7))::bit(28)::bigint as offset_b;

-- name: generate
-- Hash joins against the small lookup tables, and sorts in memory (this transaction only).
set local enable_mergejoin = off;
set local work_mem = '128MB';

-- pg_temp helpers (gone with the session). demo_rand: a non-negative 63-bit number.
create function pg_temp.demo_rand(seed bigint, n bigint, salt integer) returns bigint
language sql immutable
as $$ select hashtextextended(n::text, seed * 1000 + salt) & 9223372036854775807 $$;

create function pg_temp.demo_ascii(value text) returns text
language sql immutable
as $$ select translate(value, 'áéíóúüñÁÉÍÓÚÜÑ', 'aeiouunAEIOUUN') $$;

-- A national number (9-digit mobile, or area digit + 7 for a landline) as people type it.
create function pg_temp.demo_phone(digits text, style bigint) returns text
language sql immutable
as $$
    select case
        when length(digits) = 9 then case style % 6
            when 0 then '+51 ' || substr(digits, 1, 3) || ' ' || substr(digits, 4, 3)
                || ' ' || substr(digits, 7, 3)
            when 1 then digits
            when 2 then '0051' || digits
            when 3 then '51-' || substr(digits, 1, 3) || '-' || substr(digits, 4, 3)
                || '-' || substr(digits, 7, 3)
            when 4 then '+51' || digits
            else substr(digits, 1, 3) || ' ' || substr(digits, 4, 3)
                || ' ' || substr(digits, 7, 3)
        end
        else case style % 6
            when 0 then '+51 ' || substr(digits, 1, 1) || ' ' || substr(digits, 2, 3)
                || ' ' || substr(digits, 5)
            when 1 then '(0' || substr(digits, 1, 1) || ') ' || substr(digits, 2, 3)
                || '-' || substr(digits, 5)
            when 2 then '0' || substr(digits, 1, 1) || ' ' || substr(digits, 2, 3)
                || ' ' || substr(digits, 5)
            when 3 then '0' || substr(digits, 1, 1) || '-' || substr(digits, 2, 3)
                || '-' || substr(digits, 5)
            when 4 then '+51' || digits
            else '(0' || substr(digits, 1, 1) || ') ' || substr(digits, 2)
        end
    end
$$;

create function pg_temp.demo_document(number text, style bigint) returns text
language sql immutable
as $$
    select case style % 6
        when 0 then number
        when 1 then regexp_replace(number, '(\d)(?=(\d{{3}})+$)', '\1.', 'g')
        when 2 then '0' || number
        when 3 then regexp_replace(number, '(\d)(?=(\d{{3}})+$)', '\1-', 'g')
        when 4 then ' ' || lower(number) || ' '
        else lower(number)
    end
$$;

create function pg_temp.demo_document_type(doc_type text, style bigint) returns text
language sql immutable
as $$
    select case doc_type
        when 'DNI' then (array['DNI', 'DNI', 'dni', 'D.N.I.', 'DNI ', null])[1 + style % 6]
        when 'CE' then (array['CE', 'C.E.', 'ce', 'CE'])[1 + style % 4]
        else (array['PASAPORTE', 'Pasaporte', 'pasaporte'])[1 + style % 3]
    end
$$;

create function pg_temp.demo_email(email text, style bigint) returns text
language sql immutable
as $$
    select case style % 8
        when 3 then upper(email)
        when 4 then initcap(email)
        when 5 then ' ' || email || ' '
        when 6 then upper(substr(email, 1, 1)) || substr(email, 2) || e'\t'
        else email
    end
$$;

-- An absent value: null, an empty string or blanks.
create function pg_temp.demo_blank(style bigint) returns text
language sql immutable
as $$ select (array[null, null, null, null, null, null, '', '', '', ' '])[1 + style % 10] $$;

-- One letter of a word typed wrong, never the first: dropped, swapped with the next, or
-- doubled.
create function pg_temp.demo_typo(word text, roll bigint) returns text
language sql immutable
as $$
    select case
        when length(word) < 4 then word
        when roll % 3 = 0 then overlay(
            word placing '' from (2 + roll / 3 % (length(word) - 2))::integer for 1
        )
        when roll % 3 = 1 then overlay(
            word placing substr(word, (3 + roll / 3 % (length(word) - 3))::integer, 1)
            || substr(word, (2 + roll / 3 % (length(word) - 3))::integer, 1)
            from (2 + roll / 3 % (length(word) - 3))::integer for 2
        )
        else overlay(
            word placing substr(word, (2 + roll / 3 % (length(word) - 2))::integer, 1)
            from (2 + roll / 3 % (length(word) - 2))::integer for 0
        )
    end
$$;

-- A person's name as a careless lead form writes it. Independent rolls, two decimal
-- digits of the style each, combine: a nickname (10% of those who have one) or a
-- shortened first name (4%); the middle name dropped (35%), as an initial (15%) or the
-- only given name (4%); a letter of the first surname wrong (8%); the second surname
-- missing (25%); surnames first (15%); accents dropped (30%); upper case (25%) or lower
-- case (10%); double spaces (8%) or stray ones (4%).
create function pg_temp.demo_form_name(
    first_name text,
    second_name text,
    last_name_1 text,
    last_name_2 text,
    nickname text,
    style bigint
) returns text
language plpgsql immutable
as $$
declare
    given_1 text := first_name;
    given_2 text := second_name;
    surname_1 text := last_name_1;
    surname_2 text := last_name_2;
    written text;
begin
    if second_name is not null and style / 100 % 100 >= 96 then
        given_1 := null;
    elsif nickname is not null and style % 100 < 10 then
        given_1 := nickname;
    elsif length(first_name) >= 7 and style % 100 between 10 and 13 then
        given_1 := left(first_name, 4);
    end if;
    if second_name is not null and style / 100 % 100 < 35 then
        given_2 := null;
    elsif second_name is not null and style / 100 % 100 < 50 then
        given_2 := left(second_name, 1) || left('.', (style / 100 % 2)::integer);
    end if;
    if style / 10000 % 100 < 8 then
        surname_1 := pg_temp.demo_typo(last_name_1, style / 1000000000000000);
    end if;
    if style / 1000000 % 100 < 25 then
        surname_2 := null;
    end if;
    if style / 100000000 % 100 < 15 then
        written := concat_ws(' ', surname_1, surname_2, given_1, given_2);
    else
        written := concat_ws(' ', given_1, given_2, surname_1, surname_2);
    end if;
    if style / 10000000000 % 100 < 30 then
        written := pg_temp.demo_ascii(written);
    end if;
    if style / 1000000000000 % 100 < 25 then
        written := upper(written);
    elsif style / 1000000000000 % 100 < 35 then
        written := lower(written);
    end if;
    if style / 100000000000000 % 100 < 8 then
        written := replace(written, ' ', '  ');
    elsif style / 100000000000000 % 100 < 12 then
        written := ' ' || written || ' ';
    end if;
    return written;
end
$$;

-- Canonical identities: registered persons 1..persons, then one "ghost" per lead (a
-- person absent from the registry, for leads whose identifiers exist nowhere). Phones
-- and documents are bijections of the row number, so no two identities share one.
create temporary table demo_first_names on commit drop as
select
    names.name_k - 1 as name_k,
    names.name,
    regexp_replace(lower(pg_temp.demo_ascii(names.name)), '[^a-z]', '', 'g') as email_part
from demo_params
cross join lateral unnest(demo_params.first_names) with ordinality as names (name, name_k);

create temporary table demo_last_names on commit drop as
select
    names.name_k - 1 as name_k,
    names.name,
    regexp_replace(lower(pg_temp.demo_ascii(names.name)), '[^a-z]', '', 'g') as email_part
from demo_params
cross join lateral unnest(demo_params.last_names) with ordinality as names (name, name_k);

-- Zipf-Mandelbrot frequencies, 1 / (rank + zipf_offset): the first names of each pool
-- are the commonest (Quispe about 3% of persons, as in Peru), so strangers often share
-- a surname or a given name. A roll picks one of name_slots slots; each name holds
-- slots in proportion to its frequency.
create temporary table demo_name_slots on commit drop as
with

pools as (
    select 'first' as pool, name_k from demo_first_names
    union all
    select 'last' as pool, name_k from demo_last_names
),

weighted as (
    select
        pools.pool,
        pools.name_k,
        1 / (pools.name_k + 1 + params.zipf_offset) as weight,
        params.name_slots
    from pools
    cross join demo_params as params
),

bounded as (
    select
        pool,
        name_k,
        name_slots,
        floor(
            name_slots * (sum(weight) over (partition by pool order by name_k) - weight)
            / sum(weight) over (partition by pool)
        )::integer as first_slot,
        floor(
            name_slots * sum(weight) over (partition by pool order by name_k)
            / sum(weight) over (partition by pool)
        )::integer as end_slot
    from weighted
)

select
    bounded.pool,
    slots.slot,
    bounded.name_k
from bounded
cross join lateral generate_series(bounded.first_slot, bounded.end_slot - 1) as slots (slot);

-- A nickname for some first names (José: Pepe, Luis: Lucho...).
create temporary table demo_nicknames on commit drop as
select
    first_names.name_k,
    nicknames.nickname
from demo_params
cross join lateral unnest(demo_params.nickname_names, demo_params.nicknames)
    as nicknames (first_name, nickname)
inner join demo_first_names as first_names
    on first_names.name = nicknames.first_name;

analyze demo_first_names;
analyze demo_last_names;
analyze demo_name_slots;
analyze demo_nicknames;

create temporary table demo_persons on commit drop as
with

-- scalars only: the name pools are looked up by join, not read from an array per row
params as materialized (
    select
        seed,
        persons,
        leads,
        anchor_at,
        density,
        name_slots,
        offset_a,
        offset_b
    from demo_params
),

rolled as materialized (
    select
        person_n,
        person_n <= params.persons as is_registered,
        pg_temp.demo_rand(params.seed, person_n, 1) as first_roll,
        pg_temp.demo_rand(params.seed, person_n, 2) as second_roll,
        pg_temp.demo_rand(params.seed, person_n, 3) as last_1_roll,
        pg_temp.demo_rand(params.seed, person_n, 4) as last_2_roll,
        pg_temp.demo_rand(params.seed, person_n, 5) as doc_type_roll,
        pg_temp.demo_rand(params.seed, person_n, 6) as doc_roll,
        pg_temp.demo_rand(params.seed, person_n, 7) as letters_roll,
        pg_temp.demo_rand(params.seed, person_n, 8) as phone_roll,
        pg_temp.demo_rand(params.seed, person_n, 9) as phone_kind_roll,
        pg_temp.demo_rand(params.seed, person_n, 10) as email_roll,
        pg_temp.demo_rand(params.seed, person_n, 11) as domain_roll,
        pg_temp.demo_rand(params.seed, person_n, 12) as created_roll,
        pg_temp.demo_rand(params.seed, person_n, 13) as style,
        pg_temp.demo_rand(params.seed, person_n, 14) as style_2,
        pg_temp.demo_rand(params.seed, person_n, 15) as origin_roll
    from params
    cross join lateral generate_series(1::bigint, params.persons + params.leads) as person_n
),

named as (
    select
        rolled.*,
        first_name.name as first_name,
        nickname.nickname,
        first_name.email_part as first_email_part,
        last_name_1.email_part as last_email_part,
        case when rolled.second_roll % 100 < 25 then second_name.name end as second_name,
        last_name_1.name as last_name_1,
        case when rolled.last_2_roll % 100 < 85 then last_name_2.name end as last_name_2,
        case
            when rolled.doc_type_roll % 100 < 90 then 'DNI'
            when rolled.doc_type_roll % 100 < 97 then 'CE'
            else 'PASAPORTE'
        end as doc_type,
        case
            when not rolled.is_registered then 'real'
            when rolled.doc_roll % 1000 < 30 then null
            when rolled.doc_roll % 1000 < 33 then 'junk'
            else 'real'
        end as doc_kind,
        case
            when not rolled.is_registered then 'mobile'
            when rolled.phone_kind_roll % 1000 < 80 then null
            when rolled.phone_kind_roll % 1000 < 85 then 'junk'
            when rolled.phone_kind_roll % 1000 < 95 then 'shared'
            when rolled.phone_kind_roll % 1000 < 230 then 'landline'
            else 'mobile'
        end as phone_kind,
        case
            when not rolled.is_registered then 'real'
            when rolled.email_roll % 1000 < 180 then null
            when rolled.email_roll % 1000 < 185 then 'junk'
            else 'real'
        end as email_kind,
        params.anchor_at - interval '31 days'
        - (rolled.created_roll % (1500 * 86400)) * interval '1 second' as created_at,
        params.density,
        params.persons,
        params.leads,
        params.offset_a,
        params.offset_b
    from rolled
    cross join params
    inner join demo_name_slots as first_slot
        on first_slot.pool = 'first' and first_slot.slot = rolled.first_roll % params.name_slots
    inner join demo_first_names as first_name
        on first_name.name_k = first_slot.name_k
    inner join demo_name_slots as second_slot
        on second_slot.pool = 'first'
        and second_slot.slot = rolled.second_roll / 100 % params.name_slots
    inner join demo_first_names as second_name
        on second_name.name_k = second_slot.name_k
    inner join demo_name_slots as last_1_slot
        on last_1_slot.pool = 'last' and last_1_slot.slot = rolled.last_1_roll % params.name_slots
    inner join demo_last_names as last_name_1
        on last_name_1.name_k = last_1_slot.name_k
    inner join demo_name_slots as last_2_slot
        on last_2_slot.pool = 'last'
        and last_2_slot.slot = rolled.last_2_roll / 100 % params.name_slots
    inner join demo_last_names as last_name_2
        on last_name_2.name_k = last_2_slot.name_k
    left join demo_nicknames as nickname
        on nickname.name_k = first_name.name_k
),

-- Dense identifiers (density > 0). DNIs and mobiles: identity n (the registered, then
-- the ghosts, who are nobody in the registry) gets position (n * (2^31-1) + offset) mod
-- size, a bijection (2^31-1 is prime, above any size), in a block sized so that the
-- registry's expected holders (87% of persons have a DNI, 77% a mobile) are `density`
-- of it. Landlines (one person in seven) are too few for that: the k-th landline holder
-- takes position k the same way. A typo then lands on another real person as often as
-- density says.
landline_ranks as (
    select
        person_n,
        row_number() over (order by person_n) - 1 as landline_rank,
        count(*) filter (where is_registered) over () as landline_holders,
        count(*) over () as landline_identities
    from named
    where phone_kind = 'landline' and density > 0
),

blocks as (
    select
        named.*,
        case
            when named.doc_kind = 'real' and named.doc_type = 'DNI' then 'DNI'
        end as doc_block,
        case when named.phone_kind in ('mobile', 'landline') then named.phone_kind end
            as phone_block,
        least(
            89999999,
            greatest(named.persons + named.leads, ceil(0.87 * named.persons / nullif(named.density, 0)))
        )::bigint as doc_block_size,
        case named.phone_kind
            when 'landline' then least(
                8000000,
                greatest(
                    landline_ranks.landline_identities,
                    ceil(landline_ranks.landline_holders / nullif(named.density, 0))
                )
            )
            else least(
                100000000,
                greatest(named.persons + named.leads, ceil(0.77 * named.persons / nullif(named.density, 0)))
            )
        end::bigint as phone_block_size,
        landline_ranks.landline_rank
    from named
    left join landline_ranks
        on landline_ranks.person_n = named.person_n
),

identified as (
    select
        blocks.*,
        case
            when blocks.doc_kind = 'junk' then '00000000'
            when blocks.doc_kind is null then null
            when blocks.doc_type = 'DNI' and blocks.density > 0
                then (10000000 + (blocks.person_n * 2147483647 + blocks.offset_a) % blocks.doc_block_size)::text
            when blocks.doc_type = 'DNI'
                then lpad(((blocks.person_n * 61180343 + blocks.offset_a) % 99000000 + 1000000)::text, 8, '0')
            when blocks.doc_type = 'CE'
                then lpad(((blocks.person_n * 617980349 + blocks.offset_b) % 999000000 + 1000000)::text, 9, '0')
            else chr(65 + (blocks.letters_roll % 26)::integer)
                || chr(65 + (blocks.letters_roll / 26 % 26)::integer)
                || lpad(((blocks.person_n * 6180339 + blocks.offset_a) % 10000000)::text, 7, '0')
        end as doc_number,
        case blocks.phone_kind
            when 'junk' then '999999999'
            when 'shared' then '11' || lpad((100000 + (blocks.phone_roll % 20) * 37813)::text, 6, '0')
            when 'landline' then '1' || (
                2000000 + case
                    when blocks.density > 0
                        then (blocks.landline_rank * 2147483647 + blocks.offset_b) % blocks.phone_block_size
                    else (blocks.person_n * 4944271 + blocks.offset_b) % 8000000
                end
            )::text
            when 'mobile' then '9' || lpad(
                case
                    when blocks.density > 0
                        then (blocks.person_n * 2147483647 + blocks.offset_a) % blocks.phone_block_size
                    else (blocks.person_n * 61803399 + blocks.offset_a) % 100000000
                end::text,
                8,
                '0'
            )
        end as phone_national,
        case blocks.email_kind
            when 'junk' then 'test@test.com'
            when 'real' then
                blocks.first_email_part
                || (array['.', '_', '', '.'])[1 + blocks.domain_roll % 4]
                || blocks.last_email_part
                || blocks.person_n
                || '@'
                || (array['gmail.com', 'gmail.com', 'hotmail.com', 'yahoo.es', 'outlook.com', 'empresa.com.pe'])[
                    1 + blocks.domain_roll / 4 % 6
                ]
        end as email
    from blocks
),

final as (
    select
        person_n,
        'P' || lpad(person_n::text, 8, '0') as person_key,
        is_registered,
        first_name,
        nickname,
        second_name,
        last_name_1,
        last_name_2,
        doc_type,
        doc_number,
        doc_type || ':' || ltrim(upper(doc_number), '0') as doc_key,
        phone_national,
        phone_kind,
        email,
        is_registered
        and doc_kind = 'real'
        and phone_kind in ('mobile', 'landline')
        and email_kind = 'real' as is_complete,
        created_at,
        style,
        style_2,
        origin_roll,
        case when density > 0 and doc_block is not null then doc_block_size end as doc_block_size,
        case when density > 0 and phone_block is not null then phone_block_size end
            as phone_block_size
    from identified
)

select * from final;

create unique index on demo_persons (person_n);
analyze demo_persons (person_n, is_registered, is_complete);

-- Complete persons (every identifier real) numbered 1..n: leads pick their person here.
create temporary table demo_complete on commit drop as
select
    row_number() over (order by person_n) as complete_k,
    person_n
from demo_persons
where is_complete;

create unique index on demo_complete (complete_k);
analyze demo_complete;

-- Each lead: its scenario, its person (and another person for conflicts), its rolls.
create temporary table demo_lead_base on commit drop as
with

params as (
    select
        demo_params.*,
        (select count(*) from demo_complete) as complete_count
    from demo_params
),

rolled as materialized (
    select
        lead_n,
        params.scenario_names[
            width_bucket((pg_temp.demo_rand(params.seed, lead_n, 101) % 1000)::integer, params.scenario_bounds)
        ] as scenario,
        pg_temp.demo_rand(params.seed, lead_n, 102) % params.complete_count as complete_roll,
        pg_temp.demo_rand(params.seed, lead_n, 103) % greatest(params.complete_count - 1, 1) as other_roll,
        params.persons + lead_n as ghost_n,
        pg_temp.demo_rand(params.seed, lead_n, 104) as variant_roll,
        pg_temp.demo_rand(params.seed, lead_n, 105) as delay_roll,
        pg_temp.demo_rand(params.seed, lead_n, 106) as update_roll,
        pg_temp.demo_rand(params.seed, lead_n, 107) as name_style,
        pg_temp.demo_rand(params.seed, lead_n, 108) as phone_style,
        pg_temp.demo_rand(params.seed, lead_n, 109) as document_style,
        pg_temp.demo_rand(params.seed, lead_n, 110) as email_style,
        -- recent days are busier: 60% uniform over 30 days, 40% on a ramp towards now
        params.anchor_at - interval '3 minutes'
        - 30 * (
            case
                when pg_temp.demo_rand(params.seed, lead_n, 111) % 100 < 60
                    then pg_temp.demo_rand(params.seed, lead_n, 112) % 1000000000 / 1e9::float8
                else 1 - sqrt(pg_temp.demo_rand(params.seed, lead_n, 112) % 1000000000 / 1e9::float8)
            end
        ) * interval '1 day' as created_at,
        params.anchor_at,
        params.complete_count
    from params
    cross join lateral generate_series(1::bigint, params.leads) as lead_n
),

picked as (
    select
        rolled.*,
        1 + rolled.complete_roll as complete_k,
        -- another complete person: never the same one
        1 + (1 + rolled.complete_roll + rolled.other_roll) % rolled.complete_count as other_k
    from rolled
),

final as (
    select
        picked.*,
        person.person_n,
        other.person_n as other_n
    from picked
    inner join demo_complete as person_pick
        on person_pick.complete_k = picked.complete_k
    inner join demo_complete as other
        on other.complete_k = picked.other_k
    inner join demo_persons as person
        on person.person_n = person_pick.person_n
)

select * from final;

analyze demo_lead_base;

-- One-edit typos of a person's document or phone. Edits apply to the normalized value
-- and never start it with 0, so the typo is exactly one edit (substitution, insertion,
-- deletion, adjacent transposition) away after normalization. With dense identifiers a
-- typo lands on another real person as often as density says; at density 0 (the sparse
-- space of earlier versions) typos that exist anywhere else are left out.
create temporary table demo_typos on commit drop as
with

typo_leads as (
    select
        base.lead_n,
        base.scenario,
        person.doc_type,
        case
            when base.scenario = 'document_one_edit' then ltrim(person.doc_number, '0')
            else person.phone_national
        end as original,
        -- dense identifiers: how many trailing digits vary within the block (a typo
        -- there lands in the block, on a registered person as often as density says)
        length((
            case
                when base.scenario = 'document_one_edit' then person.doc_block_size
                else person.phone_block_size
            end - 1
        )::text) as block_digits
    from demo_lead_base as base
    inner join demo_persons as person
        on person.person_n = base.person_n
    where base.scenario in ('document_one_edit', 'phone_one_edit')
),

attempts as (
    select
        typo_leads.*,
        attempt,
        params.seed
    from typo_leads
    cross join demo_params as params
    cross join generate_series(0, 7) as attempt
),

edits as (
    select
        attempts.*,
        case
            when attempts.scenario = 'document_one_edit'
                then (array['substitution', 'insertion', 'deletion', 'transposition'])[
                    1 + pg_temp.demo_rand(attempts.seed, attempts.lead_n * 8 + attempt, 201) % 4
                ]
            -- a phone one digit longer has no valid length; a landline one shorter neither
            when length(attempts.original) = 9
                then (array['substitution', 'deletion', 'transposition'])[
                    1 + pg_temp.demo_rand(attempts.seed, attempts.lead_n * 8 + attempt, 201) % 3
                ]
            else (array['substitution', 'transposition'])[1 + pg_temp.demo_rand(attempts.seed, attempts.lead_n * 8 + attempt, 201) % 2]
        end as edit_kind,
        pg_temp.demo_rand(attempts.seed, attempts.lead_n * 8 + attempt, 202) as position_roll,
        greatest(2, least(length(attempts.original), coalesce(attempts.block_digits, 99)))
            as span,
        (pg_temp.demo_rand(attempts.seed, attempts.lead_n * 8 + attempt, 203) % 10)::text as digit
    from attempts
),

placed as (
    select
        edits.*,
        length(edits.original) - edits.span + 1 + edits.position_roll % (edits.span - 1) as swap_at
    from edits
),

candidates as (
    select
        placed.lead_n,
        placed.scenario,
        placed.attempt,
        placed.edit_kind,
        placed.original,
        case placed.edit_kind
            when 'substitution' then overlay(
                placed.original placing placed.digit
                from (length(placed.original) - placed.span + 1 + placed.position_roll % placed.span)::integer
                for 1
            )
            when 'insertion' then overlay(
                placed.original placing placed.digit
                from (1 + placed.position_roll % (length(placed.original) + 1))::integer for 0
            )
            when 'deletion' then overlay(
                placed.original placing ''
                from (1 + placed.position_roll % length(placed.original))::integer for 1
            )
            else overlay(
                placed.original placing
                substr(placed.original, (placed.swap_at + 1)::integer, 1)
                || substr(placed.original, placed.swap_at::integer, 1)
                from placed.swap_at::integer for 2
            )
        end as typo_value,
        placed.doc_type
    from placed
),

keyed as (
    select
        candidates.*,
        case
            when candidates.scenario = 'document_one_edit'
                then candidates.doc_type || ':' || upper(candidates.typo_value)
            else candidates.typo_value
        end as typo_key
    from candidates
),

identity_keys as (
    select demo_persons.doc_key as identity_key
    from demo_persons
    cross join demo_params as params
    where demo_persons.doc_key is not null and params.density = 0
    union all
    select demo_persons.phone_national as identity_key
    from demo_persons
    cross join demo_params as params
    where demo_persons.phone_national is not null and params.density = 0
),

unused as (
    select keyed.*
    from keyed
    where keyed.typo_value <> keyed.original
        and keyed.typo_value !~ '^0'
        and not exists (
            select 1
            from identity_keys
            where identity_keys.identity_key = keyed.typo_key
        )
),

final as (
    select distinct on (lead_n)
        lead_n,
        edit_kind,
        typo_value
    from unused
    order by lead_n, attempt
)

select * from final;

-- The leads, rendered with the mess of real forms, and their ground truth.
create temporary table demo_leads on commit drop as
with

base as (
    select
        demo_lead_base.*,
        demo_lead_base.variant_roll % 100 as variant
    from demo_lead_base
),

joined as (
    select
        base.*,
        person.person_key,
        person.first_name,
        person.nickname,
        person.second_name,
        person.last_name_1,
        person.last_name_2,
        person.doc_type,
        person.doc_number,
        person.phone_national,
        person.email,
        other.phone_national as other_phone_national,
        other.first_name as other_first_name,
        other.nickname as other_nickname,
        other.second_name as other_second_name,
        other.last_name_1 as other_last_name_1,
        other.last_name_2 as other_last_name_2,
        ghost.first_name as ghost_first_name,
        ghost.nickname as ghost_nickname,
        ghost.second_name as ghost_second_name,
        ghost.last_name_1 as ghost_last_name_1,
        ghost.last_name_2 as ghost_last_name_2,
        ghost.doc_type as ghost_doc_type,
        ghost.doc_number as ghost_doc_number,
        ghost.phone_national as ghost_phone_national,
        ghost.email as ghost_email,
        typos.typo_value
    from base
    inner join demo_persons as person
        on person.person_n = base.person_n
        and person.is_complete
    inner join demo_persons as other
        on other.person_n = base.other_n
        and other.is_complete
    inner join demo_persons as ghost
        on ghost.person_n = base.ghost_n
        and not ghost.is_registered
    left join demo_typos as typos
        on typos.lead_n = base.lead_n
),

-- which identity's name, and which identifiers, each scenario carries
intended as (
    select
        joined.*,
        joined.scenario in ('email_other_name', 'no_match', 'missing_identifiers')
        or (joined.scenario = 'claimed' and joined.variant >= 50) as uses_ghost,
        case
            when joined.scenario in ('document', 'conflict') then true
            when joined.scenario = 'linked' then joined.variant < 70
            when joined.scenario = 'claimed' then joined.variant < 50
            when joined.scenario = 'no_match' then joined.variant < 40 or joined.variant >= 80
            else false
        end as has_document,
        case
            when joined.scenario in ('phone_email', 'phone_name', 'conflict') then true
            when joined.scenario = 'document' then joined.variant % 10 < 4
            when joined.scenario = 'linked' then joined.variant % 2 = 0
            when joined.scenario = 'claimed' then joined.variant % 10 < 3
            when joined.scenario = 'no_match' then joined.variant between 40 and 69 or joined.variant >= 80
            else false
        end as has_phone,
        case
            when joined.scenario in ('phone_email', 'email_other_name') then true
            when joined.scenario = 'document' then joined.variant / 10 % 10 < 3
            when joined.scenario in ('linked', 'claimed') then joined.variant / 10 % 10 < 3
            when joined.scenario = 'no_match' then joined.variant >= 70
            else false
        end as has_email
    from joined
),

rendered as (
    select
        intended.lead_n,
        intended.scenario,
        case
            when intended.scenario in (
                'document', 'linked', 'phone_email', 'phone_name', 'conflict',
                'document_one_edit', 'phone_one_edit'
            ) then intended.person_key
            when intended.scenario = 'claimed' and not intended.uses_ghost then intended.person_key
        end as truth_person_key,
        intended.created_at,
        -- a quarter edited within two days of creation, before the anchor: spread over
        -- that span (clamped to the anchor, the edits of the last two days' leads piled
        -- up on that one instant, inside every hour's look-back)
        case
            when intended.update_roll % 100 < 25 then intended.created_at
                + (intended.update_roll / 100 % 2880) / 2880.0
                * (least(intended.created_at + interval '2 days', intended.anchor_at)
                    - intended.created_at)
        end as updated_at,
        case
            when intended.scenario = 'missing_identifiers' and intended.name_style % 100 < 15
                then pg_temp.demo_blank(intended.name_style / 100)
            -- an email under another person's name: when that name happens to be the
            -- email holder's own (same given name and surname), the truth "someone
            -- else" is unknowable, so the other name is a third person's
            when
                intended.scenario = 'email_other_name'
                and lower(pg_temp.demo_ascii(intended.ghost_first_name))
                = lower(pg_temp.demo_ascii(intended.first_name))
                and lower(pg_temp.demo_ascii(intended.ghost_last_name_1))
                = lower(pg_temp.demo_ascii(intended.last_name_1))
                then pg_temp.demo_form_name(
                    intended.other_first_name, intended.other_second_name,
                    intended.other_last_name_1, intended.other_last_name_2,
                    intended.other_nickname, intended.name_style
                )
            when intended.uses_ghost then pg_temp.demo_form_name(
                intended.ghost_first_name, intended.ghost_second_name,
                intended.ghost_last_name_1, intended.ghost_last_name_2,
                intended.ghost_nickname, intended.name_style
            )
            -- the person's own name, as carelessly as forms write it
            else pg_temp.demo_form_name(
                intended.first_name, intended.second_name,
                intended.last_name_1, intended.last_name_2,
                intended.nickname, intended.name_style
            )
        end as full_name,
        case
            when intended.scenario = 'missing_identifiers' then case intended.variant % 7
                when 1 then (array['999999999', '+51 999 999 999', '51-912-345-678'])[1 + intended.phone_style % 3]
                when 4 then (array['no tiene', '123', '000000000', '-'])[1 + intended.phone_style % 4]
                else pg_temp.demo_blank(intended.phone_style)
            end
            when intended.scenario = 'phone_one_edit'
                then pg_temp.demo_phone(intended.typo_value, 4 * (intended.phone_style % 2))
            when intended.scenario = 'document' and intended.variant % 10 = 9
                then (array['999999999', '+51 999 999 999'])[1 + intended.phone_style % 2]
            when not intended.has_phone then pg_temp.demo_blank(intended.phone_style)
            when intended.scenario = 'conflict'
                then pg_temp.demo_phone(intended.other_phone_national, intended.phone_style)
            when intended.uses_ghost
                then pg_temp.demo_phone(intended.ghost_phone_national, intended.phone_style)
            else pg_temp.demo_phone(intended.phone_national, intended.phone_style)
        end as phone,
        case
            when intended.scenario = 'missing_identifiers' then case intended.variant % 7
                when 2 then (array['00000000', '12.345.678', '87654321'])[1 + intended.document_style % 3]
                when 4 then (array['0', '-', '.', ''])[1 + intended.document_style % 4]
                else pg_temp.demo_blank(intended.document_style)
            end
            when intended.scenario = 'document_one_edit'
                then pg_temp.demo_document(intended.typo_value, intended.document_style)
            when not intended.has_document then pg_temp.demo_blank(intended.document_style)
            when intended.uses_ghost
                then pg_temp.demo_document(intended.ghost_doc_number, intended.document_style)
            else pg_temp.demo_document(intended.doc_number, intended.document_style)
        end as document_number,
        intended.uses_ghost,
        intended.has_document or intended.scenario = 'document_one_edit'
        or (intended.scenario = 'missing_identifiers' and intended.variant % 7 in (2, 4))
        as shows_document_type,
        intended.doc_type,
        intended.ghost_doc_type,
        intended.document_style,
        case
            when intended.scenario = 'missing_identifiers' then case intended.variant % 7
                when 3 then (array['test@test.com', ' TEST@TEST.COM', 'test@example.com', 'no@no.com'])[
                    1 + intended.email_style % 4
                ]
                when 4 then (array['sin correo', 'a@a', 'no tiene', '@'])[1 + intended.email_style % 4]
                else pg_temp.demo_blank(intended.email_style)
            end
            when intended.scenario = 'document' and intended.variant % 10 = 8
                then (array['test@test.com', 'TEST@TEST.COM '])[1 + intended.email_style % 2]
            when not intended.has_email then pg_temp.demo_blank(intended.email_style)
            when intended.uses_ghost and intended.scenario <> 'email_other_name'
                then pg_temp.demo_email(intended.ghost_email, intended.email_style)
            else pg_temp.demo_email(intended.email, intended.email_style)
        end as email,
        intended.delay_roll,
        intended.anchor_at,
        intended.person_n
    from intended
),

final as (
    select
        lead_n,
        'L' || lpad(lead_n::text, 8, '0') as lead_id,
        scenario,
        truth_person_key,
        created_at,
        updated_at,
        full_name,
        phone,
        case
            when not shows_document_type then pg_temp.demo_blank(document_style / 10)
            when scenario = 'missing_identifiers' then 'DNI'
            when uses_ghost then pg_temp.demo_document_type(ghost_doc_type, document_style / 10)
            else pg_temp.demo_document_type(doc_type, document_style / 10)
        end as document_type,
        document_number,
        email,
        -- when someone else linked or claimed it: minutes to days later, before now
        created_at + least(
            interval '5 minutes' + (delay_roll % 5760) * interval '1 minute',
            (anchor_at - created_at) * 0.9
        ) as handled_at,
        delay_roll,
        person_n
    from rendered
)

select * from final;

-- The sources.
insert into {registry} (
    person_key, full_name, phone, document_type, document_number, email, created_at, updated_at
)
select
    person_key,
    case
        -- as the national registry writes it: surnames, a comma, given names
        when style % 20 = 19 then upper(
            concat_ws(' ', last_name_1, last_name_2) || ', ' || concat_ws(' ', first_name, second_name)
        )
        when style % 10 < 2 then upper(concat_ws(' ', first_name, second_name, last_name_1, last_name_2))
        else concat_ws(' ', first_name, second_name, last_name_1, last_name_2)
    end as full_name,
    case
        when phone_national is null then pg_temp.demo_blank(style / 10)
        else pg_temp.demo_phone(phone_national, style / 100)
    end as phone,
    case
        when doc_number is null then pg_temp.demo_blank(style_2)
        else pg_temp.demo_document_type(doc_type, style_2 / 10)
    end as document_type,
    case
        when doc_number is null then pg_temp.demo_blank(style_2 / 100)
        else pg_temp.demo_document(doc_number, style_2 / 1000)
    end as document_number,
    case
        when email is null then pg_temp.demo_blank(style / 1000)
        else pg_temp.demo_email(email, style / 10000)
    end as email,
    created_at,
    case
        -- edited some time after creation (itself at least 31 days before the anchor),
        -- never later than a day before the first lead: spread over that span (clamped to
        -- its end, 8% of the registry shared that one instant, the newest change, so every
        -- build re-checked them within its look-back)
        when style / 100000 % 10 < 3 then created_at
            + (style_2 / 10000 % 20000) / 20000.0
            * ((select anchor_at from demo_params) - interval '31 days' - created_at)
    end as updated_at
from demo_persons
where is_registered;

insert into {leads} (
    lead_id, created_at, updated_at, full_name, phone, document_type, document_number, email
)
select
    lead_id,
    created_at,
    updated_at,
    full_name,
    phone,
    document_type,
    document_number,
    email
from demo_leads;

-- Leads linked by other systems, and persons linked from other sources.
insert into {links} (
    source_table, source_pk, person_key, match_rule, match_score, linked_at, linked_by, run_id
)
select
    params.lead_source_table as source_table,
    leads.lead_id as source_pk,
    leads.truth_person_key as person_key,
    'crm_manual' as match_rule,
    null::real as match_score,
    leads.handled_at as linked_at,
    case when leads.delay_roll / 5760 % 10 < 8 then 'crm-sync' else 'backoffice' end as linked_by,
    null as run_id
from demo_leads as leads
cross join demo_params as params
where leads.scenario = 'linked'
union all
select
    'crm_contacts' as source_table,
    'CRM-' || lpad(person_n::text, 8, '0') as source_pk,
    person_key,
    'crm_import' as match_rule,
    null::real as match_score,
    created_at + (origin_roll / 100 % 72) * interval '1 hour' as linked_at,
    'crm-sync' as linked_by,
    null as run_id
from demo_persons
where is_registered and origin_roll / 10000 % 100 < 3;

insert into {claims} (claim_id, lead_id, claimed_at)
select
    'C' || lpad(lead_n::text, 8, '0') as claim_id,
    lead_id,
    handled_at as claimed_at
from demo_leads
where scenario = 'claimed';

-- Origins for most persons; a linked person without one is ORIGIN_MISSING.
insert into {origin} (person_key, origin_tag, origin_source_pk, origin_created_at, recorded_at)
select
    person_key,
    (array['crm', 'web_form', 'call_center', 'cabinet'])[1 + origin_roll / 100 % 4] as origin_tag,
    (array['CRM-', 'WEB-', 'CALL-', 'CAB-'])[1 + origin_roll / 100 % 4]
    || lpad(person_n::text, 8, '0') as origin_source_pk,
    created_at as origin_created_at,
    created_at + (origin_roll / 400 % 600) * interval '1 minute' as recorded_at
from demo_persons
where is_registered and origin_roll % 100 < 85;

insert into kpi_red_demo.lead_truth (lead_id, person_key, scenario)
select
    lead_id,
    truth_person_key as person_key,
    scenario
from demo_leads;

-- name: record
insert into kpi_red_demo.loaded (
    size, seed, density, leads, persons, links, claims, origin_rows, anchor_at, seconds
)
select
    %(size)s,
    %(seed)s,
    %(density)s,
    (select count(*) from {leads}),
    (select count(*) from {registry}),
    (select count(*) from {links}),
    (select count(*) from {claims}),
    (select count(*) from {origin}),
    (select anchor_at from demo_params),
    %(seconds)s
returning size, seed, density, leads, persons, links, claims, origin_rows, seconds;
