"""Bad input never crashes the matcher, never links on junk, and every lead
gets an outcome with a reason.

- hypothesis feeds the matcher's decision path (dbt-equivalent normalization and junk
  filter, as the backlog view gives a lead; ``run.to_lead``, ``match.decide_batch``, the
  one-edit pass, the attempts-log row) batches of leads
  made of arbitrary unicode, control characters, NUL bytes, 10 kB strings, numbers as text
  in every format, the nasty-formats corpus and junk values (blocklisted and shared), against
  a registry where each junk value points at exactly one person whose name the lead may
  carry: a junk key that slipped through would link (dbt's own filter is checked by the
  database half below). (The normalizers' own properties are
  in test_normalize.py; its strategies and corpus are reused here.)
- in the database: leads built from the corpus and junk-only leads go through ``dbt build``
  and ``kpi-red match``; each gets exactly one attempt with an outcome and, if failed, a
  reason; none is linked on a junk value.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime

import pytest
import reliability_support as support
from click.testing import CliRunner
from conftest import PROJECT_DIR, Database
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from match_support import usable_keys
from test_normalize import long_text, nasty_corpus, nasty_text, numbers_as_text

from matcher import edits, match, records, run, write
from matcher import near as one_edit
from matcher.cli import main
from matcher.normalize import NormalizationRules, identifiers_hash
from matcher.settings import load_settings

pytestmark = pytest.mark.reliability

RULES = NormalizationRules.from_vars(load_settings(PROJECT_DIR).vars)
FAIL_REASONS = {
    "missing_identifiers",
    "no_match",
    "conflict",
    "low_confidence",
    "ambiguous",
    "name_mismatch",
}
KEY_TYPES = set(match.KEY_TYPES)

# (person_key, full_name, raw phone, raw document number, raw email) of the registry
PERSONS = [
    ("P-ANA", "Ana María Quispe Flores", "+51 987 654 321", "45678912", "ana.quispe@example.pe"),
    ("P-LUIS", "Luis Ángel Mamani Rojas", "912 000 111", "07654321", "lmamani@example.pe"),
    ("P-ROSA", "ROSA ÑAHUI CÁCERES", "(01) 234-5678", "40404041", "rosa@example.pe"),
]
# values shared by too many registry persons (junk_keys' "shared" rows)
SHARED_JUNK = frozenset({("phone", "5111100000"), ("document", "DNI:40000001")})
# junk as it comes in: the blocklists in raw formats, and the shared values
RAW_JUNK_PHONES = ["999999999", "+51 999 999 999", "51-912-345-678", "123456789", "(01) 1100000"]
RAW_JUNK_DOCUMENTS = ["12345678", "87.654.321", "0040000001", "40-000-001"]
RAW_JUNK_EMAILS = [
    "test@test.com",
    " TEST@TEST.COM\t",
    "no@no.com",
    "a@a.com",
    "noreply@example.com",
]


def registry_rows() -> list[tuple[str, str, str, str | None]]:
    """``(key_type, key_value, person_key, full_name)``: each person's own keys, and every
    junk value pointing at one person alone (as if junk removal had failed)."""
    rows = []
    for person_key, name, phone, document, email in PERSONS:
        for key_type, value in (
            ("phone", RULES.phone(phone)),
            ("document", RULES.document("DNI", document)),
            ("email", RULES.email(email)),
        ):
            assert value is not None
            rows.append((key_type, value, person_key, name))
    junk_values = (
        [("phone", RULES.phone(raw)) for raw in RAW_JUNK_PHONES]
        + [("document", RULES.document("DNI", raw)) for raw in RAW_JUNK_DOCUMENTS]
        + [("email", RULES.email(raw)) for raw in RAW_JUNK_EMAILS]
    )
    junk_keys = [(key_type, value) for key_type, value in junk_values if value is not None]
    assert len(junk_keys) >= 10  # the rest normalize to nothing (placeholders)
    for number, (key_type, value) in enumerate(junk_keys):
        assert is_junk(key_type, value), (key_type, value)
        person_key, name, *_ = PERSONS[number % len(PERSONS)]
        rows.append((key_type, value, person_key, name))
    return rows


def near_registry() -> list[tuple[str, str, str, str | None]]:
    """The persons' own documents and phones, junk left out: what the one-edit lookup
    searches (``person_keys`` and dbt's deletion neighbourhood)."""
    return [
        (key_type, value, person_key, name)
        for key_type, value, person_key, name in registry_rows()
        if key_type in edits.NEAR_KEY_TYPES and not is_junk(key_type, value)
    ]


def is_junk(key_type: str, value: str) -> bool:
    blocklist = {
        "phone": RULES.junk_phones,
        "document": RULES.junk_documents,
        "email": RULES.junk_emails,
    }[key_type]
    return value in blocklist or (key_type, value) in SHARED_JUNK


INDEX = match.CandidateIndex.from_rows(registry_rows())
NEAR_REGISTRY = near_registry()
NEAR_RULES = {rule: key_type for key_type, rule in one_edit.NEAR_RULES.items()}
# one character off the persons' documents and phones: the near pass's input
ONE_EDIT_PHONES = ["+51 987 654 320", "912 000 11", "(01) 234-5687"]
ONE_EDIT_DOCUMENTS = ["45678913", "076543211", "4040041"]
TRIED = {"batches": 0, "leads": 0, "matched": 0, "near_matched": 0}

# --- strategies ------------------------------------------------------------------------

names = st.one_of(st.none(), nasty_text, long_text, st.sampled_from([p[1] for p in PERSONS]))


def raw_values(real: Sequence[str], junk: Sequence[str]) -> st.SearchStrategy[str | None]:
    return st.one_of(
        st.none(),
        nasty_text,
        long_text,
        numbers_as_text,
        st.sampled_from(list(real)),
        st.sampled_from(list(junk)),
    )


phones = raw_values([p[2] for p in PERSONS] + ONE_EDIT_PHONES, RAW_JUNK_PHONES)
documents = raw_values([p[3] for p in PERSONS] + ONE_EDIT_DOCUMENTS, RAW_JUNK_DOCUMENTS)
emails = raw_values([p[4] for p in PERSONS], RAW_JUNK_EMAILS)
document_types = st.one_of(st.none(), st.sampled_from(["DNI", "dni", "C.E.", ""]), nasty_text)


@st.composite
def raw_leads(draw: st.DrawFn, *, junk_only: bool = False) -> dict[str, str | None]:
    if junk_only:
        return {
            "full_name": draw(st.sampled_from([p[1] for p in PERSONS])),
            "phone": draw(st.one_of(st.none(), st.sampled_from(RAW_JUNK_PHONES))),
            "document_type": "DNI",
            "document_number": draw(st.one_of(st.none(), st.sampled_from(RAW_JUNK_DOCUMENTS))),
            "email": draw(st.one_of(st.none(), st.sampled_from(RAW_JUNK_EMAILS))),
        }
    if draw(st.integers(0, 3)) == 0:  # a person's document or phone with a typo
        return {
            "full_name": draw(st.sampled_from([p[1] for p in PERSONS])),
            "phone": draw(st.one_of(st.none(), st.sampled_from(ONE_EDIT_PHONES))),
            "document_type": "DNI",
            "document_number": draw(st.one_of(st.none(), st.sampled_from(ONE_EDIT_DOCUMENTS))),
            "email": draw(st.one_of(st.none(), nasty_text)),
        }
    return {
        "full_name": draw(names),
        "phone": draw(phones),
        "document_type": draw(document_types),
        "document_number": draw(documents),
        "email": draw(emails),
    }


def backlog_row(number: int, raw: dict[str, str | None]) -> records.BacklogLead:
    """The lead as the backlog view gives it: dbt's keys (the same normalization), from
    text PostgreSQL can hold (no NUL, as in ``database_leads``)."""
    raw = {name: None if value is None else value.replace("\0", "") for name, value in raw.items()}
    keys = usable_keys(
        phone=raw["phone"],
        document_type=raw["document_type"],
        document_number=raw["document_number"],
        email=raw["email"],
        rules=RULES,
        junk=SHARED_JUNK,
    )
    return records.BacklogLead(
        lead_source_pk=f"L{number:06d}",
        created_at=datetime(2025, 1, 1, tzinfo=UTC),
        identifiers_hash=identifiers_hash(**raw),
        full_name=raw["full_name"],
        phone_key=keys.get("phone"),
        document_key=keys.get("document"),
        email_key=keys.get("email"),
        last_attempt_id=0,
    )


def decide(raws: list[dict[str, str | None]]) -> list[records.Decision]:
    leads = [run.to_lead(backlog_row(number, raw)) for number, raw in enumerate(raws)]
    # the exact pass, then the near pass, as run.decided_batches does
    decisions = match.decide_batch(leads, INDEX)
    lookup = one_edit.NearLookup.of(decisions, country_code=RULES.country_code)
    near = one_edit.NearIndex.from_registry(NEAR_REGISTRY, lookup)
    decisions = one_edit.decide_near(decisions, near)
    TRIED["batches"] += 1
    TRIED["leads"] += len(raws)
    TRIED["matched"] += sum(decision.is_matched for decision in decisions)
    TRIED["near_matched"] += sum(decision.match_rule in NEAR_RULES for decision in decisions)
    assert [decision.lead for decision in decisions] == leads
    for decision in decisions:
        check_decision(decision)
    return decisions


def check_decision(decision: records.Decision) -> None:
    lead = decision.lead
    assert not [key for key in lead.keys.items() if is_junk(*key)], "a junk key reached a lead"
    if decision.is_matched:
        assert decision.fail_reason is None and decision.person_key
        assert decision.match_score is not None and 0 <= decision.match_score <= 100
        if decision.match_rule in NEAR_RULES:  # one edit from a person's own, non-junk value
            key_type = NEAR_RULES[decision.match_rule]
            near = decision.evidence["near"][key_type]
            assert near["lead_value"] == lead.keys[key_type]
            values = [
                candidate["person_value"]
                for candidate in near["candidates"]
                if candidate["person_key"] == decision.person_key
            ]
            assert values and not [value for value in values if is_junk(key_type, value)]
            return
        rule_keys = set(str(decision.match_rule).split("+")) - {"name"}
        assert rule_keys and rule_keys <= KEY_TYPES, decision.match_rule
        for key_type in rule_keys:  # every key the link rests on is the lead's, not junk
            assert decision.person_key in INDEX.lookup(key_type, lead.keys[key_type])
    else:
        assert decision.outcome == "failed" and decision.fail_reason in FAIL_REASONS
    # what the attempts log gets: valid JSON that PostgreSQL's jsonb accepts
    row = write.staged_decision(decision)
    assert "\\u0000" not in row.evidence
    json.loads(row.evidence)


PROPERTY = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module", autouse=True)
def report_inputs() -> Iterator[None]:
    yield
    print(
        f"\nbad input: {TRIED['leads']} leads in {TRIED['batches']} batches decided,"
        f" {TRIED['matched']} matched on real keys ({TRIED['near_matched']} one edit away),"
        " none on junk"
    )


@PROPERTY
@given(raws=st.lists(raw_leads(), min_size=1, max_size=12))
def test_any_batch_of_leads_gets_an_outcome_each_and_no_link_on_junk(
    raws: list[dict[str, str | None]],
) -> None:
    decide(raws)


@settings(PROPERTY, max_examples=150)
@given(raws=st.lists(raw_leads(junk_only=True), min_size=1, max_size=12))
def test_junk_only_leads_fail_as_missing_identifiers(raws: list[dict[str, str | None]]) -> None:
    for decision in decide(raws):
        assert (decision.outcome, decision.fail_reason) == ("failed", "missing_identifiers")


def test_the_real_keys_do_link() -> None:
    """The property above is not vacuous: the registry's own values link."""
    raws = [
        {
            "full_name": name,
            "phone": phone,
            "document_type": "DNI",
            "document_number": document,
            "email": email,
        }
        for _, name, phone, document, email in PERSONS
    ]
    decisions = decide(raws)
    assert [decision.person_key for decision in decisions] == [p[0] for p in PERSONS]


# --- in the database ----------------------------------------------------------------------


def database_leads(database: Database) -> dict[str, dict[str, str | None]]:
    """Leads from the nasty corpus (NUL stripped: PostgreSQL text cannot hold it), 10 kB
    values, and junk-only leads carrying the name of the one person the junk value
    points at."""
    corpus = [line.replace("\0", "") for line in nasty_corpus()]
    real_names = [p[1] for p in PERSONS]
    leads: dict[str, dict[str, str | None]] = {}
    for number, line in enumerate(corpus):
        leads[f"NASTY-A-{number:04d}"] = dict.fromkeys(
            ("full_name", "phone", "document_type", "document_number", "email"), line
        )
        leads[f"NASTY-B-{number:04d}"] = {
            "full_name": real_names[number % len(real_names)],
            "phone": line,
            "document_type": corpus[(number + 7) % len(corpus)],
            "document_number": corpus[(number + 1) % len(corpus)],
            "email": corpus[(number + 2) % len(corpus)],
        }
    for number, chunk in enumerate(["9", "+51 987 654 321 ", "ñ\u202e", "test@test.com"]):
        leads[f"NASTY-LONG-{number}"] = dict.fromkeys(
            ("full_name", "phone", "document_type", "document_number", "email"),
            (chunk * 10_240)[:10_240],
        )
    # the demo registry's shared junk values, each with the name of a person holding it
    shared = database.query(
        """
        select distinct on (junk.key_type, junk.key_value)
            junk.key_type, junk.key_value, persons.full_name
        from kpi_red_interface.junk_keys as junk
        inner join kpi_red_staging.stg_canon__persons as persons
            on (junk.key_type = 'phone' and persons.phone_key = junk.key_value)
            or (junk.key_type = 'document' and persons.document_key = junk.key_value)
            or (junk.key_type = 'email' and persons.email_key = junk.key_value)
        order by junk.key_type, junk.key_value, persons.person_key
        """
    )
    assert shared, "the demo registry has junk values held by persons"
    for number, (key_type, key_value, full_name) in enumerate(shared):
        raw: dict[str, str | None] = dict.fromkeys(
            ("phone", "document_type", "document_number", "email")
        )
        raw["full_name"] = full_name
        if key_type == "phone":
            raw["phone"] = "+" + key_value
        elif key_type == "document":
            raw["document_type"], raw["document_number"] = key_value.split(":", 1)
        else:
            raw["email"] = key_value.upper()
        leads[f"JUNK-SHARED-{number:03d}"] = raw
        if key_type in edits.NEAR_KEY_TYPES:  # one edit off it, the holder's name again
            near = dict(raw)
            if key_type == "phone":
                near["phone"] = "+" + key_value[:-1] + str((int(key_value[-1]) + 1) % 10)
            else:
                near["document_number"] = str(near["document_number"]) + "7"
            leads[f"JUNK-NEAR-{number:03d}"] = near
    # the blocklists (SHARED_JUNK above is made up for the properties: not the demo's)
    documents = [
        raw
        for raw in [*RAW_JUNK_DOCUMENTS, "0", "-"]
        if RULES.document("DNI", raw) in {None, *RULES.junk_documents}
    ]
    for number, (phone, document, email) in enumerate(
        zip(RAW_JUNK_PHONES, documents, RAW_JUNK_EMAILS, strict=False)
    ):
        leads[f"JUNK-BLOCKLIST-{number:03d}"] = {
            "full_name": real_names[number % len(real_names)],
            "phone": phone,
            "document_type": "DNI",
            "document_number": document,
            "email": email,
        }
    return leads


def test_nasty_and_junk_leads_in_the_database_get_an_outcome_and_no_junk_link(
    make_database: Callable[..., Database],
) -> None:
    with support.cloned(support.golden(make_database)) as database:
        leads = database_leads(database)
        with database.connect() as conn, conn.cursor() as cursor:
            cursor.executemany(
                """
                insert into cabinet.leads (
                    lead_id, created_at, full_name, phone, document_type, document_number,
                    email
                )
                values (%s, now() - interval '1 hour', %s, %s, %s, %s, %s)
                """,
                [
                    (
                        lead_id,
                        raw["full_name"],
                        raw["phone"],
                        raw["document_type"],
                        raw["document_number"],
                        raw["email"],
                    )
                    for lead_id, raw in leads.items()
                ],
            )
        database.dbt(
            "build", "--select", "stg_cabinet__leads+", "--exclude-resource-type", "unit_test"
        )
        result = CliRunner().invoke(
            main, ["match", "--limit", "0", "--json"], env=database.cli_env()
        )
        assert result.exit_code == 0, result.output

        attempts = database.query(
            """
            select lead_source_pk, outcome, fail_reason, match_rule, evidence
            from kpi_red.match_attempts
            where lead_source_pk = any(%s)
            """,
            (list(leads),),
        )
        assert sorted(row[0] for row in attempts) == sorted(leads)  # one each, none missing
        junk = {
            tuple(row)
            for row in database.query("select key_type, key_value from kpi_red_interface.junk_keys")
        }
        linked = 0
        for lead_id, outcome, fail_reason, match_rule, evidence in attempts:
            if outcome == "failed":
                assert fail_reason in FAIL_REASONS, (lead_id, fail_reason)
            else:
                linked += 1
                assert fail_reason is None
                if match_rule in NEAR_RULES:
                    key_type = NEAR_RULES[match_rule]
                    near = evidence["near"][key_type]
                    values = [near["lead_value"]] + [
                        candidate["person_value"] for candidate in near["candidates"]
                    ]
                    assert not [value for value in values if (key_type, value) in junk], lead_id
                    continue
                for key_type in set(match_rule.split("+")) - {"name"}:
                    assert (key_type, evidence[key_type]["value"]) not in junk, lead_id
            if lead_id.startswith("JUNK-NEAR-"):  # valid keys, one edit from a junk value
                assert outcome == "failed", lead_id
            elif lead_id.startswith("JUNK-"):
                assert (outcome, fail_reason) == ("failed", "missing_identifiers"), lead_id
        assert not database.scalar(
            "select count(*) from canon.identity_links where source_pk like 'JUNK-%%'"
            " or (source_pk like 'NASTY-%%' and linked_by <> 'kpi-red')"
        )
        assert support.integrity_problems(database) == {}
        print(f"\nbad input in the database: {len(leads)} leads, {linked} linked on real keys")
