"""The matcher's decision table: every rule and fail reason, pure (no database)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from matcher import match
from matcher.normalize import NormalizationRules, normalize_name

RULES = NormalizationRules.from_vars(
    {
        "junk_phones": ["51999999999"],
        "junk_documents": ["DNI:12345678"],
        "junk_emails": ["test@test.com"],
    }
)
CREATED = datetime(2024, 5, 1, tzinfo=UTC)

# The registry of this table: (key_type, key_value, person_key, full_name)
REGISTRY = [
    ("document", "DNI:45678912", "P-ANA", "Ana María Quispe Flores"),
    ("phone", "51987654321", "P-ANA", "Ana María Quispe Flores"),
    ("email", "ana.quispe@mail.pe", "P-ANA", "Ana María Quispe Flores"),
    ("document", "DNI:70000001", "P-LUIS", "Luis Alberto Mamani"),
    ("phone", "51912000111", "P-LUIS", "Luis Alberto Mamani"),
    ("email", "luis@mail.pe", "P-LUIS", "Luis Alberto Mamani"),
    # a family phone: two persons share it
    ("phone", "51955000222", "P-ROSA", "Rosa Huaman"),
    ("phone", "51955000222", "P-JOSE", "José Huaman"),
    ("email", "rosa@mail.pe", "P-ROSA", "Rosa Huaman"),
    ("email", "jose@mail.pe", "P-JOSE", "José Huaman"),
    # a family email shared by Rosa and a third person, with Rosa's phone set above
    ("email", "familia@mail.pe", "P-ROSA", "Rosa Huaman"),
    ("email", "familia@mail.pe", "P-CARLA", "Carla Huaman"),
    ("phone", "51955000222", "P-CARLA", "Carla Huaman"),
]
INDEX = match.CandidateIndex.from_rows(REGISTRY)


def lead(
    full_name: str | None = "Ana Maria Quispe Flores",
    *,
    phone: str | None = None,
    document_type: str | None = None,
    document_number: str | None = None,
    email: str | None = None,
    junk: frozenset[tuple[str, str]] = frozenset(),
) -> match.Lead:
    return match.Lead(
        lead_source_pk="L-1",
        created_at=CREATED,
        identifiers_hash="hash",
        full_name=full_name,
        keys=match.usable_keys(
            phone=phone,
            document_type=document_type,
            document_number=document_number,
            email=email,
            rules=RULES,
            junk=junk,
        ),
    )


def decide(one: match.Lead, *, threshold: float = 85) -> match.Decision:
    (decision,) = match.decide_batch([one], INDEX, name_threshold=threshold)
    return decision


# (case, lead, outcome, fail_reason, match_rule, person_key)
TABLE = [
    ("document alone", lead(document_number="45678912"), "matched", None, "document", "P-ANA"),
    (
        "document, messy: dots, dash, zeros, lower-case type",
        lead(document_type=" dni ", document_number="0045.678-912"),
        "matched",
        None,
        "document",
        "P-ANA",
    ),
    (
        "document + phone, phone as +51 987 654 321",
        lead(document_number="45678912", phone="+51 987 654 321"),
        "matched",
        None,
        "document+phone",
        "P-ANA",
    ),
    (
        "document + email, email with capitals and spaces",
        lead(document_number="45678912", email="  Ana.Quispe@MAIL.pe "),
        "matched",
        None,
        "document+email",
        "P-ANA",
    ),
    (
        "all three keys, phone as 0051...",
        lead(document_number="45678912", phone="0051987654321", email="ana.quispe@mail.pe"),
        "matched",
        None,
        "document+phone+email",
        "P-ANA",
    ),
    (
        "phone + email agree, the name does not matter",
        lead("Someone Else", phone="51-987-654-321", email="ana.quispe@mail.pe"),
        "matched",
        None,
        "phone+email",
        "P-ANA",
    ),
    (
        "lone phone, names agree (accents, order)",
        lead("Quispe Flores Ana María", phone="987654321"),
        "matched",
        None,
        "phone+name",
        "P-ANA",
    ),
    (
        "lone email, names agree",
        lead("luis alberto mamani", email="LUIS@mail.pe"),
        "matched",
        None,
        "email+name",
        "P-LUIS",
    ),
    (
        "lone phone, names differ",
        lead("Pedro Castillo", phone="987654321"),
        "failed",
        "low_confidence",
        None,
        None,
    ),
    (
        "lone email, lead has no name",
        lead(None, email="luis@mail.pe"),
        "failed",
        "low_confidence",
        None,
        None,
    ),
    ("nothing usable", lead(), "failed", "missing_identifiers", None, None),
    (
        "only malformed values",
        lead(phone="12", email="not-an-email", document_number="...."),
        "failed",
        "missing_identifiers",
        None,
        None,
    ),
    (
        "only blocklisted junk (normalized first)",
        lead(phone="999 999 999", document_number="12.345.678", email=" TEST@test.com"),
        "failed",
        "missing_identifiers",
        None,
        None,
    ),
    (
        "a placeholder phone is absent",
        lead(phone="000000000"),
        "failed",
        "missing_identifiers",
        None,
        None,
    ),
    (
        "junk from int_junk_identifiers is absent",
        lead(phone="987654321", junk=frozenset({("phone", "51987654321")})),
        "failed",
        "missing_identifiers",
        None,
        None,
    ),
    (
        "junk key left out, the document still links",
        lead(document_number="45678912", phone="999999999"),
        "matched",
        None,
        "document",
        "P-ANA",
    ),
    ("keys found nowhere", lead(document_number="99887766"), "failed", "no_match", None, None),
    (
        "phone to one person, document to another",
        lead(document_number="70000001", phone="987654321"),
        "failed",
        "conflict",
        None,
        None,
    ),
    (
        "email to one person, phone to another",
        lead(phone="912000111", email="ana.quispe@mail.pe"),
        "failed",
        "conflict",
        None,
        None,
    ),
    (
        "a shared phone alone is ambiguous",
        lead("Rosa Huaman", phone="955000222"),
        "failed",
        "ambiguous",
        None,
        None,
    ),
    (
        "shared phone + own email: the email decides, with the name",
        lead("Rosa Huaman", phone="955000222", email="rosa@mail.pe"),
        "matched",
        None,
        "email+name",
        "P-ROSA",
    ),
    (
        "two shared keys narrowing to one person still make no rule",
        lead("Rosa Huaman", phone="955000222", email="familia@mail.pe"),
        "failed",
        "ambiguous",
        None,
        None,
    ),
    (
        "a key found nowhere next to a document is no conflict",
        lead(document_number="45678912", phone="911222333"),
        "matched",
        None,
        "document",
        "P-ANA",
    ),
]


@pytest.mark.parametrize(
    ("one", "outcome", "fail_reason", "match_rule", "person_key"),
    [case[1:] for case in TABLE],
    ids=[case[0] for case in TABLE],
)
def test_decision_table(
    one: match.Lead,
    outcome: str,
    fail_reason: str | None,
    match_rule: str | None,
    person_key: str | None,
) -> None:
    decision = decide(one)
    assert (decision.outcome, decision.fail_reason, decision.match_rule, decision.person_key) == (
        outcome,
        fail_reason,
        match_rule,
        person_key,
    )
    assert decision.is_matched == (fail_reason is None)


def test_every_rule_and_fail_reason_is_in_the_table() -> None:
    rules = {case[4] for case in TABLE if case[4]}
    reasons = {case[3] for case in TABLE if case[3]}
    assert rules >= {
        "document",
        "document+phone",
        "document+email",
        "document+phone+email",
        "phone+email",
        "phone+name",
        "email+name",
    }
    assert reasons == {"missing_identifiers", "no_match", "conflict", "low_confidence", "ambiguous"}


def test_evidence_names_keys_and_persons() -> None:
    conflict = decide(lead(document_number="70000001", phone="987654321"))
    assert conflict.evidence["document"] == {"value": "DNI:70000001", "person_keys": ["P-LUIS"]}
    assert conflict.evidence["phone"] == {"value": "51987654321", "person_keys": ["P-ANA"]}
    assert conflict.evidence["conflicting_person_keys"] == ["P-ANA", "P-LUIS"]

    ambiguous = decide(lead("Rosa Huaman", phone="955000222"))
    assert ambiguous.evidence["candidate_person_keys"] == ["P-CARLA", "P-JOSE", "P-ROSA"]


def test_name_score_is_recorded_for_every_match() -> None:
    strong = decide(lead("Pedro Castillo", document_number="45678912"))
    assert strong.is_matched and strong.match_score == 100.0
    assert strong.evidence["name_score"] < 50

    guarded = decide(lead("Quispe Flores Ana María", phone="987654321"))
    assert guarded.match_score == guarded.evidence["name_score"] == 100.0

    weak = decide(lead("Ana Quispe", phone="987654321"))
    assert weak.fail_reason == "low_confidence"
    assert 0 < weak.match_score < 85
    assert weak.evidence["person_key"] == "P-ANA"


def test_threshold_is_configurable() -> None:
    one = lead("Ana Quispe", phone="987654321")
    assert decide(one, threshold=85).fail_reason == "low_confidence"
    lowered = decide(one, threshold=50)
    assert lowered.match_rule == "phone+name" and lowered.person_key == "P-ANA"


def test_a_batch_keeps_input_order_and_scores_names_at_once() -> None:
    leads = [
        lead(document_number="45678912"),
        lead("Pedro Castillo", phone="987654321"),
        lead(),
        lead("luis alberto mamani", email="luis@mail.pe"),
    ]
    decisions = match.decide_batch(leads, INDEX)
    assert [d.lead for d in decisions] == leads
    assert [d.fail_reason or d.match_rule for d in decisions] == [
        "document",
        "low_confidence",
        "missing_identifiers",
        "email+name",
    ]


def test_an_existing_link_elsewhere_turns_a_match_into_a_conflict() -> None:
    matched = decide(lead(document_number="45678912"))
    conflict = match.conflict_with_existing_link(matched, "P-OTHER")
    assert (conflict.outcome, conflict.fail_reason, conflict.person_key) == (
        "failed",
        "conflict",
        None,
    )
    assert conflict.evidence["already_linked_elsewhere"] == "P-OTHER"
    assert conflict.evidence["decided_person_key"] == "P-ANA"


def test_name_scores_handle_absent_names() -> None:
    assert match.name_scores([]) == []
    assert match.name_scores([("ana", None), (None, "ana"), ("ana", "ana")]) == [0.0, 0.0, 100.0]


@given(st.text(max_size=60))
def test_cached_name_normalizer_equals_normalize_name(raw: str) -> None:
    assert match.normalize_name_cached(raw) == normalize_name(raw)


def test_drop_junk_on_dbt_keys() -> None:
    keys = {"document": "DNI:12345678", "phone": "51987654321", "email": None}
    assert match.drop_junk(keys, rules=RULES) == {"phone": "51987654321"}
    junk = frozenset({("phone", "51987654321")})
    assert match.drop_junk(keys, rules=RULES, junk=junk) == {}
