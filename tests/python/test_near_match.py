"""Typo-tolerant keys: documents and phones one edit away, names first.

Pure decisions first (a ``NearIndex`` of what the database lookup would find), then
one database: the demo data plus a hand-made registry of typo cases, dbt build, then
``kpi-red match`` without and with near matching.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import Database
from match_support import near_lookups, usable_keys
from rapidfuzz.distance import OSA

from matcher import edits, match, records
from matcher import near as one_edit
from matcher.cli import main
from matcher.normalize import NormalizationRules
from matcher.store import stream as store_stream

CC = "51"
RULES = NormalizationRules()
CREATED = datetime(2024, 5, 1, tzinfo=UTC)

# (key_type, key_value, person_key, full_name): each person alone on its values
REGISTRY = [
    ("document", "DNI:45678912", "P-ANA", "Ana María Quispe Flores"),
    ("phone", "51987654321", "P-ANA", "Ana María Quispe Flores"),
    ("email", "ana@mail.pe", "P-ANA", "Ana María Quispe Flores"),
    ("document", "DNI:70000001", "P-LUIS", "Luis Alberto Mamani"),
    ("phone", "5164235719", "P-LUIS", "Luis Alberto Mamani"),  # a landline: 8 digits
    # two persons one substitution apart from DNI:30571103
    ("document", "DNI:30571113", "P-TWIN-A", "Rosa Cusi Quispe"),
    ("document", "DNI:30571123", "P-TWIN-B", "Rosa Cusi Quispe"),
    ("phone", "51963852741", "P-LUCIO", "Lucio Apaza Mayta"),
    # a stranger's document one substitution from Wilma's: a typo lands on someone
    ("document", "DNI:60708090", "P-STRANGER", "Hugo Pari Ylla"),
    ("document", "DNI:60708091", "P-WILMA", "Wilma Ccopa Huanca"),
    ("phone", "51955123456", "P-HUGO-PHONE", "Hugo Pari Ylla"),
]
EXACT_INDEX = match.CandidateIndex.from_rows(REGISTRY)


def lead(
    full_name: str | None = "Ana María Quispe Flores",
    *,
    phone: str | None = None,
    document_number: str | None = None,
    email: str | None = None,
) -> records.Lead:
    return records.Lead(
        lead_source_pk="L-1",
        created_at=CREATED,
        identifiers_hash="hash",
        full_name=full_name,
        keys=usable_keys(
            phone=phone,
            document_type=None,
            document_number=document_number,
            email=email,
            rules=RULES,
        ),
    )


def near_index(decisions: list[records.Decision]) -> one_edit.NearIndex:
    """What the database lookup would find for these decisions, over ``REGISTRY``."""
    lookup = one_edit.NearLookup.of(decisions, country_code=CC)
    return one_edit.NearIndex.from_registry(REGISTRY, lookup)


def decide(one: records.Lead, **rules: float) -> records.Decision:
    names = match.NameRules(**rules)
    exact = match.decide_batch([one], EXACT_INDEX, rules=names)
    (decision,) = one_edit.decide_near(exact, near_index(exact), rules=names)
    return decision


EDIT_CASES = [
    ("document", "substitution", lead(document_number="45678913"), "P-ANA"),
    ("document", "insertion", lead(document_number="456789112"), "P-ANA"),
    ("document", "deletion", lead(document_number="4567892"), "P-ANA"),
    ("document", "transposition", lead(document_number="45679812"), "P-ANA"),
    ("phone", "substitution", lead(phone="987654322"), "P-ANA"),
    ("phone", "insertion", lead("Luis Alberto Mamani", phone="642357190"), "P-LUIS"),
    ("phone", "deletion", lead(phone="98765431"), "P-ANA"),
    ("phone", "transposition", lead(phone="+51 978 654 321"), "P-ANA"),
]


@pytest.mark.parametrize(
    ("key_type", "edit", "one", "person_key"),
    EDIT_CASES,
    ids=[f"{case[0]}-{case[1]}" for case in EDIT_CASES],
)
def test_each_edit_kind_links(key_type: str, edit: str, one: records.Lead, person_key: str) -> None:
    assert match.decide_batch([one], EXACT_INDEX)[0].fail_reason == "no_match"
    decision = decide(one)
    assert (decision.outcome, decision.match_rule, decision.person_key) == (
        "matched",
        f"{key_type}_one_edit",
        person_key,
    )
    near = decision.evidence["near"][key_type]
    person_value = next(row[1] for row in REGISTRY if row[2] == person_key and row[0] == key_type)
    (candidate,) = near["candidates"]
    assert near["lead_value"] == one.keys[key_type] and near["checked"] == 1
    assert candidate == {
        "person_key": person_key,
        "person_value": person_value,
        "edit": edit,
        "name_score": 100.0,
        "name_bits": candidate["name_bits"],
    }
    assert decision.match_score == decision.evidence["name_score"] >= 92
    assert decision.evidence["name_bits"] >= decision.evidence["near_name_bits_needed"] == 11.0


def test_two_near_candidates_never_link() -> None:
    decision = decide(lead("Rosa Cusi Quispe", document_number="30571103"))
    assert (decision.outcome, decision.fail_reason) == ("failed", "ambiguous")
    assert decision.evidence["candidate_person_keys"] == ["P-TWIN-A", "P-TWIN-B"]


def test_a_near_candidate_never_beats_an_exact_one() -> None:
    # the document is Luis's exactly; the phone is one edit from Ana's
    decision = decide(lead("Luis Alberto Mamani", document_number="70000001", phone="987654322"))
    assert (decision.match_rule, decision.person_key) == ("document+name", "P-LUIS")
    assert "near" not in decision.evidence
    # a lone exact phone with agreeing names wins over a one-edit document elsewhere
    decision = decide(lead("Luis Alberto Mamani", phone="64235719", document_number="45678913"))
    assert (decision.match_rule, decision.person_key) == ("phone+name", "P-LUIS")


def test_an_exact_key_pointing_elsewhere_is_a_conflict() -> None:
    # Lucio's phone exactly (names differ), Ana's document one edit off: the phone is no
    # typo of Ana's (hers is another number), so two things would have to be wrong
    decision = decide(lead(phone="963852741", document_number="45678913"))
    assert (decision.outcome, decision.fail_reason) == ("failed", "conflict")
    assert decision.evidence["conflicting_person_keys"] == ["P-ANA", "P-LUCIO"]


def test_a_typo_on_a_stranger_with_one_strong_neighbour_links_the_neighbour() -> None:
    """The exact key's holder clearly disagrees on the name, exactly one person one edit
    away agrees strongly: one typo explains both, so the lead is that person; the
    evidence keeps the stranger, its name and its score next to the person linked."""
    wilma = lead("WILMA CCOPA", document_number="60708090")
    exact = match.decide_batch([wilma], EXACT_INDEX)[0]
    assert (exact.fail_reason, exact.evidence["person_key"]) == ("name_mismatch", "P-STRANGER")
    decision = decide(wilma)
    assert (decision.outcome, decision.match_rule, decision.person_key) == (
        "matched",
        "document_one_edit",
        "P-WILMA",
    )
    evidence = decision.evidence
    assert evidence["exact_name_mismatch"] == {
        "key_type": "document",
        "person_key": "P-STRANGER",
        "person_name": "Hugo Pari Ylla",
        "name_score": 0.0,
        "name_bits": 0.0,
    }
    assert evidence["document"] == {"value": "DNI:60708090", "person_keys": ["P-STRANGER"]}
    assert (evidence["lead_name"], evidence["person_name"]) == ("WILMA CCOPA", "Wilma Ccopa Huanca")
    assert evidence["name_score"] == decision.match_score == 100.0
    (candidate,) = evidence["near"]["document"]["candidates"]
    assert (candidate["person_key"], candidate["person_value"], candidate["edit"]) == (
        "P-WILMA",
        "DNI:60708091",
        "substitution",
    )
    for stale in ("person_key", "name_rule", "name_threshold"):
        assert stale not in evidence


def test_a_typo_on_a_stranger_stays_a_mismatch_without_a_strong_neighbour() -> None:
    # the name agrees with nobody one edit away: the exact decision stands, the
    # neighbourhood recorded
    decision = decide(lead("Rosa Cusi", document_number="60708090"))
    assert decision.fail_reason == "name_mismatch"
    assert decision.evidence["near"]["document"] == {
        "lead_value": "DNI:60708090",
        "checked": 1,
        "candidates": [],
    }
    # found through another key than the mistyped one: the stranger stays unexplained
    other = decide(lead("Wilma Ccopa Huanca", phone="955123456", document_number="60708092"))
    assert other.fail_reason == "conflict"
    assert other.evidence["conflicting_person_keys"] == ["P-HUGO-PHONE", "P-WILMA"]


def test_near_names_must_agree_strongly() -> None:
    # one word (7 bits without a sample of names): enough for nothing one edit away
    weak = lead("Quispe", document_number="45678913")
    decision = decide(weak)
    assert decision.fail_reason == "no_match"  # none kept: the exact decision stands
    assert decision.evidence["near"]["document"]["checked"] == 1
    assert decision.evidence["near"]["document"]["candidates"] == []
    assert decide(weak, near_min_bits=5).match_rule == "document_one_edit"
    assert decide(lead("Pedro Castillo", phone="987654322")).fail_reason == "no_match"
    # complete but for one letter (98.x): enough unless the threshold asks for 100
    typo = lead("Ana María Qispe Flores", document_number="45678913")
    assert decide(typo).match_rule == "document_one_edit"
    assert decide(typo, near_threshold=100).fail_reason == "no_match"


def test_more_neighbours_need_more_bits() -> None:
    names = match.NameRules()
    assert names.near_bits_needed(1) == names.near_bits_needed(0) == 11.0
    assert names.near_bits_needed(16) == 15.0


def test_two_edits_are_not_near() -> None:
    # DNI:45678129 and DNI:45678912 share the deletion DNI:4567812 but are 2 edits apart
    # (the 9 moved two places); two substitutions, two swaps are 2 edits too
    for number in ("45678129", "45678099", "54678921"):
        decision = decide(lead(document_number=number))
        assert decision.fail_reason == "no_match", number
        assert "near" not in decision.evidence


def test_insertions_and_edit_kinds() -> None:
    longer = edits.insertion_values("document", "CE:1123", country_code=CC, min_length=5)
    # (4 + 1) x 36 insertions, less one per position (a character next to the same one
    # is one value; no 0 in front)
    assert len(longer) == len(set(longer)) == 5 * 35
    assert {"CE:11123", "CE:A1123", "CE:1123Z", "CE:11293"} <= set(longer)
    assert "CE:01123" not in longer and all(len(value) == 8 for value in longer)
    assert edits.insertion_values("document", "CE:1123", country_code=CC) == ()  # too short
    assert set(edits.insertion_values("phone", "51987654321", country_code=CC)) >= {
        "519876543210",
        "511987654321",
    }
    assert edits.insertion_values("phone", "4915112345678", country_code=CC) == ()
    assert edits.insertion_values("email", "a@b.pe", country_code=CC) == ()
    assert edits.edit_kind("12345", "1234") == "insertion"
    assert edits.edit_kind("1234", "12345") == "deletion"
    assert edits.edit_kind("1243", "1234") == "transposition"
    assert edits.edit_kind("1235", "1234") == "substitution"


def test_near_lookups_only_for_unsettled_documents_and_phones() -> None:
    decisions = match.decide_batch(
        [
            lead(document_number="45678912"),  # matched
            lead(document_number="45678913", email="nobody@mail.pe"),  # no_match
            lead(phone="987654321", document_number="70000001"),  # conflict
            lead(),  # missing identifiers
        ],
        EXACT_INDEX,
    )
    assert near_lookups(decisions, country_code=CC) == [("document", "DNI:45678913")]
    lookup = one_edit.NearLookup.of(decisions, country_code=CC)
    assert set(lookup.origins) == {"document"}
    assert "DNI:45678912" in lookup.origins["document"]  # Ana's, one substitution off
    assert "DNI:45678913" not in lookup.origins["document"]


@pytest.mark.parametrize(
    ("key_type", "value"),
    [("document", "DNI:45678913"), ("document", "CE:1123456"), ("phone", "5164235719")],
)
def test_the_values_looked_up_are_exactly_those_one_edit_away(key_type: str, value: str) -> None:
    """Checked against brute force: every string over the value's alphabet, one edit
    (optimal string alignment) off, the same length or one shorter, never starting with
    0 (normalized values never do): the lookup asks for exactly those."""
    prefix, part = edits.editable_split(key_type, value, country_code=CC) or ("", "")
    alphabet = "0123456789"
    same = {part[:at] + char + part[at + 1 :] for at in range(len(part)) for char in alphabet} | {
        part[:at] + part[at + 1] + part[at] + part[at + 2 :] for at in range(len(part) - 1)
    }
    shorter = {part[:at] + part[at + 1 :] for at in range(len(part))}
    expected = {
        prefix + other
        for other in same | shorter
        if OSA.distance(part, other) == 1 and not other.startswith("0")
    }
    found = edits.one_edit_values(key_type, value, country_code=CC)
    assert len(found) == len(set(found))
    assert {edited for edited in found if not edited.split(":")[-1].startswith("0")} == expected
    assert all(OSA.distance(value, edited) == 1 for edited in found)


@pytest.mark.parametrize(
    ("key_type", "value"),
    [("document", "DNI:45678913"), ("document", "PASAPORTE:AB12345"), ("phone", "5164235719")],
)
def test_the_values_one_longer_are_exactly_those_one_insertion_away(
    key_type: str, value: str
) -> None:
    """Checked against brute force: every string one character longer over every character
    a normalized value can hold (documents: A-Z and 0-9, phones: digits), one edit off,
    never starting with 0."""
    prefix, part = edits.editable_split(key_type, value, country_code=CC) or ("", "")
    alphabet = "0123456789" + ("ABCDEFGHIJKLMNOPQRSTUVWXYZ" if key_type == "document" else "")
    longer = {part[:at] + char + part[at:] for at in range(len(part) + 1) for char in alphabet}
    expected = {
        prefix + other
        for other in longer
        if OSA.distance(part, other) == 1 and not other.startswith("0")
    }
    found = edits.insertion_values(key_type, value, country_code=CC)
    assert len(found) == len(set(found))
    assert set(found) == expected


# --- on a real database: the dbt model, the matcher, the demo data ----------------------

# Hand-made persons and leads, document type PTP (the demo uses DNI, CE, PASAPORTE).
# (person_key, full_name, phone, document_number)
PERSONS = [
    ("NP-DOC-SUB", "Teodoro Cusi Mamani", None, "20481357"),
    ("NP-DOC-INS", "Gladys Poma Ccori", None, "31592468"),
    ("NP-DOC-DEL", "Wilber Sonco Ylla", None, "42603579"),
    ("NP-DOC-TRA", "Nilda Huarca Soto", None, "53714680"),
    ("NP-PH-SUB", "Edwin Ccama Luque", "941357246", None),
    ("NP-PH-INS", "Maritza Turpo Anco", "(064) 235-718", None),
    ("NP-PH-DEL", "Percy Chura Vilca", "952468357", None),
    ("NP-PH-TRA", "Yolanda Pari Coaquira", "963574182", None),
    ("NP-TWIN-A", "Rosa Cusi Quispe", None, "30571113"),
    ("NP-TWIN-B", "Rosa Cusi Quispe", None, "30571123"),
    ("NP-EXACT", "Elmer Huarca Soto", None, "50607080"),
    ("NP-NEARBY", "Elmer Huarca Soto", "935791468", None),
    ("NP-STRANGER", "Hugo Pari Ylla", None, "61708090"),
    ("NP-TRUE", "Wilma Ccopa Huanca", None, "61708091"),
    ("NP-FAM-1", "Juana Mamani Colque", "974185263", None),
    ("NP-FAM-2", "Julia Mamani Colque", "974185263", None),
    *[(f"NP-JUNK-{n}", "Hugo Flores Pari", None, "70809010") for n in range(4)],
]
# (lead_id, full_name, phone, document_number, expected rule or fail reason, person_key)
LEADS = [
    ("NEAR-DOC-SUB", "Teodoro Cusi Mamani", None, "20481358", "document_one_edit", "NP-DOC-SUB"),
    ("NEAR-DOC-INS", "GLADYS POMA CCORI", None, "315924618", "document_one_edit", "NP-DOC-INS"),
    ("NEAR-DOC-DEL", "Wilber Sonco Ylla", None, "4260357", "document_one_edit", "NP-DOC-DEL"),
    ("NEAR-DOC-TRA", "Nilda Huarca Soto", None, "53716480", "document_one_edit", "NP-DOC-TRA"),
    ("NEAR-PH-SUB", "Edwin Ccama Luque", "941 357 247", None, "phone_one_edit", "NP-PH-SUB"),
    ("NEAR-PH-INS", "Maritza Turpo Anco", "642357180", None, "phone_one_edit", "NP-PH-INS"),
    ("NEAR-PH-DEL", "Percy Chura Vilca", "95246835", None, "phone_one_edit", "NP-PH-DEL"),
    ("NEAR-PH-TRA", "Yolanda Pari Coaquira", "+51963754182", None, "phone_one_edit", "NP-PH-TRA"),
    ("NEAR-TWINS", "Rosa Cusi Quispe", None, "30571103", "ambiguous", None),
    ("NEAR-EXACT", "Elmer Huarca Soto", "935791469", "50607080", "document+name", "NP-EXACT"),
    # the document typed wrong is a stranger's; the person one edit away is the lead
    ("NEAR-OVERRIDE", "WILMA CCOPA", None, "61708090", "document_one_edit", "NP-TRUE"),
    ("NEAR-SHARED", "Juana Mamani Colque", "974185264", None, "no_match", None),
    ("NEAR-JUNK", "Hugo Flores Pari", None, "70809011", "no_match", None),
]
TYPO_SCENARIOS = ("document_one_edit", "phone_one_edit")


def kpi_red(database: Database, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, [*args, "--json"], env=database.cli_env())
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.fixture(scope="module")
def near_db(make_database: Callable[..., Database]) -> Iterator[Database]:
    """Demo data plus the hand-made cases, built; a dry run without near matching, then
    the real run with it (the near query counted)."""
    from matcher import demo

    database = make_database()
    demo.load(database.conninfo, database.settings, size="demo", seed=42)
    with database.connect() as conn:
        conn.cursor().executemany(
            "insert into canon.identity_registry"
            " (person_key, full_name, phone, document_type, document_number, created_at)"
            " values (%s, %s, %s, 'PTP', %s, now() - interval '60 days')",
            PERSONS,
        )
        conn.cursor().executemany(
            "insert into cabinet.leads"
            " (lead_id, created_at, full_name, phone, document_type, document_number)"
            " values (%s, now() - interval '2 days', %s, %s, 'PTP', %s)",
            [row[:4] for row in LEADS],
        )
    database.dbt("build")
    yield database


@pytest.fixture(scope="module")
def runs(near_db: Database) -> dict[str, Any]:
    calls: list[int] = []
    fetch = store_stream.fetch_near_candidates

    def counted(conn: Any, probes: Any, **options: Any) -> Any:
        calls.append(sum(len(values) for values in probes.values()))
        return fetch(conn, probes, **options)

    without = kpi_red(near_db, "match", "--limit", "0", "--dry-run", "--no-near")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_stream, "fetch_near_candidates", counted)
        with_near = kpi_red(near_db, "match", "--limit", "0", "--batch-size", "500")
    return {"without": without, "with": with_near, "near_queries": calls}


def test_junk_and_shared_values_never_produce_candidates(near_db: Database) -> None:
    """The lookup itself drops junk and shared values, whatever the table holds."""
    filtered = near_db.query(
        """
        select distinct person_keys.key_type, person_keys.key_value
        from kpi_red_interface.person_keys as person_keys
        where person_keys.key_type in ('document', 'phone')
            and (
                exists (
                    select 1 from kpi_red_interface.junk_keys as junk
                    where junk.key_type = person_keys.key_type
                        and junk.key_value = person_keys.key_value
                )
                or exists (
                    select 1 from kpi_red_interface.person_keys as others
                    where others.key_type = person_keys.key_type
                        and others.key_value = person_keys.key_value
                        and others.person_key <> person_keys.person_key
                )
            )
        """
    )
    named = {("phone", "51974185263"), ("document", "PTP:70809010")}  # NP-FAM-*, NP-JUNK-*
    assert named <= set(filtered)
    held = near_db.scalar(
        "select count(*) from kpi_red_interface.person_keys"
        " where (key_type, key_value) in (select * from unnest(%s::text[], %s::text[]))",
        ([row[0] for row in filtered], [row[1] for row in filtered]),
    )
    assert held > len(filtered)  # held by their persons, dropped by the lookup
    with near_db.connect() as conn:
        by_key_type: dict[str, list[str]] = {}
        for key_type, key_value in filtered:
            by_key_type.setdefault(key_type, []).append(key_value)
        returned = store_stream.fetch_near_candidates(conn, by_key_type)
    leaked = {(row[0], row[1]) for row in returned} & set(filtered)
    assert leaked == set()


def test_hand_made_cases(near_db: Database, runs: dict[str, Any]) -> None:
    rows = near_db.query(
        """
        select distinct on (lead_source_pk)
            lead_source_pk, coalesce(match_rule, fail_reason), person_key, evidence
        from kpi_red.match_attempts
        where lead_source_pk like 'NEAR-%%'
        order by lead_source_pk, attempt_id desc
        """
    )
    got = {row[0]: (row[1], row[2]) for row in rows}
    assert got == {row[0]: (row[4], row[5]) for row in LEADS}
    evidence = {row[0]: row[3] for row in rows}
    near = evidence["NEAR-PH-INS"]["near"]["phone"]
    assert (near["lead_value"], near["checked"]) == ("51642357180", 1)
    (candidate,) = near["candidates"]
    assert {key: candidate[key] for key in ("person_key", "person_value", "edit")} == {
        "person_key": "NP-PH-INS",
        "person_value": "5164235718",
        "edit": "insertion",
    }
    override = evidence["NEAR-OVERRIDE"]
    assert override["exact_name_mismatch"]["person_key"] == "NP-STRANGER"
    assert override["near"]["document"]["candidates"][0]["person_key"] == "NP-TRUE"
    for lead_id in ("NEAR-SHARED", "NEAR-JUNK"):
        assert "near" not in evidence[lead_id]


def test_precision_is_total_over_all_leads(near_db: Database, runs: dict[str, Any]) -> None:
    assert near_db.wrong_links() == []


def test_recall_gained_on_planted_typos(near_db: Database, runs: dict[str, Any]) -> None:
    planted, before, after = near_db.query(
        """
        select
            count(*),
            count(*) filter (where links.match_rule not like '%%one_edit'),
            count(links.source_pk)
        from kpi_red_demo.lead_truth as truth
        left join canon.identity_links as links
            on links.source_pk = truth.lead_id and links.linked_by = 'kpi-red'
        where truth.scenario in ('document_one_edit', 'phone_one_edit')
        """
    )[0]
    print(f"planted typo leads: {planted}; linked before: {before}, after: {after}")
    assert planted > 100 and before == 0
    assert after >= planted // 2
    kinds = near_db.query(
        """
        select distinct attempts.match_rule, candidates.value ->> 'edit'
        from kpi_red.match_attempts as attempts
        cross join lateral jsonb_each(attempts.evidence -> 'near') as near (key_type, found)
        cross join lateral jsonb_array_elements(near.found -> 'candidates') as candidates
        where attempts.match_rule like '%%one_edit'
        """
    )
    # the demo plants every edit kind (phones: no insertion, see demo.sql)
    assert set(kinds) >= {
        ("document_one_edit", "substitution"),
        ("document_one_edit", "insertion"),
        ("document_one_edit", "deletion"),
        ("document_one_edit", "transposition"),
        ("phone_one_edit", "substitution"),
        ("phone_one_edit", "deletion"),
        ("phone_one_edit", "transposition"),
    }


def test_near_changes_only_what_the_exact_keys_left(runs: dict[str, Any]) -> None:
    without, with_near = runs["without"], runs["with"]
    assert without["claimed"] == with_near["claimed"]
    near_rules = {"document_one_edit", "phone_one_edit"}
    assert not near_rules & set(without["matched_by_rule"])
    exact_rules = {
        rule: count
        for rule, count in with_near["matched_by_rule"].items()
        if rule not in near_rules
    }
    assert exact_rules == without["matched_by_rule"]
    assert with_near["matched"] - without["matched"] == sum(
        with_near["matched_by_rule"].get(rule, 0) for rule in near_rules
    )


def test_one_near_query_per_batch(runs: dict[str, Any]) -> None:
    assert 0 < len(runs["near_queries"]) <= runs["with"]["batches"]
