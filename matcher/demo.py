"""Reproducible demo data, generated inside PostgreSQL (``kpi-red demo``).

The source tables of the data contract (``cabinet.leads``, ``canon.identity_registry``,
``claims.lead_claims``, plus links and origin) are created when missing and filled by the
set-based SQL of ``matcher/sql/demo.sql``: ``generate_series`` and md5 of (seed, row), so
the same seed gives the same rows (timestamps are relative to ``as_of``, default now).
Names come from Faker pools (es_CO, es_MX, es_AR and Peruvian surnames) built here.

Registry persons are created 31 days to 4 years before now. They carry the mess of real
data: phones as ``+51 987 654 321``, ``987654321``, ``0051987654321``, ``51-987-654-321``,
``(01) 234-5678``; documents (DNI, CE, PASAPORTE) with dots, dashes, leading zeros and
lower case; emails with capitals, spaces and tabs; empty strings and nulls; about 0.5% share
the junk phone ``999999999``, 0.3% the document ``00000000``, 0.5% ``test@test.com``, and 1%
one of 20 office landlines (shared by more than ``junk_shared_threshold`` persons). 85% of
persons have an origin row, so a linked person without one is ORIGIN_MISSING; 3% are
linked from another system (``crm_contacts``).

Leads are spread over the last 30 days (the last 10 busier). Each lead gets one scenario;
``kpi_red_demo.lead_truth`` records it with the person the lead really is:

==================== ===== =============================================== ====================
scenario             share the lead                                          expected outcome
==================== ===== =============================================== ====================
linked               18%   linked by another system (``crm-sync``) minutes not in the backlog
                           to 4 days after it arrived
claimed              7%    claimed minutes to 4 days after it arrived      not in the backlog
document             26%   the person's document, maybe phone/email, junk  matched (document..)
phone_email          10%   the person's phone and email, no document       matched (phone+email)
phone_name           7%    only the person's phone, a name that agrees     matched (phone+name)
email_other_name     4%    a person's email under another person's name    low_confidence
missing_identifiers  9%    nothing, only junk, or garbage (``no tiene``)   missing_identifiers
no_match             9%    identifiers that exist nowhere                  no_match
conflict             4%    phone of one person, document of another        conflict
document_one_edit    3%    the person's document one edit off, name agrees no_match (issue 8:
phone_one_edit       3%    the person's phone one edit off, name agrees    ``*_one_edit``)
==================== ===== =============================================== ====================

Names on leads vary from the registry: upper case, no second surname, surnames first, a
dropped letter, no accents. A one-edit typo (substitution, insertion, deletion or adjacent
transposition of the normalized value) never equals any other identity's value.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from faker import Faker

from matcher import db
from matcher.config import ConfigError, Settings

# size: (leads, persons)
SIZES: dict[str, tuple[int, int]] = {
    "demo": (3_000, 12_000),
    "small": (10_000, 50_000),
    "medium": (100_000, 500_000),
    "large": (500_000, 2_000_000),
}

# scenario: share in per mille (sums to 1000); see the module docstring
SCENARIOS: dict[str, int] = {
    "linked": 180,
    "claimed": 70,
    "document": 260,
    "phone_email": 100,
    "phone_name": 70,
    "email_other_name": 40,
    "missing_identifiers": 90,
    "no_match": 90,
    "conflict": 40,
    "document_one_edit": 30,
    "phone_one_edit": 30,
}

# what the matcher should conclude for each scenario's lead: (outcome, fail reason)
EXPECTED: dict[str, tuple[str, str | None]] = {
    "document": ("matched", None),
    "phone_email": ("matched", None),
    "phone_name": ("matched", None),
    "email_other_name": ("failed", "low_confidence"),
    "missing_identifiers": ("failed", "missing_identifiers"),
    "no_match": ("failed", "no_match"),
    "conflict": ("failed", "conflict"),
    # near matching (issue 8) links these when the names agree strongly
    "document_one_edit": ("matched", None),
    "phone_one_edit": ("matched", None),
}

LOCALES = ("es_CO", "es_MX", "es_AR")
POOL_SIZE = 300  # distinct first names and surnames, each

PERUVIAN_SURNAMES = (
    "Quispe", "Mamani", "Huamán", "Condori", "Chávez", "Flores", "Ramírez", "Vásquez",
    "Rojas", "Sánchez", "Torres", "Mendoza", "Castillo", "Ccahuana", "Huanca", "Yupanqui",
    "Ticona", "Apaza", "Choque", "Ñahui", "Peña", "Muñoz", "Núñez", "Cárdenas", "Gutiérrez",
    "Salazar", "Paredes", "Zevallos", "Villanueva", "Espinoza", "Cáceres", "Llanos",
)  # fmt: skip
PERUVIAN_FIRST_NAMES = (
    "Rosa", "Juan", "Luis", "Carmen", "Jhon", "Yesenia", "Milagros", "Jhonatan", "Edwin",
    "Maritza", "Wilfredo", "Nilda", "Percy", "Yolanda", "Ñusta", "Rubén", "Giovanna", "Ángel",
)  # fmt: skip


class DemoDataError(ConfigError):
    """Demo data cannot be loaded as asked (another size is loaded, foreign rows)."""


@dataclass(frozen=True)
class Loaded:
    """What ``load`` found or wrote."""

    size: str
    seed: int
    leads: int
    persons: int
    links: int
    claims: int
    origin_rows: int
    seconds: float
    skipped: bool

    def describe(self) -> str:
        counts = (
            f"{self.leads:,} leads, {self.persons:,} persons, {self.links:,} links, "
            f"{self.claims:,} claims, {self.origin_rows:,} origin rows"
        )
        if self.skipped:
            return (
                f"demo data already loaded (size {self.size}, seed {self.seed}): {counts}; "
                "nothing to do (--reset regenerates it)"
            )
        return (
            f"loaded demo data (size {self.size}, seed {self.seed}): {counts} "
            f"in {self.seconds:.1f} s"
        )


def name_pools(seed: int) -> tuple[list[str], list[str]]:
    """First names and surnames: Faker's Latin American locales plus Peruvian ones."""
    first: dict[str, None] = dict.fromkeys(PERUVIAN_FIRST_NAMES)
    last: dict[str, None] = dict.fromkeys(PERUVIAN_SURNAMES)
    fakers = []
    for locale in LOCALES:
        fake = Faker(locale)
        fake.seed_instance(seed)
        fakers.append(fake)
    for _ in range(20 * POOL_SIZE):
        if len(first) >= POOL_SIZE and len(last) >= POOL_SIZE:
            break
        for fake in fakers:
            if len(first) < POOL_SIZE:
                first.setdefault(fake.first_name())
            if len(last) < POOL_SIZE:
                last.setdefault(fake.last_name())
    return list(first), list(last)


def scenario_bounds() -> tuple[list[str], list[int]]:
    """Scenario names and the lower bound of each one's per-mille bucket."""
    names, bounds, total = [], [], 0
    for name, share in SCENARIOS.items():
        names.append(name)
        bounds.append(total)
        total += share
    assert total == 1000, "scenario shares must sum to 1000"
    return names, bounds


def load(
    conninfo: str,
    settings: Settings,
    *,
    size: str = "demo",
    seed: int = 42,
    reset: bool = False,
    as_of: datetime | None = None,
) -> Loaded:
    """Create the upstream tables when missing (as their owner would: run it as that
    role) and fill them, in one transaction.

    A no-op when this size and seed are already loaded; ``reset`` empties the sources,
    links and origin, and the attempts log (when ``kpi-red init`` has made it) first.
    Raises ``DemoDataError`` when other data is there and ``reset`` is not given.
    """
    if size not in SIZES:
        raise DemoDataError(f"unknown demo size {size!r} (sizes: {', '.join(SIZES)})")
    leads, persons = SIZES[size]
    tables = settings.tables
    started = time.perf_counter()
    with db.connect(conninfo) as conn, conn.transaction():
        db.run_demo_sql(conn, "lock", tables=tables)
        db.run_demo_sql(conn, "ddl", tables=tables)
        state = db.run_demo_sql(conn, "state", tables=tables)
        if state and not reset:
            loaded = _loaded(state[0], skipped=True)
            if (loaded.size, loaded.seed) == (size, seed):
                return loaded
            raise DemoDataError(
                f"demo data of size {loaded.size} (seed {loaded.seed}) is already loaded; "
                f"use --reset to replace it with size {size} (seed {seed})"
            )
        if not state and not reset and db.run_demo_sql(conn, "has_rows", tables=tables)[0][0]:
            raise DemoDataError(
                f"{'.'.join(tables.leads)} or {'.'.join(tables.registry)} already has rows "
                "that kpi-red demo did not load; use --reset to replace them"
            )
        if reset:
            db.run_demo_sql(conn, "reset", tables=tables)
            attempts: dict[str, object] = {
                "schema": tables.attempts[0],
                "table": tables.attempts[1],
            }
            if db.run_demo_sql(conn, "has_attempts", tables=tables, params=attempts)[0][0]:
                db.run_demo_sql(conn, "reset_attempts", tables=tables)
        first_names, last_names = name_pools(seed)
        names, bounds = scenario_bounds()
        db.run_demo_sql(
            conn,
            "params",
            tables=tables,
            params={
                "seed": seed,
                "persons": persons,
                "leads": leads,
                "anchor_at": as_of,
                "lead_source_table": tables.lead_source_table,
                "first_names": first_names,
                "last_names": last_names,
                "scenario_names": names,
                "scenario_bounds": bounds,
            },
        )
        db.run_demo_sql(conn, "generate", tables=tables)
        seconds = round(time.perf_counter() - started, 3)
        params = {"size": size, "seed": seed, "seconds": seconds}
        row = db.run_demo_sql(conn, "record", tables=tables, params=params)
    return _loaded(row[0], skipped=False)


def _loaded(row: tuple[object, ...], *, skipped: bool) -> Loaded:
    size, seed, leads, persons, links, claims, origin_rows, seconds = row
    return Loaded(
        size=str(size),
        seed=int(seed),  # type: ignore[call-overload]
        leads=int(leads),  # type: ignore[call-overload]
        persons=int(persons),  # type: ignore[call-overload]
        links=int(links),  # type: ignore[call-overload]
        claims=int(claims),  # type: ignore[call-overload]
        origin_rows=int(origin_rows),  # type: ignore[call-overload]
        seconds=float(seconds),  # type: ignore[arg-type]
        skipped=skipped,
    )
