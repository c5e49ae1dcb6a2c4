"""The matcher's decision table: every rule and fail reason, pure (no database)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from match_support import drop_junk, usable_keys

from matcher import match, records
from matcher.normalize import NormalizationRules

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
) -> records.Lead:
    return records.Lead(
        lead_source_pk="L-1",
        created_at=CREATED,
        identifiers_hash="hash",
        full_name=full_name,
        keys=usable_keys(
            phone=phone,
            document_type=document_type,
            document_number=document_number,
            email=email,
            rules=RULES,
            junk=junk,
        ),
    )


def decide(one: records.Lead, **rules: float) -> records.Decision:
    (decision,) = match.decide_batch([one], INDEX, rules=match.NameRules(**rules))
    return decision


# (case, lead, outcome, fail_reason, match_rule, person_key)
TABLE = [
    (
        "document alone, names agree",
        lead(document_number="45678912"),
        "matched",
        None,
        "document+name",
        "P-ANA",
    ),
    (
        "document, messy: dots, dash, zeros, lower-case type",
        lead(document_type=" dni ", document_number="0045.678-912"),
        "matched",
        None,
        "document+name",
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
        "name_mismatch",
        None,
        None,
    ),
    (
        "document alone, names differ: the holder is a stranger",
        lead("Pedro Castillo", document_number="45678912"),
        "failed",
        "name_mismatch",
        None,
        None,
    ),
    (
        "document alone, a common surname shared, the given name differs",
        lead("Rosa Quispe", document_number="45678912"),
        "failed",
        "name_mismatch",
        None,
        None,
    ),
    (
        "document alone, lead has no name",
        lead(None, document_number="45678912"),
        "failed",
        "low_confidence",
        None,
        None,
    ),
    (
        "document alone, only a surname: agrees, but too little",
        lead("QUISPE", document_number="45678912"),
        "failed",
        "low_confidence",
        None,
        None,
    ),
    (
        "document + phone agree: two keys link whatever the names",
        lead("Pedro Castillo", document_number="45678912", phone="987654321"),
        "matched",
        None,
        "document+phone",
        "P-ANA",
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
        "junk from junk_keys is absent",
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
        "document+name",
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
        "document+name",
        "P-ANA",
    ),
]


@pytest.mark.parametrize(
    ("one", "outcome", "fail_reason", "match_rule", "person_key"),
    [case[1:] for case in TABLE],
    ids=[case[0] for case in TABLE],
)
def test_decision_table(
    one: records.Lead,
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
        "document+name",
        "document+phone",
        "document+email",
        "document+phone+email",
        "phone+email",
        "phone+name",
        "email+name",
    }
    assert reasons == {
        "missing_identifiers",
        "no_match",
        "conflict",
        "low_confidence",
        "ambiguous",
        "name_mismatch",
    }


def test_evidence_names_keys_and_persons() -> None:
    conflict = decide(lead(document_number="70000001", phone="987654321"))
    assert conflict.evidence["document"] == {"value": "DNI:70000001", "person_keys": ["P-LUIS"]}
    assert conflict.evidence["phone"] == {"value": "51987654321", "person_keys": ["P-ANA"]}
    assert conflict.evidence["conflicting_person_keys"] == ["P-ANA", "P-LUIS"]

    ambiguous = decide(lead("Rosa Huaman", phone="955000222"))
    assert ambiguous.evidence["candidate_person_keys"] == ["P-CARLA", "P-JOSE", "P-ROSA"]


def test_name_score_is_recorded_for_every_match() -> None:
    two_keys = decide(lead("Pedro Castillo", document_number="45678912", phone="987654321"))
    assert two_keys.is_matched and two_keys.match_score == 100.0
    assert two_keys.evidence["name_score"] == 0.0

    guarded = decide(lead("Quispe Flores Ana María", phone="987654321"))
    assert guarded.match_score == guarded.evidence["name_score"] == 100.0
    assert guarded.evidence["name_bits"] >= 8

    shortened = decide(lead("ANA QUISPE", document_number="45678912"))
    assert (shortened.match_rule, shortened.match_score) == ("document+name", 100.0)


def test_a_name_mismatch_shows_both_names_the_score_and_the_threshold() -> None:
    mismatch = decide(lead("Luke Mahony", document_number="45678912"))
    assert (mismatch.outcome, mismatch.fail_reason, mismatch.person_key) == (
        "failed",
        "name_mismatch",
        None,
    )
    evidence = mismatch.evidence
    assert evidence["lead_name"] == "Luke Mahony"
    assert evidence["person_name"] == "Ana María Quispe Flores"
    assert evidence["name_score"] == mismatch.match_score == 0.0
    assert evidence["name_threshold"] == 85.0 and evidence["name_mismatch_threshold"] == 50.0
    assert evidence["person_key"] == "P-ANA" and evidence["name_rule"] == "document+name"
    assert evidence["document"] == {"value": "DNI:45678912", "person_keys": ["P-ANA"]}


def test_no_name_on_either_side_never_links_a_single_key() -> None:
    nameless = decide(lead("  ", document_number="45678912"))
    assert nameless.fail_reason == "low_confidence"
    assert nameless.evidence["name_missing"] == ["lead"]
    index = match.CandidateIndex.from_rows([("document", "DNI:45678912", "P-NONAME", None)])
    (decision,) = match.decide_batch([lead(document_number="45678912")], index)
    assert decision.fail_reason == "low_confidence"
    assert decision.evidence["name_missing"] == ["person"]


def test_thresholds_are_configurable() -> None:
    weak = lead("Quispe", phone="987654321")
    assert decide(weak).fail_reason == "low_confidence"
    lowered = decide(weak, min_bits=5)
    assert lowered.match_rule == "phone+name" and lowered.person_key == "P-ANA"
    stranger = lead("Rosa Quispe", phone="987654321")
    assert decide(stranger).fail_reason == "name_mismatch"
    assert decide(stranger, mismatch_threshold=0).fail_reason == "low_confidence"
    assert decide(stranger, threshold=0, min_bits=0).match_rule == "phone+name"


def test_a_batch_keeps_input_order() -> None:
    leads = [
        lead(document_number="45678912"),
        lead("Pedro Castillo", phone="987654321"),
        lead(),
        lead("luis alberto mamani", email="luis@mail.pe"),
    ]
    decisions = match.decide_batch(leads, INDEX)
    assert [d.lead for d in decisions] == leads
    assert [d.fail_reason or d.match_rule for d in decisions] == [
        "document+name",
        "name_mismatch",
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


def test_drop_junk_on_dbt_keys() -> None:
    keys = {"document": "DNI:12345678", "phone": "51987654321", "email": None}
    assert drop_junk(keys, rules=RULES) == {"phone": "51987654321"}
    junk = frozenset({("phone", "51987654321")})
    assert drop_junk(keys, rules=RULES, junk=junk) == {}
