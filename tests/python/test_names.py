"""Person names compared as forms write them (matcher/names.py): pure, no database."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from matcher import names
from matcher.normalize import normalize_name

# Word frequencies as in Peru (share of persons whose name has the word): the common
# words of the examples below, and a registry of 100,000 persons for everything else.
PERSONS = 100_000
SHARES = {
    "juan": 0.030,
    "jose": 0.025,
    "maria": 0.040,
    "carlos": 0.020,
    "rosa": 0.015,
    "luis": 0.018,
    "ana": 0.012,
    "quispe": 0.035,
    "mamani": 0.012,
    "flores": 0.015,
    "perez": 0.009,
    "garcia": 0.010,
    "huaman": 0.009,
    "rojas": 0.010,
    "sanchez": 0.012,
}
WEIGHTS = names.TokenWeights(
    {word: round(share * PERSONS) for word, share in SHARES.items()}, persons=PERSONS
)


def score(left: str | None, right: str | None) -> names.NameScore:
    return names.compare_raw(left, right, WEIGHTS)


REGISTERED = "Juan Carlos Quispe Mamani"
# how real forms write a registered person's name: every one agrees completely
VARIANTS = [
    ("the issue's example", "JUAN CARLOS PÉREZ GARCÍA", "Juan Perez"),
    ("exact", REGISTERED, REGISTERED),
    ("capitals and double spaces", REGISTERED, "  JUAN  CARLOS QUISPE   MAMANI "),
    ("surnames first, with a comma", REGISTERED, "QUISPE MAMANI, JUAN CARLOS"),
    ("second surname missing", REGISTERED, "Juan Carlos Quispe"),
    ("middle name dropped", REGISTERED, "Juan Quispe Mamani"),
    ("goes by the middle name", REGISTERED, "Carlos Quispe"),
    ("middle name as an initial", REGISTERED, "Juan C. Quispe Mamani"),
    ("first name as an initial", REGISTERED, "J. Carlos Quispe"),
    ("an initial the registry lacks", "Juan Quispe Mamani", "Juan C Quispe"),
    ("accents dropped", "José María Huamán Peña", "Jose Maria Huaman Pena"),
    ("a nickname", "José Luis Rojas Sánchez", "Pepe Rojas"),
    ("another nickname", "Luis Alberto Flores", "Lucho Flores"),
    ("a spelling variant", "John Huamán Rojas", "Jhon Huaman"),
    ("both sides nicknames of one name", "Pepe Rojas", "Chepe Rojas"),
    ("particles", "María de la Cruz Soto", "Maria Cruz"),
    ("apostrophes", "Ana O'Neil", "ANA ONEIL"),
]


@pytest.mark.parametrize(
    ("registered", "written"), [case[1:] for case in VARIANTS], ids=[case[0] for case in VARIANTS]
)
def test_the_ways_forms_write_a_name_agree_completely(registered: str, written: str) -> None:
    found = score(written, registered)
    assert found.score == 100.0, found
    assert found.shares_word
    assert score(registered, written) == found  # either side


def test_typos_and_shortened_names_agree_almost_completely() -> None:
    typo = score("Juan Carlos Qispe Mamani", REGISTERED)  # a dropped letter
    assert 95 <= typo.score < 100
    swapped = score("Juan Carlos Quispe Mamnai", REGISTERED)
    assert 95 <= swapped.score < 100
    early = score("TJERINA ALEJANDRO", "Alejandro Tijerina")  # Jaro-Winkler: 0.877
    assert 90 <= early.score < 100
    shortened = score("Fran Rojas", "Francisco Rojas Peña")
    assert 85 <= shortened.score < 100


STRANGERS = [
    ("the issue's example", "James Hefford", "Luke Mahony"),
    ("nothing in common", REGISTERED, "Rosa Flores Huanca"),
    ("a common surname, another given name", REGISTERED, "Rosa Quispe"),
    ("given name and surname shared, the second surname differs", REGISTERED, "Juan Quispe Flores"),
    ("the middle name differs", REGISTERED, "Juan Pedro Quispe"),
    ("first names swapped for another", "Ana Rojas Sánchez", "Luis Rojas Sánchez"),
]


@pytest.mark.parametrize(
    ("registered", "written"), [case[1:] for case in STRANGERS], ids=[case[0] for case in STRANGERS]
)
def test_strangers_clearly_disagree(registered: str, written: str) -> None:
    found = score(written, registered)
    assert found.score < 50, found


# found at `large` (2M persons): a relative sharing the phone or email, one letter apart
FAMILY = [
    ("masculine and feminine", "María Sánchez Betancur", "Mario Sánchez"),
    ("feminine with an added a", "Daniela Quispe Mamani", "Daniel Quispe"),
    ("two given names many persons have", "Mario Villalpando Juárez", "Marina Villalpando"),
]


@pytest.mark.parametrize(
    ("registered", "written"), [case[1:] for case in FAMILY], ids=[case[0] for case in FAMILY]
)
def test_relatives_one_letter_apart_disagree(registered: str, written: str) -> None:
    sample = ["Mario Rojas", "María Flores", "Marina Soto", "Daniel Paz", "Daniela Paz"] * 400
    weights = names.TokenWeights.from_names(sample + ["Ana Quispe Villalpando Sánchez"] * 10)
    found = names.compare_raw(written, registered, weights)
    # far below what corroborates a key (85); only the shared surname agrees
    assert found.score < 60, found
    assert found.bits == pytest.approx(weights.bits(names.folded_words(written)[-1]), abs=0.05)


def test_a_typo_of_a_common_name_still_agrees() -> None:
    sample = ["Mario Rojas", "María Flores"] * 1000
    weights = names.TokenWeights.from_names(sample)
    assert weights.is_common("mario") and not weights.is_common("mraio")
    assert names.compare_raw("Mraio Rojas", "Mario Rojas", weights).score > 90
    # without a sample no word is common: only the gendered forms disagree
    assert not names.DEFAULT_WEIGHTS.is_common("mario")
    assert score("Marina Rojas", "Mario Rojas").score > 90
    assert score("Maria Rojas", "Mario Rojas").score < 50


def test_conflicts_cost_more_than_omissions() -> None:
    omitted = score("Juan Quispe", REGISTERED)
    conflicting = score("Juan Quispe Flores", REGISTERED)
    assert omitted.score == 100 and conflicting.score < 50
    assert omitted.bits == conflicting.bits  # the same words agree


def test_a_rare_surname_is_stronger_evidence_than_quispe() -> None:
    """Term frequencies (Splink's adjustment): the same shape of agreement, other bits."""
    common = score("Juan Quispe", "Juan Quispe Mamani")
    rare = score("Teodoro Ccahuana", "Teodoro Ccahuana Yupanqui")
    assert common.score == rare.score == 100
    assert common.bits == pytest.approx(-math.log2(0.030 * 0.035), abs=0.2)
    assert common.bits < 11 < 2 * 14 == rare.bits  # unseen words: as rare as the sample tells
    # the less informative side of a pair counts: a typo is not a rare word
    assert score("Juan Qispe", "Juan Quispe").bits < 11


def test_bits_come_from_a_sample_of_names() -> None:
    sample = ["Juan Quispe Mamani"] * 500 + ["Rosa Flores"] * 1000 + [None] * 500
    weights = names.TokenWeights.from_names(sample)
    assert weights.persons == 2000
    assert weights.bits("quispe") == pytest.approx(2.0)  # one person in four
    assert weights.bits("rosa") == pytest.approx(1.0)
    assert weights.bits("ccahuana") == pytest.approx(math.log2(2 * 2000))  # never seen
    assert weights.bits("c") == names.INITIAL_BITS
    small = names.TokenWeights.from_names(sample[:10])  # too few to estimate anything
    assert small.bits("quispe") == small.bits("ccahuana") == names.DEFAULT_BITS


def test_no_name_corroborates_nothing() -> None:
    for absent in (None, "", "   ", "---", "123 456", "de la"):
        assert names.tokens(absent) is None
        assert score(absent, REGISTERED) == names.NO_SCORE
        assert score(REGISTERED, absent) == names.NO_SCORE


def test_tokens_and_forms() -> None:
    parsed = names.tokens("  PEPE de la  Cruz-Huamán ")
    assert parsed is not None
    assert parsed.words == ("pepe", "cruz", "huaman")
    assert parsed.forms == {"pepe", "jose", "cruz", "huaman"}


LATIN_AND_ODD = "abcñÁéÍóúüÑ -.'`ªºß\u00b4\u00b5\u0131\u01c5\u0301\u00a0\tXYZ"
NAME_TEXT = st.text(alphabet=st.sampled_from(LATIN_AND_ODD), max_size=30) | st.text(max_size=30)


@given(NAME_TEXT)
def test_folded_words_equal_normalize_name(raw: str) -> None:
    """The fast fold (one translate) gives the words of ``normalize_name``."""
    assert names.folded_words(raw) == (normalize_name(raw) or "").split()


@given(NAME_TEXT, NAME_TEXT)
def test_scores_are_bounded_and_a_name_agrees_with_itself(left: str, right: str) -> None:
    found = score(left, right)
    assert 0.0 <= found.score <= 100.0 and found.bits >= 0.0
    if names.tokens(left) is not None:
        assert score(left, left).score == 100.0


@given(NAME_TEXT, NAME_TEXT)
def test_the_fast_pre_check_never_misses_a_shared_word(left: str, right: str) -> None:
    parsed, other = names.tokens(left), names.tokens(right)
    if parsed is not None and other is not None and not parsed.forms.isdisjoint(other.forms):
        assert names.might_share_word(names.search_forms(parsed), right)


@pytest.mark.parametrize(
    ("lead", "person"),
    [("José Pérez", "PEPE QUISPE"), ("Pepe Rojas", "José Luis Rojas"), ("Ana", "ANA MARÍA")],
)
def test_the_fast_pre_check_finds_nicknames_either_way(lead: str, person: str) -> None:
    parsed = names.tokens(lead)
    assert parsed is not None
    assert names.might_share_word(names.search_forms(parsed), person)
    assert not names.might_share_word(names.search_forms(parsed), "Luke Mahony")
