"""Demo data (`kpi-red demo`, matcher/demo.py): counts, planted scenarios, mess, idempotence,
determinism and the CLI, on real throwaway databases."""

from __future__ import annotations

import collections
import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from conftest import Database
from rapidfuzz import fuzz
from rapidfuzz.distance import OSA

from matcher import demo, normalize
from matcher.cli import main

AS_OF = datetime(2025, 6, 30, 15, 0, tzinfo=UTC)
SOURCE_TABLES = (
    "cabinet.leads",
    "canon.identity_registry",
    "canon.identity_links",
    "canon.identity_origin",
    "claims.lead_claims",
    "kpi_red_demo.lead_truth",
)
KEYS = ("phone", "document", "email")


def checksum(database: Database, table: str) -> str:
    """md5 of every row of the table in a stable order."""
    return database.scalar(
        f"select md5(coalesce(string_agg(rows::text, '|' order by rows::text), '')) "  # noqa: S608
        f"from {table} as rows"
    )


def checksums(database: Database) -> dict[str, str]:
    return {table: checksum(database, table) for table in SOURCE_TABLES}


# --- the shared demo database (seed 42, size demo) ---------------------------------------


def test_counts_and_shares(demo_db: Database) -> None:
    leads, persons = demo.SIZES["demo"]
    assert demo_db.scalar("select count(*) from cabinet.leads") == leads
    assert demo_db.scalar("select count(*) from canon.identity_registry") == persons
    per_scenario = dict(
        demo_db.query("select scenario, count(*) from kpi_red_demo.lead_truth group by scenario")
    )
    assert sum(per_scenario.values()) == leads
    assert set(per_scenario) == set(demo.SCENARIOS)
    for scenario, share in demo.SCENARIOS.items():
        expected = leads * share / 1000
        assert 0.7 * expected <= per_scenario[scenario] <= 1.3 * expected, scenario
    assert demo_db.scalar("select count(*) from claims.lead_claims") == per_scenario["claimed"]
    lead_links = demo_db.scalar(
        "select count(*) from canon.identity_links where source_table = 'cabinet_leads'"
    )
    assert lead_links == per_scenario["linked"]
    assert demo_db.query("select size, seed, leads, persons from kpi_red_demo.loaded") == [
        ("demo", 42, leads, persons)
    ]


def test_linked_and_claimed_after_creation_with_movement_every_day(demo_db: Database) -> None:
    rows = demo_db.query(
        """
        select truth.scenario, leads.created_at, coalesce(links.linked_at, claims.claimed_at),
            links.person_key = truth.person_key, links.linked_by
        from kpi_red_demo.lead_truth as truth
        join cabinet.leads as leads using (lead_id)
        left join canon.identity_links as links
            on links.source_table = 'cabinet_leads' and links.source_pk = truth.lead_id
        left join claims.lead_claims as claims on claims.lead_id = truth.lead_id
        where truth.scenario in ('linked', 'claimed')
        """
    )
    for scenario, created_at, handled_at, same_person, linked_by in rows:
        assert created_at < handled_at <= datetime.now(UTC), scenario
        if scenario == "linked":
            assert same_person and linked_by in ("crm-sync", "backoffice")
    span = demo_db.query(
        """
        select count(distinct created_at::date), count(distinct linked_at::date),
            min(created_at) > now() - interval '30 days 1 hour'
        from cabinet.leads
        left join canon.identity_links
            on source_table = 'cabinet_leads' and source_pk = lead_id
        """
    )[0]
    assert span[0] >= 30 and span[1] >= 28 and span[2]
    assert demo_db.scalar(
        "select (select max(created_at) from canon.identity_registry)"
        " < (select min(created_at) from cabinet.leads)"
    )
    origin_missing = demo_db.scalar(
        """
        select count(distinct links.person_key)
        from canon.identity_links as links
        left join canon.identity_origin as origin using (person_key)
        where origin.person_key is null
        """
    )
    assert origin_missing > 10


def test_scenarios_are_what_they_claim(demo_db: Database) -> None:
    """Normalized with matcher.normalize, each lead's keys point where its scenario says."""
    rules = normalize.NormalizationRules.from_vars(demo_db.settings.vars)

    def keys(phone: str, doc_type: str, doc_number: str, email: str) -> tuple[str | None, ...]:
        return (
            rules.phone(phone),
            normalize.normalize_document(
                doc_type, doc_number, default_type=rules.default_document_type
            ),
            normalize.normalize_email(email),
        )

    owners: list[dict[str, set[str]]] = [collections.defaultdict(set) for _ in KEYS]
    persons: dict[str, tuple[str, tuple[str | None, ...]]] = {}
    registry = demo_db.query(
        "select person_key, full_name, phone, document_type, document_number, email"
        " from canon.identity_registry"
    )
    for person_key, full_name, *raw in registry:
        person_keys = keys(*raw)
        persons[person_key] = (full_name, person_keys)
        for owner, value in zip(owners, person_keys, strict=True):
            if value:
                owner[value].add(person_key)
    threshold = int(demo_db.settings.vars.get("junk_shared_threshold", 3))
    blocklists = (rules.junk_phones, rules.junk_documents, rules.junk_emails)
    junk = [
        set(blocklist) | {value for value, holders in owner.items() if len(holders) > threshold}
        for blocklist, owner in zip(blocklists, owners, strict=True)
    ]
    assert all(junk), "every key type has junk values"

    def name_score(first: str | None, second: str | None) -> float:
        return fuzz.token_set_ratio(
            normalize.normalize_name(first) or "", normalize.normalize_name(second) or ""
        )

    leads = demo_db.query(
        """
        select truth.scenario, truth.person_key, leads.full_name, leads.phone,
            leads.document_type, leads.document_number, leads.email
        from cabinet.leads as leads
        join kpi_red_demo.lead_truth as truth using (lead_id)
        """
    )
    failures: list[tuple[object, ...]] = []
    # names are the person's own as careless forms write them (nicknames, typos, a
    # surname or a given name left out): most agree by an independent measure
    # (rapidfuzz's token_set_ratio), not all; a stranger's rarely does
    own_names: list[float] = []
    other_names: list[float] = []
    landed_on_someone = typos = 0
    for scenario, person_key, full_name, *raw in leads:
        phone, document, email = lead_keys = keys(*raw)
        usable = [
            value if value and value not in junk[i] else None for i, value in enumerate(lead_keys)
        ]
        hits = [owners[i].get(value, set()) if value else set() for i, value in enumerate(usable)]
        person_name, person_keys = persons[person_key] if person_key else ("", (None,) * 3)
        if scenario in ("document", "phone_name", "document_one_edit", "phone_one_edit"):
            own_names.append(name_score(full_name, person_name))
        if scenario == "document":
            ok = usable[1] == person_keys[1] and all(hit <= {person_key} for hit in hits)
        elif scenario == "phone_email":
            ok = usable[0] == person_keys[0] and usable[2] == person_keys[2] and not document
        elif scenario == "phone_name":
            ok = usable[0] == person_keys[0] and not document and not email
        elif scenario == "email_other_name":
            owner = persons[next(iter(hits[2]))][0] if len(hits[2]) == 1 else ""
            ok = bool(owner) and not phone and not document
            other_names.append(name_score(full_name, owner))
        elif scenario == "missing_identifiers":
            ok = not any(usable)
        elif scenario == "no_match":
            ok = any(usable) and not any(hits)
        elif scenario == "conflict":
            ok = hits[1] == {person_key} and len(hits[0]) == 1 and person_key not in hits[0]
        elif scenario in ("document_one_edit", "phone_one_edit"):
            index = 1 if scenario == "document_one_edit" else 0
            typo, true_value = usable[index], person_keys[index]
            # dense identifiers: the typo may be another real person's value, never
            # the person's own
            ok = (
                typo is not None
                and true_value is not None
                and person_key not in hits[index]
                and OSA.distance(typo, true_value) == 1
            )
            typos += 1
            landed_on_someone += bool(hits[index])
        else:
            ok = True
        if not ok:
            failures.append((scenario, person_key, full_name, *raw))
    assert failures == []
    assert sum(score >= 80 for score in own_names) >= 0.9 * len(own_names)
    assert sum(score >= 80 for score in other_names) <= 0.05 * len(other_names)
    # a typo lands on another real person: about as often as the density says (the
    # density of the block of numbers; edits that change the length land on nobody)
    assert 0.05 * typos <= landed_on_someone <= 0.4 * typos


def test_the_mess_of_real_data(demo_db: Database) -> None:
    def values(column: str) -> list[str | None]:
        rows = demo_db.query(
            f"select {column} from cabinet.leads union all"  # noqa: S608
            f" select {column} from canon.identity_registry"
        )
        return [row[0] for row in rows]

    def has(column: str, pattern: str) -> bool:
        return any(value is not None and re.search(pattern, value) for value in values(column))

    phone_shapes = [
        r"^\+51 9\d\d \d{3} \d{3}$",
        r"^9\d{8}$",
        r"^00519\d{8}$",
        r"^51-9\d\d-\d{3}-\d{3}$",
        r"^\(01\) \d{3}-\d{4}$",
        r"^999999999$",
    ]
    for pattern in phone_shapes:
        assert has("phone", pattern), pattern
    for pattern in (r"^\d{2}\.\d{3}\.\d{3}$", r"^\d{2}-\d{3}-\d{3}$", r"^0\d{8}$", r"[a-z]", r"^ "):
        assert has("document_number", pattern), pattern
    assert has("document_number", r"^00000000$")
    for pattern in (r"^D\.N\.I\.$", r"^C\.E\.$", r"^PASAPORTE$", r"^dni$"):
        assert has("document_type", pattern), pattern
    for pattern in (r"[A-Z].*@", r"^ .*@.* $", r"\t$", r"^test@test\.com$"):
        assert has("email", pattern), pattern
    for column in ("phone", "document_number", "email"):
        column_values = values(column)
        assert None in column_values and "" in column_values, column
    for table in ("cabinet.leads", "canon.identity_registry"):
        assert demo_db.scalar(f"select count(*) from {table} where phone = '999999999'") > 0  # noqa: S608
    names = " ".join(str(value) for value in values("full_name"))
    assert "ñ" in names.lower() and re.search("[áéíóú]", names.lower())


def dni_numbers(database: Database) -> list[int]:
    """The registry's DNI numbers, normalized (junk left out)."""
    rows = database.query(
        "select document_type, document_number from canon.identity_registry"
        " where document_number is not null"
    )
    found = []
    for doc_type, number in rows:
        key = normalize.normalize_document(doc_type, number)
        if key and key.startswith("DNI:") and key != "DNI:0":
            found.append(int(key.removeprefix("DNI:")))
    return found


def test_identifiers_are_as_dense_as_asked(demo_db: Database) -> None:
    """Density 0.33: the registry holds a third of its block of DNI numbers, so every
    lead's document has several persons one substitution away."""
    numbers = [number for number in dni_numbers(demo_db) if number >= 10_000_000]
    held = set(numbers)
    assert len(held) == len(numbers)  # still one person per number
    low, high = min(numbers), max(numbers)
    assert 0.30 <= len(numbers) / (high - low + 1) <= 0.36
    typed = demo_db.query(
        """
        select leads.document_number
        from cabinet.leads as leads
        join kpi_red_demo.lead_truth as truth using (lead_id)
        where truth.scenario in ('document', 'no_match') and leads.document_number ~ '[0-9]'
        """
    )
    around = []
    for (raw,) in typed:
        key = normalize.normalize_document("DNI", raw)
        if key is None or not key.removeprefix("DNI:").isdigit():
            continue
        digits = key.removeprefix("DNI:")
        neighbours = {
            int(digits[:at] + other + digits[at + 1 :])
            for at in range(len(digits))
            for other in "0123456789"
            if other != digits[at]
        }
        around.append(len(neighbours & held))
    around.sort()
    assert around and around[len(around) // 2] >= 8  # the median lead: 8+ persons around


def test_names_are_skewed_like_real_ones(demo_db: Database) -> None:
    """Zipf-Mandelbrot names: the commonest surname on a few percent of persons (Quispe
    on about 3% in Peru), the rare ones on a handful."""
    words = collections.Counter(
        word
        for (full_name,) in demo_db.query("select full_name from canon.identity_registry")
        for word in set((normalize.normalize_name(full_name) or "").split())
    )
    persons = demo.SIZES["demo"][1]
    assert words["quispe"] == max(words[surname] for surname in ("quispe", "flores", "rojas"))
    assert 0.02 * persons <= words["quispe"] <= 0.06 * persons
    assert words.most_common()[-1][1] < 0.001 * persons


def test_density_zero_is_the_sparse_space(make_database: Callable[..., Database]) -> None:
    """Density 0: numbers spread over the whole 8-digit space, typos land on nobody."""
    database = make_database()
    loaded = demo.load(database.conninfo, database.settings, seed=11, density=0)
    assert loaded.density == 0 and "density 0.00" in loaded.describe()
    numbers = dni_numbers(database)
    assert max(numbers) - min(numbers) > 50_000_000
    held = {f"DNI:{number}" for number in numbers}
    typos = database.query(
        """
        select leads.document_type, leads.document_number
        from cabinet.leads as leads
        join kpi_red_demo.lead_truth as truth using (lead_id)
        where truth.scenario = 'document_one_edit'
        """
    )
    assert typos and not {normalize.normalize_document(*row) for row in typos} & held


# --- idempotence, determinism, reset ------------------------------------------------------


@pytest.fixture(scope="module")
def twin_databases(make_database: Callable[..., Database]) -> tuple[Database, Database]:
    first, second = make_database(), make_database()
    for database in (first, second):
        loaded = demo.load(database.conninfo, database.settings, seed=7, as_of=AS_OF)
        assert not loaded.skipped and loaded.leads == 3_000
    return first, second


def test_same_seed_same_rows(twin_databases: tuple[Database, Database]) -> None:
    first, second = twin_databases
    assert checksums(first) == checksums(second)
    assert first.scalar("select max(created_at) from cabinet.leads") < AS_OF


def test_second_load_is_a_fast_no_op(twin_databases: tuple[Database, Database]) -> None:
    database = twin_databases[0]
    before = checksums(database)
    loaded = demo.load(database.conninfo, database.settings, seed=7)
    assert loaded.skipped and loaded.leads == 3_000 and loaded.persons == 12_000
    assert "already loaded" in loaded.describe()
    assert checksums(database) == before
    assert database.scalar("select count(*) from kpi_red_demo.loaded") == 1


def test_other_size_or_foreign_rows_need_reset(make_database: Callable[..., Database]) -> None:
    database = make_database()
    demo.load(database.conninfo, database.settings, seed=3)
    with pytest.raises(demo.DemoDataError, match="--reset"):
        demo.load(database.conninfo, database.settings, size="small", seed=3)
    with pytest.raises(demo.DemoDataError, match="--reset"):
        demo.load(database.conninfo, database.settings, seed=4)
    database.execute(
        "insert into kpi_red.match_attempts (run_id, lead_source_pk, outcome, fail_reason,"
        " identifiers_hash, started_at) values ('r', 'L00000001', 'failed', 'no_match', 'x', now())"
    )
    before = checksums(database)
    loaded = demo.load(database.conninfo, database.settings, seed=4, reset=True)
    assert not loaded.skipped and loaded.seed == 4
    assert checksums(database) != before
    assert database.scalar("select count(*) from kpi_red.match_attempts") == 0
    assert database.query("select seed from kpi_red_demo.loaded") == [(4,)]

    database.execute("delete from kpi_red_demo.loaded")  # rows kpi-red demo did not record
    with pytest.raises(demo.DemoDataError, match="did not load"):
        demo.load(database.conninfo, database.settings, seed=4)


def test_cli_loads_then_skips(make_database: Callable[..., Database]) -> None:
    database = make_database()
    runner = CliRunner()
    result = runner.invoke(main, ["demo", "--seed", "5"], env=database.cli_env())
    assert result.exit_code == 0, result.output
    assert result.output.startswith(
        "loaded demo data (size demo, seed 5, density 0.33): 3,000 leads, 12,000 persons"
    )
    again = runner.invoke(main, ["demo", "--seed", "5"], env=database.cli_env())
    assert again.exit_code == 0 and "already loaded" in again.output
    other = runner.invoke(main, ["demo", "--size", "small"], env=database.cli_env())
    assert other.exit_code == 1
    assert other.output.strip().splitlines() == [
        "Error: demo data of size demo (seed 5, density 0.33) is already loaded; use --reset"
        " to replace it with size small (seed 42, density 0.33)"
    ]
    denser = runner.invoke(
        main, ["demo", "--seed", "5", "--density", "0.7"], env=database.cli_env()
    )
    assert denser.exit_code == 2 and "0.7 is not in the range 0<=x<=0.6" in denser.output
