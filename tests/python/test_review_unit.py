"""The review queue's pure parts: the CSV a reviewer fills in, and the matcher's decisions
with a reviewer's rejections."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from test_near_match import EDIT_CASES, EXACT_INDEX, near_index

from matcher import match, near, review


def _csv(*rows: str) -> str:
    header = "lead_source_pk,person_key,identifiers_hash,decision,note"
    return "\n".join((header, *rows)) + "\n"


def test_each_bad_row_gets_its_own_line_and_the_good_rows_stay() -> None:
    parsed = review.parse_csv(
        _csv(
            "L1,P1,h1,link,ok",  # line 2: good
            "L2,P2,h2,maybe,",  # line 3: junk decision
            "L3,,h3,reject,",  # line 4: no person
            "L4,P4,h4,,",  # line 5: blank, skipped
            "L5,P5,h5,link,",  # line 6: two links for L5
            "L5,P6,h5,link,",  # line 7
            "L1,P1,h1,link,again",  # line 8: the same decision twice
            "L7,P7,h7,REJECT,",  # line 9: good (case-insensitive)
            "L8,P8,h8,link,",  # line 10: link and reject of the same person
            "L8,P8,h8,reject,",  # line 11
        )
    )
    assert [(d.lead_source_pk, d.decision, d.row) for d in parsed.decisions] == [
        ("L1", "link", 2),
        ("L7", "reject", 9),
    ]
    assert parsed.blank == 1
    lines = dict(parsed.errors)
    assert sorted(lines) == [3, 4, 6, 7, 8, 10, 11]
    assert "maybe" in lines[3]
    assert "person_key" in lines[4]
    assert "two links for one lead" in lines[6] and "two links" in lines[7]
    assert "line 2" in lines[8]
    assert "same person" in lines[10]


def test_a_file_without_the_columns_is_refused_whole() -> None:
    with pytest.raises(ValueError, match="identifiers_hash"):
        review.parse_csv("lead_source_pk,person_key,decision\nL1,P1,link\n")


def test_a_spreadsheet_bom_and_padding_are_accepted() -> None:
    parsed = review.parse_csv("\ufeff" + _csv(" L1 , P1 , h1 , Link , fine "))
    assert parsed.decisions[0].lead_source_pk == "L1"
    assert parsed.decisions[0].decision == "link"
    assert parsed.decisions[0].note == "fine"


def test_candidates_come_from_every_part_of_the_evidence() -> None:
    evidence = {
        "document": {"value": "DNI:1", "person_keys": ["P1"]},
        "phone": {"value": "51900000001", "person_keys": ["P2", "P3"]},
        "conflicting_person_keys": ["P1", "P2", "P3"],
        "near": {"document": {"candidates": [{"person_key": "P4"}]}},
        "rejected": ["P5"],
    }
    assert review.candidate_keys(evidence) == ["P1", "P2", "P3", "P4", "P5"]
    assert review.candidate_keys({"person_key": "P9"}) == ["P9"]
    assert review.candidate_keys(None) == []


def test_a_lead_whose_candidates_are_all_rejected_leaves_the_queue() -> None:
    row = {
        "lead_source_pk": "L1",
        "reason_bucket": "conflict",
        "lead_created_at": datetime(2026, 1, 1, tzinfo=UTC),
        "age_days": 3,
        "identifiers_hash": "h1",
        "full_name": "Ana",
        "document_key": "DNI:1",
        "phone_key": "51900000001",
        "email_key": None,
        "evidence": {"conflicting_person_keys": ["P1", "P2"]},
        "person_key": None,
    }
    persons = {"P1": {"person_key": "P1", "full_name": "Ana", "document_key": "DNI:1"}}
    one = review.queue_leads(
        [row], persons, [{"lead_source_pk": "L1", "person_key": "P2", "identifiers_hash": "h1"}]
    )
    assert [c.person_key for c in one[0].open_candidates] == ["P1"]
    assert one[0].candidates[0].agreeing == ("document",)
    stale = [
        {"lead_source_pk": "L1", "person_key": p, "identifiers_hash": "old"} for p in ("P1", "P2")
    ]
    assert len(review.queue_leads([row], persons, stale)) == 1  # another hash: not rejected
    both = [
        {"lead_source_pk": "L1", "person_key": p, "identifiers_hash": "h1"} for p in ("P1", "P2")
    ]
    assert review.queue_leads([row], persons, both) == []


def _lead(lead: str, **keys: str) -> match.Lead:
    return match.Lead(lead, None, "hash", "Ana Torres Vega", keys)


def test_a_rejected_person_is_no_candidate_of_that_lead_only() -> None:
    index = match.CandidateIndex.from_rows(
        [
            ("document", "DNI:1", "P1", "Ana Torres Vega"),
            ("phone", "51900000001", "P1", "Ana Torres Vega"),
            ("phone", "51900000001", "P2", "Ana Torres Vega"),
        ]
    )
    leads = [
        _lead("L1", document="DNI:1", phone="51900000001"),
        _lead("L2", document="DNI:1", phone="51900000001"),
    ]
    decided = match.decide_batch(leads, index, rejected={"L1": frozenset({"P1"})})
    first, second = decided
    # the phone left to P2 is still a shared phone: it never makes a match alone
    assert first.outcome == "failed" and first.fail_reason == "ambiguous"
    assert first.person_key is None
    assert first.evidence["rejected"] == ["P1"]
    assert "P1" not in first.evidence["document"]["person_keys"]
    assert second.outcome == "matched" and second.person_key == "P1"
    assert "rejected" not in second.evidence


def test_rejecting_one_side_of_a_conflict_leaves_the_other_to_the_rules() -> None:
    index = match.CandidateIndex.from_rows(
        [
            ("document", "DNI:1", "P1", "Ana Torres Vega"),
            ("phone", "51900000001", "P2", "Luis Mamani"),
        ]
    )
    lead = _lead("L1", document="DNI:1", phone="51900000001")
    assert match.decide_batch([lead], index)[0].fail_reason == "conflict"
    (decided,) = match.decide_batch([lead], index, rejected={"L1": frozenset({"P2"})})
    assert decided.outcome == "matched" and decided.person_key == "P1"
    assert decided.match_rule == "document+name"
    assert decided.evidence["rejected"] == ["P2"]


def test_a_rejected_pair_never_links_one_edit_away_either() -> None:
    _key_type, _edit, one, person_key = EDIT_CASES[0]
    exact = match.decide_batch([one], EXACT_INDEX)
    assert near.decide_near(exact, near_index(exact))[0].person_key == person_key
    rejected = {one.lead_source_pk: frozenset({person_key})}
    exact = match.decide_batch([one], EXACT_INDEX, rejected=rejected)
    (decided,) = near.decide_near(exact, near_index(exact), rejected=rejected)
    assert decided.outcome == "failed" and decided.person_key is None
    assert decided.evidence["rejected"] == [person_key]
