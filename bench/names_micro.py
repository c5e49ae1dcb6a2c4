"""What deciding costs per lead: the name comparison before and after, on synthetic pairs.

``python -m bench.names_micro --pairs 100000`` builds registry names from the demo's
pools (Zipf-Mandelbrot, as ``kpi-red demo`` draws them) and a lead name for each: the
person's own as a careless form writes it (half) or a stranger's (half). It times, per
pair, in one process:

- **before**: what the matcher did until names decided single keys: ``normalize_name``
  word by word (cached) and rapidfuzz's ``token_sort_ratio`` for the batch in one
  ``process.cpdist`` call;
- **after**: ``matcher.names`` (cached words, an alignment, word information);
- **decide**: ``matcher.match.decide_batch`` over leads with one candidate each (the
  exact pass's whole per-lead work: classify, compare, finish), in batches of 2,000.

Example: python -m bench.names_micro --pairs 100000
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime

import click
from rapidfuzz import fuzz, process

from matcher import demo, match, names, records
from matcher.normalize import normalize_name
from matcher.pipeline import tuned_interpreter

BATCH = 2000


def synthetic_pairs(count: int, *, seed: int, strangers: float) -> list[tuple[str, str]]:
    """``(lead name, registry name)``: the person's own, or (``strangers`` of them) a
    stranger's (a typo that landed on someone else)."""
    first, last = demo.name_pools(seed)
    rng = random.Random(seed)

    def zipf(pool: list[str]) -> str:
        weights = [1 / (rank + 1 + demo.ZIPF_OFFSET) for rank in range(len(pool))]
        return rng.choices(pool, weights)[0]

    def person() -> list[str]:
        parts = [zipf(first)]
        if rng.random() < 0.25:
            parts.append(zipf(first))
        parts.append(zipf(last))
        if rng.random() < 0.85:
            parts.append(zipf(last))
        return parts

    def written(parts: list[str]) -> str:
        words = list(parts)
        if len(words) > 2 and rng.random() < 0.25:
            words.pop()  # second surname missing
        if rng.random() < 0.15:
            words = words[-2:] + words[:-2]  # surnames first
        text = " ".join(words)
        return text.upper() if rng.random() < 0.25 else text

    pairs = []
    for _ in range(count):
        registered = person()
        lead = person() if rng.random() < strangers else registered
        pairs.append((written(lead), " ".join(registered)))
    return pairs


def per_pair_us(action: Callable[[], object], count: int) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) / count * 1e6


def before(pairs: list[tuple[str, str]]) -> None:
    @functools.lru_cache(maxsize=1 << 16)
    def word(raw: str) -> str | None:
        return normalize_name(raw)

    def normalized(raw: str) -> str:
        return " ".join(filter(None, map(word, raw.split())))

    for start in range(0, len(pairs), BATCH):
        batch = pairs[start : start + BATCH]
        process.cpdist(
            [normalized(lead) for lead, _ in batch],
            [normalized(person) for _, person in batch],
            scorer=fuzz.token_sort_ratio,
            workers=1,
        )


def after(pairs: list[tuple[str, str]], weights: names.TokenWeights) -> None:
    for lead, person in pairs:
        names.compare(names.tokens(lead), names.tokens(person), weights)


def batches(
    pairs: list[tuple[str, str]],
) -> list[tuple[list[records.Lead], match.CandidateIndex]]:
    """Leads with a document held by one person each, in batches (built untimed)."""
    created = datetime(2025, 1, 1, tzinfo=UTC)
    built = []
    for start in range(0, len(pairs), BATCH):
        batch = pairs[start : start + BATCH]
        leads = [
            records.Lead(f"L{number}", created, "h", lead, {"document": f"DNI:{number}"})
            for number, (lead, _) in enumerate(batch, start)
        ]
        index = match.CandidateIndex.from_rows(
            ("document", f"DNI:{number}", f"P{number}", person)
            for number, (_, person) in enumerate(batch, start)
        )
        built.append((leads, index))
    return built


def decide_before(built: list[tuple[list[records.Lead], match.CandidateIndex]]) -> None:
    """The exact pass as it was: classify, then token_sort_ratio for the batch at once."""

    @functools.lru_cache(maxsize=1 << 16)
    def word(raw: str) -> str | None:
        return normalize_name(raw)

    def normalized(raw: str | None) -> str:
        return " ".join(filter(None, map(word, (raw or "").split())))

    for leads, index in built:
        checks = [
            item
            for item in map(lambda lead: match.classify(lead, index), leads)
            if isinstance(item, records.NameCheck)
        ]
        process.cpdist(
            [normalized(check.lead.full_name) for check in checks],
            [normalized(check.person.full_name) for check in checks],
            scorer=fuzz.token_sort_ratio,
            workers=1,
        )


def decide(
    built: list[tuple[list[records.Lead], match.CandidateIndex]], weights: names.TokenWeights
) -> None:
    rules = match.NameRules(weights=weights)
    for leads, index in built:
        match.decide_batch(leads, index, rules=rules)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--pairs", "count", type=int, default=100_000, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option(
    "--strangers",
    type=click.FloatRange(0, 1),
    default=0.1,
    show_default=True,
    help="Share of pairs whose registry name is a stranger's.",
)
def main(count: int, seed: int, strangers: float) -> None:
    """Per-pair cost of the name comparison, before and after, and of deciding a lead.

    Example: python -m bench.names_micro --pairs 100000
    """
    with tuned_interpreter():  # as kpi-red match runs: the cyclic collector rarely
        measure(count, seed=seed, strangers=strangers)


def measure(count: int, *, seed: int, strangers: float) -> None:
    pairs = synthetic_pairs(count, seed=seed, strangers=strangers)
    built = batches(pairs)
    weights = names.TokenWeights.from_names(person for _, person in pairs[:30_000])
    # fresh names each run: the caches start cold, as for a run's new leads and persons
    click.echo(
        f"{count:,} synthetic pairs ({strangers:.0%} strangers), batches of {BATCH}, caches cold"
    )
    spent = per_pair_us(lambda: before(pairs), count)
    click.echo(f"  names before  token_sort_ratio (cpdist)   {spent:6.2f} us/pair")
    names.tokens.cache_clear()
    spent = per_pair_us(lambda: after(pairs, weights), count)
    click.echo(f"  names after   matcher.names.compare        {spent:6.2f} us/pair")
    spent = per_pair_us(lambda: decide_before(built), count)
    click.echo(f"  decide before classify + token_sort_ratio  {spent:6.2f} us/lead")
    names.tokens.cache_clear()
    spent = per_pair_us(lambda: decide(built, weights), count)
    click.echo(f"  decide after  match.decide_batch           {spent:6.2f} us/lead")


if __name__ == "__main__":
    main()
