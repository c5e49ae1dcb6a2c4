"""Person names compared as people write them on forms: pure, no database.

Names here have one or two given names and two surnames, one often missing; forms put
surnames first or last, drop accents, shorten or nickname a first name, write a middle
name as an initial, double a space, shout in capitals. So a name is compared as a bag of
words aligned one to one, never as a string:

1. **Tokens** (``tokens``): ``normalize_name`` (accents dropped, case-folded, letters
   only), particles dropped (``de``, ``del``, ``la`` ...). Each word's **forms** are the
   word and the given names it is a nickname of (``pepe`` → ``jose``, ``lucho`` → ``luis``).
2. **Alignment** (``compare``): words agree exactly or through a nickname; then leftover
   words agree fuzzily (Jaro-Winkler ≥ 0.88, Splink's ``NameComparison`` level, or one
   letter off), as a shortened name (``fran`` / ``francisco``), or as an initial (``c`` /
   ``carlos``).
3. **Information** (``TokenWeights``): each agreeing word counts its information in bits,
   ``-log2`` of the share of registry persons whose name has it (Splink's term-frequency
   adjustment: *Quispe* agreeing is weaker evidence than *Ccahuana*). A pair counts the
   lesser of its two words' bits; an initial counts at most ``INITIAL_BITS``.

The comparison gives two numbers (``NameScore``):

- ``score`` (0-100): the share of the less informative name's bits that the other name
  confirms, minus the bits of **conflicts** (words left over on both sides: a second
  surname or a given name that differs). ``"Juan Perez"`` against ``"JUAN CARLOS PÉREZ
  GARCÍA"`` scores 100 (every word of the shorter name is confirmed, the extra words are
  omissions, not conflicts); ``"Luke Mahony"`` against ``"James Hefford"`` scores 0.
- ``bits``: the information that agrees. ``"Juan Quispe"`` agreeing with ``"Juan Quispe
  Mamani"`` is complete (100) but weak (two common words): a stranger often shares that
  much, so a link that chooses among many persons (one edit away) needs more.

Unmatched initials never count against a name (forms add and drop them), and a name with
no letters has no tokens: it can corroborate nothing.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

from rapidfuzz.distance import OSA, JaroWinkler

from matcher.nicknames import NICKNAMES
from matcher.normalize import normalize_name

PARTICLES = frozenset(
    {"de", "del", "la", "las", "los", "y", "e", "da", "das", "do", "dos", "di", "van", "von"}
)
"""Words of compound surnames (``De La Cruz``) and joiners: dropped, forms add and omit them."""


FUZZY_SIMILARITY = 0.88
"""Least Jaro-Winkler similarity for two leftover words to agree (``quispe`` / ``qispe``)."""
FUZZY_MIN_LENGTH = 3
"""Shorter words agree only exactly, through a nickname, or as a prefix."""
TYPO_MIN_LENGTH = 4
TYPO_QUALITY = 0.88
"""A word one letter off (OSA distance 1, ``tjerina`` / ``tijerina``) that Jaro-Winkler
scores below ``FUZZY_SIMILARITY`` (the typo is near the start) counts this share."""
PREFIX_MIN_LENGTH = 3
PREFIX_QUALITY = 0.85
"""A shortened name (``fran`` / ``francisco``) counts this share of its bits."""
INITIAL_BITS = 3.0
"""An initial agreeing (``c`` / ``carlos``) counts at most this: initials are skewed."""

COMMON_WORD_SHARE = 1 / 2000
"""A word held by at least this share of the sampled registry persons (and by
``COMMON_WORD_MIN`` of them) is a name in its own right: two such words that differ are
two names (``mario`` / ``marina``, a brother's and a sister's), never a typo of one, since
a typo makes a word few persons have. Such pairs do not agree fuzzily or one letter off
(without a registry sample no word is common)."""
COMMON_WORD_MIN = 5

DEFAULT_BITS = 7.0
"""A word's information when there is no registry sample (one person in 128)."""
MIN_BITS, MAX_BITS = 1.0, 14.0
MIN_SAMPLE = 1000
"""Fewer sampled persons than this estimate nothing: every word gets ``DEFAULT_BITS``."""


class NameTokens(NamedTuple):
    """A name ready to compare: its words in order, and every word's forms."""

    words: tuple[str, ...]
    present: frozenset[str]
    """The words as a set."""
    forms: frozenset[str]
    """Every word and the given names its nicknames stand for (a fast pre-check)."""


def _fold_table() -> dict[int, str]:
    """What ``normalize_name`` makes of each character up to U+024F (Latin, with its
    accents), alone: ``translate`` with it folds a whole name at once. Characters it maps
    outside ASCII (the micro sign, the dotless i) and those beyond U+024F take the slow path."""
    table = {}
    for code in range(0x250):
        folded = normalize_name(f"a{chr(code)}a") or ""
        table[code] = " " if folded == "a a" else folded[1:-1]
    return table


_FOLD = _fold_table()
_ASCII_FOLD = bytes(
    ord(_FOLD[code]) if len(_FOLD[code]) == 1 else ord(" ") for code in range(128)
) + bytes(128)
"""The same for ASCII, as a byte table (apostrophes, which fold to nothing, are deleted)."""


@functools.lru_cache(maxsize=1 << 16)
def _folded_word(word: str) -> str:
    return normalize_name(word) or ""


def folded_words(raw: str) -> list[str]:
    """The words of ``normalize_name(raw)``: one ``translate`` when every character is
    Latin (tests hold it equal to ``normalize_name``), else word by word."""
    if raw.isascii():
        return raw.encode().translate(_ASCII_FOLD, b"'`").decode().split()
    folded = raw.translate(_FOLD)
    if folded.isascii():
        return folded.split()
    return [part for word in raw.split() for part in _folded_word(word).split()]


@functools.lru_cache(maxsize=1 << 14)
def word_forms(word: str) -> frozenset[str]:
    """The word and the given names it stands for (``pepe`` → ``{pepe, jose}``)."""
    return frozenset((word, *NICKNAMES.get(word, ())))


_NICKNAMED = frozenset(NICKNAMES)
_NICKNAMES_OF: dict[str, frozenset[str]] = {}
for _nickname, _given_names in NICKNAMES.items():
    for _given in _given_names:
        _NICKNAMES_OF[_given] = _NICKNAMES_OF.get(_given, frozenset()) | {_nickname}


def search_forms(name: NameTokens) -> tuple[str, ...]:
    """Every word another name must contain to share a word with ``name`` (its forms, and
    the nicknames of its given names): what ``might_share_word`` looks for."""
    found = set(name.forms)
    for word in name.words:
        found |= _NICKNAMES_OF.get(word, frozenset())
    return tuple(sorted(found, key=len, reverse=True))


def might_share_word(forms: tuple[str, ...], raw: str | None) -> bool:
    """A fast test, never wrong when it says no: can the raw name share a word with the
    name whose ``search_forms`` these are? (A substring test on the folded text: a
    third of the cost of ``tokens``, for the many strangers one edit away.)"""
    if not raw:
        return False
    folded = raw.translate(_FOLD)
    if not folded.isascii():
        parsed = tokens(raw)
        return parsed is not None and not parsed.present.isdisjoint(forms)
    return any(form in folded for form in forms)


@functools.lru_cache(maxsize=1 << 12)
def tokens(raw: str | None) -> NameTokens | None:
    """The name's words (normalized, particles dropped) and forms; None without a letter."""
    if not raw:
        return None
    found = folded_words(raw)
    present = frozenset(found)
    if not PARTICLES.isdisjoint(present):
        found = [word for word in found if word not in PARTICLES]
        present = frozenset(found)
    if not found:
        return None
    words = tuple(found)
    if _NICKNAMED.isdisjoint(present):
        return NameTokens(words, present, present)
    return NameTokens(words, present, frozenset().union(*map(word_forms, words)))


class _Bits(dict[str, float]):
    """Bits per word, computed on first use (``__getitem__`` is a C-level hit after)."""

    def __init__(self, counts: Mapping[str, int], persons: int, unseen: float) -> None:
        super().__init__()
        self.counts, self.persons, self.unseen = counts, persons, unseen

    def __missing__(self, word: str) -> float:
        if len(word) == 1:
            value = INITIAL_BITS
        elif count := self.counts.get(word, 0):
            value = max(MIN_BITS, min(MAX_BITS, -math.log2(count / self.persons)))
        else:
            value = self.unseen
        self[word] = value
        return value


class TokenWeights:
    """Bits of information per word: ``-log2`` of the share of persons whose name has it.

    Estimated from a sample of registry names (``from_names``); a word never seen counts
    as rare as the sample can tell (``MAX_BITS`` at most). Without a sample of at least
    ``MIN_SAMPLE`` persons every word counts ``DEFAULT_BITS``; an initial (one letter)
    always counts ``INITIAL_BITS``.
    """

    def __init__(self, counts: Mapping[str, int] | None = None, *, persons: int = 0) -> None:
        self.persons = persons
        estimated = counts is not None and persons >= MIN_SAMPLE
        unseen = min(MAX_BITS, math.log2(2 * persons)) if estimated else DEFAULT_BITS
        self.words = len(counts or {}) if estimated else 0
        self.table = _Bits(dict(counts or {}) if estimated else {}, max(persons, 1), unseen)
        self.bits: Callable[[str], float] = self.table.__getitem__
        """The word's information in bits."""
        least = max(COMMON_WORD_MIN, persons * COMMON_WORD_SHARE)
        common = frozenset(word for word, count in self.table.counts.items() if count >= least)
        self.is_common: Callable[[str], bool] = common.__contains__
        """Whether the word is a name many registry persons have (``COMMON_WORD_SHARE``)."""

    @classmethod
    def from_names(cls, names: Iterable[str | None]) -> TokenWeights:
        """From registry names (one per person): each person counts a word once."""
        counts: Counter[str] = Counter()
        persons = 0
        for raw in names:
            parsed = tokens(raw)
            persons += 1
            if parsed is not None:
                counts.update(parsed.present)
        return cls(counts, persons=persons)


DEFAULT_WEIGHTS = TokenWeights()


class NameScore(NamedTuple):
    """How two names compare: ``score`` 0-100 and ``bits`` of agreeing information."""

    score: float
    bits: float
    shares_word: bool
    """At least one word agrees exactly or through a nickname (not only fuzzily)."""


NO_SCORE = NameScore(0.0, 0.0, False)


@functools.lru_cache(maxsize=1 << 14)
def _similarity(left: str, right: str, both_common: bool = False) -> float:
    """How two leftover words agree (0: not at all): fuzzy, shortened or initial. Two
    names many persons have (``both_common``) that are only alike are two names: no
    agreement at all, however alike (``TokenWeights.is_common``)."""
    if len(left) == 1 or len(right) == 1:
        return 1.0 if left[0] == right[0] else 0.0
    short, long = (left, right) if len(left) <= len(right) else (right, left)
    if _gendered(short, long):
        return 0.0
    if len(short) >= FUZZY_MIN_LENGTH:
        similarity = JaroWinkler.normalized_similarity(left, right)
        if similarity >= FUZZY_SIMILARITY:
            return 0.0 if both_common else similarity
        if len(short) >= TYPO_MIN_LENGTH and OSA.distance(left, right) == 1:
            # one letter wrong early on: Jaro-Winkler misses it
            return 0.0 if both_common else TYPO_QUALITY
    if len(short) >= PREFIX_MIN_LENGTH and len(long) > len(short) and long.startswith(short):
        return PREFIX_QUALITY
    return 0.0


def _gendered(short: str, long: str) -> bool:
    """The masculine and feminine forms of one name (``mario`` / ``maria``, ``daniel`` /
    ``daniela``): two persons, often of one family sharing a phone or an email, never
    one name misspelt. ``short`` is the shorter word."""
    if len(short) == len(long):
        return len(short) >= 3 and short[:-1] == long[:-1] and {short[-1], long[-1]} == {"a", "o"}
    return (
        len(long) == len(short) + 1
        and long.startswith(short)
        and long[-1] == "a"
        and short[-1] not in "aeiou"
    )


def compare(
    left: NameTokens | None, right: NameTokens | None, weights: TokenWeights = DEFAULT_WEIGHTS
) -> NameScore:
    """Align the words of two names one to one and score the agreement (see the module)."""
    if left is None or right is None:
        return NO_SCORE
    bits_of = weights.bits
    common = left.present & right.present
    if common and (common == left.present or common == right.present):
        # one name's words all in the other (the usual true match: omissions, order,
        # case, accents): complete, and no conflict
        shorter = left if common == left.present else right
        if len(shorter.words) == len(common):  # no repeated word to pair twice
            return NameScore(100.0, round(sum(map(bits_of, common)), 1), True)
    return _aligned(left, right, common, bits_of, weights.is_common)


def _aligned(
    left: NameTokens,
    right: NameTokens,
    common: frozenset[str],
    bits_of: Callable[[str], float],
    is_common: Callable[[str], bool],
) -> NameScore:
    rest_right = list(right.words)
    rest_left = []
    agreed = 0.0  # bits confirmed
    paired = 0.0  # the same pairs at full quality: the denominator's share of them
    for word in left.words:
        if word in common and word in rest_right:
            rest_right.remove(word)
            bits = bits_of(word)
            agreed += bits
            paired += bits
        else:
            rest_left.append(word)
    shares_word = bool(common)
    # 1. nicknames and spelling variants (``pepe`` / ``jose``)
    if rest_left and rest_right and not left.forms.isdisjoint(right.forms):
        for word in list(rest_left):
            forms = word_forms(word)
            match = next(
                (other for other in rest_right if not forms.isdisjoint(word_forms(other))), None
            )
            if match is not None:
                rest_right.remove(match)
                rest_left.remove(word)
                bits = min(bits_of(word), bits_of(match))
                agreed += bits
                paired += bits
                shares_word = True
    # 2. fuzzy, shortened and initials: the most similar pairs first
    if rest_left and rest_right:
        candidates = sorted(
            (
                (similarity, word, other)
                for word in rest_left
                for other in rest_right
                if (
                    similarity := _similarity(
                        word, other, both_common=is_common(word) and is_common(other)
                    )
                )
                > 0.0
            ),
            reverse=True,
        )
        for similarity, word, other in candidates:
            if word in rest_left and other in rest_right:
                rest_left.remove(word)
                rest_right.remove(other)
                bits = min(bits_of(word), bits_of(other))
                agreed += bits * similarity
                paired += bits
    # 3. what each side holds beyond the pairs (an unmatched initial holds nothing)
    left_rest = sorted(bits_of(word) for word in rest_left if len(word) > 1)
    right_rest = sorted(bits_of(word) for word in rest_right if len(word) > 1)
    possible = paired + min(sum(left_rest), sum(right_rest))
    if possible <= 0.0:
        return NameScore(0.0, round(agreed, 1), shares_word)
    conflicts = min(len(left_rest), len(right_rest))
    conflict_bits = min(sum(left_rest[:conflicts]), sum(right_rest[:conflicts]))
    score = max(0.0, min(100.0, 100.0 * (agreed - conflict_bits) / possible))
    return NameScore(round(score, 1), round(agreed, 1), shares_word)


def compare_raw(
    left: str | None, right: str | None, weights: TokenWeights = DEFAULT_WEIGHTS
) -> NameScore:
    """``compare`` of two raw names (as typed)."""
    return compare(tokens(left), tokens(right), weights)
