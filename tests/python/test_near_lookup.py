"""The one-edit lookup against brute force, on dense and hostile identifiers.

A registry where half of every block of document and phone numbers is held, in three
lengths (so insertions and deletions land on someone), with letters inside numbers,
runs of one digit, values at the minimum length, shared and junk values; built by dbt.
For some two thousand lead values, the persons the matcher's lookup returns (the same
code a run uses, batch by batch) are compared with a computation in plain Python over
the whole registry, normalized in Python: every person whose value is one edit from the
lead's. Then persons change, arrive and swap values after the build, and the lookup (with
the persons read live) is compared again with the registry as it is now.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime

import pytest
from conftest import Database
from rapidfuzz.distance import OSA
from scenario_support import SOURCE_DDL

from matcher import edits, match, records
from matcher import near as one_edit
from matcher.normalize import NormalizationRules
from matcher.registry import LiveRegistry
from matcher.store import stream as store_stream

RULES = NormalizationRules()
CC = RULES.country_code
MIN_LENGTH = edits.NEAR_MIN_LENGTH
SHARED_THRESHOLD = 3  # dbt_project.yml's junk_shared_threshold
BATCH = 400
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# (person_key, full_name, phone, document_type, document_number)
Row = tuple[str, str, str | None, str | None, str | None]


def hostile_registry(seed: int) -> list[Row]:
    """Dense blocks of numbers in neighbouring lengths, and the awkward values."""
    rng = random.Random(seed)
    documents: list[tuple[str, str]] = []
    for start, stop, density in (
        (45670000, 45680000, 0.45),  # 8 digits
        (4567000, 4568000, 0.5),  # 7 digits: one deletion of the 8-digit block
        (456700000, 456710000, 0.3),  # 9 digits: one insertion of it
    ):
        documents += [("DNI", str(n)) for n in range(start, stop) if rng.random() < density]
    # letters inside numbers: found only if an insertion or deletion may be a letter
    for _ in range(400):
        digits = str(rng.randrange(45670000, 45680000))
        at = rng.randrange(1, len(digits) + 1)
        documents.append(("DNI", digits[:at] + rng.choice(LETTERS) + digits[at:]))
    for _ in range(600):  # passports: two letters and digits, dense in the digits
        documents.append(
            (
                "PASAPORTE",
                rng.choice("AB") + rng.choice("CD") + str(rng.randrange(4567000, 4568000)),
            )
        )
    # runs of one character, and values around the minimum length
    documents += [("DNI", value) for value in ("11112222", "1112222", "111122222", "12222222")]
    documents += [("DNI", value) for value in ("12345", "123456", "1234567", "123457", "23456")]
    documents += [("CE", value) for value in ("98765", "987654", "9876543", "98764")]
    phones: list[str] = []
    for start, stop, density in (
        (955510000, 955520000, 0.45),  # mobile, 9 digits
        (95551000, 95552000, 0.5),  # landline length, 8 digits: one deletion away
    ):
        phones += [str(n) for n in range(start, stop) if rng.random() < density]
    rng.shuffle(documents)
    rng.shuffle(phones)
    rows: list[Row] = []
    for n in range(max(len(documents), len(phones))):
        kind, number = documents[n] if n < len(documents) else (None, None)
        phone = phones[n] if n < len(phones) and rng.random() < 0.7 else None
        if phone is None and n < len(phones):
            rows.append((f"HP-{n}", f"Phone Holder {n}", _raw_phone(phones[n], rng), None, None))
        rows.append((f"HD-{n}", f"Document Holder {n}", _raw_phone(phone, rng), kind, number))
    # shared (two holders: never a candidate) and junk (more than the threshold)
    for n, value in enumerate(("45670001", "45670011", "45675555", "4567123")):
        rows += [(f"HS-{n}-{k}", "Shared Holder", None, "DNI", value) for k in range(2)]
    for n, value in enumerate(("45679999", "955519999")):
        is_phone = value.startswith("9555")
        rows += [
            (
                f"HJ-{n}-{k}",
                "Junk Holder",
                value if is_phone else None,
                None if is_phone else "DNI",
                None if is_phone else value,
            )
            for k in range(SHARED_THRESHOLD + 1)
        ]
    return rows


def _raw_phone(national: str | None, rng: random.Random) -> str | None:
    if national is None:
        return None
    return rng.choice(
        [national, f"+{CC} {national}", f"00{CC}{national}", f"({national[:3]}) {national[3:]}"]
    )


def edited(value: str, rng: random.Random) -> str:
    """``value`` with one or two random edits (substitution, insertion, deletion, swap)."""
    for _ in range(rng.choice((1, 1, 1, 2))):
        at = rng.randrange(len(value))
        char = rng.choice("0123456789" if rng.random() < 0.9 else LETTERS)
        kind = rng.choice(("substitution", "insertion", "deletion", "swap"))
        if kind == "substitution":
            value = value[:at] + char + value[at + 1 :]
        elif kind == "insertion":
            value = value[:at] + char + value[at:]
        elif kind == "deletion" and len(value) > 1:
            value = value[:at] + value[at + 1 :]
        elif at < len(value) - 1:
            value = value[:at] + value[at + 1] + value[at] + value[at + 2 :]
    return value


def lead_values(registry: list[Row], seed: int) -> list[tuple[str, str]]:
    """``(key_type, normalized value)`` to look up: registry values edited once or twice,
    held values themselves, random values in the blocks, and the awkward ones."""
    rng = random.Random(seed)
    held = [row for row in registry if row[4] is not None]
    phones = [row[2] for row in registry if row[2] is not None]
    values: dict[tuple[str, str], None] = {}
    for _ in range(1400):
        _key, _name, _phone, kind, number = rng.choice(held)
        document = RULES.document(kind, edited(number or "", rng))
        if document:
            values[("document", document)] = None
    for _ in range(600):
        phone = RULES.phone(edited(RULES.phone(rng.choice(phones)) or "", rng))
        if phone:
            values[("phone", phone)] = None
    for _ in range(200):
        values[("document", f"DNI:{rng.randrange(45670000, 45680000)}")] = None
        values[("phone", f"{CC}{rng.randrange(955510000, 955520000)}")] = None
    for value in (
        "DNI:1111222",
        "DNI:11122222",
        "DNI:12345",
        "DNI:1234",
        "DNI:1234568",
        "DNI:45670A01",
        "DNI:4567001",
        "DNI:45670021",
        "CE:9876",
        "CE:98765",
        "PASAPORTE:AC4567001",
        "PASAPORTE:A4567001",
        "PASAPORTE:AC45670012",
    ):
        values[("document", value)] = None
    return list(values)


def one_edit_apart(lead: str, person: str) -> bool:
    """Plain Python: one substitution (a digit for a digit, a letter for a letter), one
    adjacent swap, or one character more or less (optimal string alignment distance 1)."""
    if abs(len(lead) - len(person)) > 1 or lead == person:
        return False
    if len(lead) != len(person):
        shorter, longer = sorted((lead, person), key=len)
        return any(longer[:at] + longer[at + 1 :] == shorter for at in range(len(longer)))
    differing = [at for at in range(len(lead)) if lead[at] != person[at]]
    if len(differing) == 1:
        (at,) = differing
        return lead[at].isdigit() == person[at].isdigit()
    first, *rest = differing
    return rest == [first + 1] and (lead[first], lead[first + 1]) == (
        person[first + 1],
        person[first],
    )


def holders_of(registry: Iterable[Row]) -> dict[tuple[str, str], set[str]]:
    """``(key_type, normalized value)`` -> the persons holding it, normalized in Python."""
    holders: dict[tuple[str, str], set[str]] = {}
    for person_key, _name, phone, kind, number in registry:
        for key in (("phone", RULES.phone(phone)), ("document", RULES.document(kind, number))):
            if key[1] is not None:
                holders.setdefault((key[0], key[1]), set()).add(person_key)
    return holders


def candidate_values(
    holders: dict[tuple[str, str], set[str]], junk: frozenset[tuple[str, str]]
) -> dict[tuple[str, str], list[tuple[str, str, str]]]:
    """``(key_type, fixed part)`` -> ``(editable part, value, person)`` of every value that
    may be found one edit away: an editable part of at least ``MIN_LENGTH`` characters,
    no junk, held by one person alone."""
    by_part: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    for (key_type, value), persons in holders.items():
        split = edits.editable_split(key_type, value, country_code=CC)
        if split is None or len(split[1]) < MIN_LENGTH or (key_type, value) in junk:
            continue
        if len(persons) == 1:
            (person_key,) = persons
            by_part.setdefault((key_type, split[0]), []).append((split[1], value, person_key))
    return by_part


def brute_force(
    values: Iterable[tuple[str, str]],
    registry: Iterable[Row],
    junk: frozenset[tuple[str, str]],
) -> dict[tuple[str, str], set[tuple[str, str]]]:
    """Every lead value -> ``(person_key, value)`` of the registry persons whose value is
    one edit away (``one_edit_apart`` against every registry value with the same fixed
    part: document type, country code)."""
    by_part = candidate_values(holders_of(registry), junk)
    found: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for key_type, value in values:
        split = edits.editable_split(key_type, value, country_code=CC)
        if split is None or len(split[1]) + 1 < MIN_LENGTH:
            continue
        prefix, part = split
        found[(key_type, value)] = {
            (person_key, person_value)
            for person_part, person_value, person_key in by_part.get((key_type, prefix), ())
            if one_edit_apart(part, person_part)
        }
    return found


def neighbourhood(
    values: Iterable[tuple[str, str]],
    registry: Iterable[Row],
    junk: frozenset[tuple[str, str]],
) -> dict[tuple[str, str], set[tuple[str, str]]]:
    """``brute_force``, faster: every string one character substituted, inserted, left
    out or two swapped, over every character any registry value holds, kept when
    ``one_edit_apart`` says so and held (checked against ``brute_force`` on a sample)."""
    holders = holders_of(registry)
    by_part = candidate_values(holders, junk)
    held = {
        (key_type, prefix, part): (value, person_key)
        for (key_type, prefix), rows in by_part.items()
        for part, value, person_key in rows
    }
    alphabet = sorted({char for rows in by_part.values() for part, _v, _p in rows for char in part})
    found: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for key_type, value in values:
        split = edits.editable_split(key_type, value, country_code=CC)
        if split is None or len(split[1]) + 1 < MIN_LENGTH:
            continue
        prefix, part = split
        near = {part[:at] + part[at + 1 :] for at in range(len(part))}
        near |= {
            part[:at] + part[at + 1] + part[at] + part[at + 2 :] for at in range(len(part) - 1)
        }
        for char in alphabet:
            near |= {part[:at] + char + part[at + 1 :] for at in range(len(part))}
            near |= {part[:at] + char + part[at:] for at in range(len(part) + 1)}
        found[(key_type, value)] = {
            (held[key][1], held[key][0])
            for other in near
            if (key := (key_type, prefix, other)) in held and one_edit_apart(part, other)
        }
    return found


def lookup_found(
    conn: store_stream.psycopg.Connection,
    values: list[tuple[str, str]],
    *,
    live: LiveRegistry | None = None,
) -> dict[tuple[str, str], set[tuple[str, str]]]:
    """What the matcher's lookup finds for each value, a batch at a time, as a run does:
    only values of the shapes the build stored and the changed persons hold now."""
    shapes = edits.KeyShapes.from_rows(store_stream.load_key_shapes(conn))
    if live is not None:
        shapes = shapes.with_values(live.holders)
    found: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for start in range(0, len(values), BATCH):
        chunk = values[start : start + BATCH]
        decisions = [
            match.failed(
                records.Lead(f"L-{n}", datetime.now(UTC), "hash", "Some Body", {key_type: value}),
                "no_match",
                {},
            )
            for n, (key_type, value) in enumerate(chunk)
        ]
        lookup = one_edit.NearLookup.of(
            decisions, country_code=CC, min_length=MIN_LENGTH, shapes=shapes
        )
        rows = store_stream.fetch_near_candidates(conn, lookup.origins, live=live)
        index = one_edit.NearIndex.from_rows((row[:4] for row in rows), lookup)
        for key_type, value in chunk:
            if (key_type, value) in lookup.values:
                found[(key_type, value)] = {
                    (candidate.person.person_key, candidate.key_value)
                    for candidate in index.candidates(key_type, value)
                }
    return found


def registry_rows(database: Database) -> list[Row]:
    return database.query(
        "select person_key, full_name, phone, document_type, document_number"
        " from canon.identity_registry"
    )


@pytest.fixture(scope="module")
def dense_db(make_database: Callable[..., Database]) -> Iterator[Database]:
    database = make_database()
    database.execute(SOURCE_DDL)
    with database.connect() as conn:
        conn.cursor().executemany(
            "insert into canon.identity_registry"
            " (person_key, full_name, phone, document_type, document_number, created_at)"
            " values (%s, %s, %s, %s, %s, now() - interval '30 days')",
            hostile_registry(seed=17),
        )
    database.dbt(
        "build",
        "--select",
        "+person_keys",
        "+junk_keys",
        "+person_keys_changed",
        "+person_key_shapes",
    )
    yield database


def test_the_brute_force_is_osa_distance_one() -> None:
    """The plain-Python oracle agrees with rapidfuzz's optimal string alignment on
    random pairs over a small alphabet (apart from the substitution classes)."""
    rng = random.Random(3)
    for _ in range(20_000):
        left = "".join(rng.choice("0123AB") for _ in range(rng.randrange(1, 7)))
        right = edited(left, rng) if rng.random() < 0.8 else left
        same_class = all(
            a.isdigit() == b.isdigit() for a, b in zip(left, right, strict=False)
        ) or len(left) != len(right)
        if same_class or OSA.distance(left, right) != 1:
            assert one_edit_apart(left, right) == (OSA.distance(left, right) == 1), (left, right)


def test_the_lookup_finds_exactly_the_persons_one_edit_away(dense_db: Database) -> None:
    registry = registry_rows(dense_db)
    junk = frozenset(dense_db.query("select key_type, key_value from kpi_red_interface.junk_keys"))
    assert {("document", "DNI:45679999"), ("phone", f"{CC}955519999")} <= junk
    values = lead_values(registry, seed=5)
    expected = neighbourhood(values, registry, junk)
    sample = random.Random(1).sample(values, 300)
    assert brute_force(sample, registry, junk) == {
        value: expected[value] for value in sample if value in expected
    }
    with dense_db.connect(autocommit=True) as conn:
        found = lookup_found(conn, values)
    assert found.keys() == expected.keys()
    wrong = {
        value: (found[value], expected[value])
        for value in expected
        if found[value] != expected[value]
    }
    assert wrong == {}
    neighbours = [len(persons) for persons in expected.values()]
    # hostile indeed: dense neighbourhoods, letters and lengths crossing
    assert len(expected) > 1500 and max(neighbours) >= 30 and sum(neighbours) > 20_000
    kinds = {
        edits.edit_kind(value, person_value)
        for (_key_type, value), persons in expected.items()
        for _person_key, person_value in persons
    }
    assert kinds == {"substitution", "transposition", "insertion", "deletion"}
    with_letters = {
        person_value
        for persons in expected.values()
        for _person_key, person_value in persons
        if person_value.startswith("DNI:") and not person_value[4:].isdigit()
    }
    assert with_letters  # a letter inserted into a number, found


def test_persons_changed_since_the_build_are_found_as_they_are_now(dense_db: Database) -> None:
    """Last in the module (it changes the registry): persons who moved to another value,
    lost one, or arrived after the build are looked up as they are now, the stored rows
    of the changed ones ignored; the result is brute force over the registry now."""
    rng = random.Random(11)
    registry = registry_rows(dense_db)
    documents = [row for row in registry if row[3] == "DNI" and row[4] and row[0].startswith("HD-")]
    with dense_db.connect() as conn:
        for person_key, _name, _phone, _kind, number in rng.sample(documents, 150):
            conn.execute(
                "update canon.identity_registry set document_number = %s, updated_at = now()"
                " where person_key = %s",
                (edited(number or "", rng), person_key),
            )
        for person_key, *_ in rng.sample(documents, 30):
            conn.execute(
                "update canon.identity_registry set document_number = null, phone = null,"
                " updated_at = now() where person_key = %s",
                (person_key,),
            )
        conn.cursor().executemany(
            "insert into canon.identity_registry"
            " (person_key, full_name, phone, document_type, document_number, created_at)"
            " values (%s, 'New Person', %s, 'DNI', %s, now())",
            [
                (
                    f"NEW-{n}",
                    str(rng.randrange(955510000, 955520000)),
                    str(rng.randrange(45670000, 45680000)),
                )
                for n in range(200)
            ],
        )
    registry = registry_rows(dense_db)
    junk = frozenset(dense_db.query("select key_type, key_value from kpi_red_interface.junk_keys"))
    values = lead_values(registry, seed=6)
    expected = neighbourhood(values, registry, junk)
    with dense_db.connect(autocommit=True) as conn:
        live = LiveRegistry.from_rows(
            store_stream.load_changed_persons(conn, limit=10_000),
            junk=junk | RULES.blocklisted,
        )
        assert len(live.changed) > 300
        found = lookup_found(conn, values, live=live)
    wrong = {
        value: (found[value], expected[value])
        for value in expected
        if found[value] != expected[value]
    }
    assert wrong == {}
    assert found.keys() == expected.keys()
    new_found = {
        person_key
        for persons in expected.values()
        for person_key, _value in persons
        if person_key.startswith("NEW-")
    }
    assert len(new_found) > 50


def test_only_values_of_a_shape_somebody_holds_are_looked_up() -> None:
    # DNIs of 8 digits only, CE numbers of 7 to 9 characters, letters only in 9
    shapes = edits.KeyShapes.from_rows(
        [
            ("document", "DNI", 12, False),
            ("document", "CE", 10, False),
            ("document", "CE", 11, False),
            ("document", "CE", 12, True),
            ("phone", "", 11, False),
        ]
    )

    def looked_up(key_type: str, value: str, given: edits.KeyShapes | None) -> set[str]:
        return set(
            edits.one_edit_values(key_type, value, country_code=CC, shapes=given)
            + edits.insertion_values(key_type, value, country_code=CC, shapes=given)
        )

    for key_type, value in [
        ("document", "DNI:45678912"),
        ("document", "DNI:4567891"),
        ("document", "DNI:456789123"),
        ("document", "CE:1234567"),
        ("document", "CE:12345678"),
        ("document", "PAS:1234567"),
        ("phone", f"{CC}987654321"),
    ]:
        every = looked_up(key_type, value, None)

        def of_a_held_shape(other: str, value: str = value, key_type: str = key_type) -> bool:
            if not shapes.holds(key_type, other, len(other)):
                return False
            # a letter put back only where a number of that shape holds one
            inserted_letter = len(other) > len(value) and edits.has_letters(key_type, other)
            return not inserted_letter or shapes.holds_letters(key_type, other, len(other))

        assert looked_up(key_type, value, shapes) == set(filter(of_a_held_shape, every)), value
    # an 8-digit DNI: one digit changed or two swapped, never one left out or added
    assert len(looked_up("document", "DNI:45678912", shapes)) == 78
    assert looked_up("document", "PAS:1234567", shapes) == set()
    # a CE of 8 characters gains a letter or a digit (letters held at 9), loses one too
    ce = looked_up("document", "CE:12345678", shapes)
    assert {"CE:1234A5678", "CE:1234567", "CE:12345679"} <= ce
    # the changed persons' keys add their shapes
    wider = shapes.with_values([("document", "PAS:12345678A")])
    assert wider.holds("document", "PAS:1", 13) and wider.holds_letters("document", "PAS:", 13)
    assert looked_up("document", "PAS:12345678", wider)


def test_the_stored_shapes_are_the_registrys(dense_db: Database) -> None:
    # the dense registry puts letters inside DNI numbers, of several lengths
    registry = dense_db.query(
        "select key_type, key_value from kpi_red_interface.person_keys"
        " where key_type in ('document', 'phone') and key_value is not null"
    )
    with dense_db.connect(autocommit=True) as conn:
        stored = edits.KeyShapes.from_rows(store_stream.load_key_shapes(conn))
    assert stored == edits.KeyShapes.from_rows([]).with_values(registry)
    assert [shape for shape in stored.lettered if shape[1] == "DNI"]
    assert len({length for _type, kind, length in stored.held if kind == "DNI"}) >= 3
