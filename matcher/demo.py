"""Reproducible demo data, generated inside PostgreSQL (``kpi-red demo``).

The source tables of the data contract (``cabinet.leads``, ``canon.identity_registry``,
``claims.lead_claims``, plus links and origin) are created when missing and filled by the
set-based SQL of ``matcher/store/sql/demo.sql``: ``generate_series`` and md5 of (seed, row), so
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
document_one_edit    3%    the person's document one edit off, name agrees no_match (the near
phone_one_edit       3%    the person's phone one edit off, name agrees    pass: ``*_one_edit``)
==================== ===== =============================================== ====================

Identifiers are as dense as real ones (``density``, default one third: about a third of
all 8-digit numbers are somebody's DNI in Peru, and most 9-digit mobile numbers are
somebody's phone). DNIs, mobiles and landlines are drawn from compact blocks of numbers in
which the registry's holders are ``density`` of the values (the leads' own identities
that are in no registry take places in the same blocks), so every value has several
persons one edit away and a one-edit typo (substitution, insertion, deletion or adjacent
transposition of the normalized value) lands on another real person about as often as
density says. ``density=0`` gives the sparse space of earlier versions, where typos are
chosen to exist nowhere else.

Names follow a Zipf-Mandelbrot law, ``1 / (rank + ZIPF_OFFSET)`` over each pool (the most
common surname on about 3% of persons, as Quispe is in Peru), so a stranger often shares
a surname or a given name with a lead. Lead forms write names carelessly, several ways at
once (``demo_form_name`` in demo.sql): a nickname (``DEMO_NICKNAMES``, written apart
from the matcher's list, with some it does not know) or a shortened first name, the
middle name dropped, as an initial or alone, a letter of a surname wrong, the second
surname missing, surnames first, accents dropped, capitals, double spaces. The registry
writes some names as the national registry does (``QUISPE MAMANI, JUAN CARLOS``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from faker import Faker

from matcher.normalize import normalize_name
from matcher.settings import ConfigError, Settings
from matcher.store import demo as store
from matcher.store import review as store_review

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
    "email_other_name": ("failed", "name_mismatch"),
    "missing_identifiers": ("failed", "missing_identifiers"),
    "no_match": ("failed", "no_match"),
    "conflict": ("failed", "conflict"),
    # near matching links these when the names agree strongly; at density > 0 a third
    # of the typos land on a stranger, whose name clearly differs (name_mismatch first)
    "document_one_edit": ("matched", None),
    "phone_one_edit": ("matched", None),
}

DEFAULT_DENSITY = 0.33
MAX_DENSITY = 0.6
"""Above this the blocks cannot hold the leads' own identities too (at the sizes' ratio
of four registry persons per lead)."""
ZIPF_OFFSET = 8.0
NAME_SLOTS = 100_000

LOCALES = ("es_CO", "es_MX", "es_AR")
POOL_SIZE = 300  # distinct first names and surnames, each

# Commonest first: the pools' order is their frequency rank (Zipf-Mandelbrot).
PERUVIAN_SURNAMES = (
    "Quispe", "Flores", "Sánchez", "Rodríguez", "García", "Rojas", "Mamani", "Huamán",
    "Vásquez", "Chávez", "Ramírez", "Torres", "Mendoza", "Gonzales", "López", "Díaz",
    "Pérez", "Castillo", "Espinoza", "Condori", "Huanca", "Ramos", "Gutiérrez", "Cruz",
    "Apaza", "Ticona", "Choque", "Yupanqui", "Ccahuana", "Ñahui", "Peña", "Muñoz", "Núñez",
    "Cárdenas", "Salazar", "Paredes", "Zevallos", "Villanueva", "Cáceres", "Llanos",
)  # fmt: skip
PERUVIAN_FIRST_NAMES = (
    "Juan", "María", "José", "Luis", "Carlos", "Rosa", "Jorge", "Ana", "Carmen", "Miguel",
    "Jesús", "Víctor", "Julio", "Pedro", "Elizabeth", "Jhon", "Milagros", "Manuel",
    "Francisco", "Antonio", "Enrique", "Fernando", "Eduardo", "Guillermo", "Alejandro",
    "Rosario", "Isabel", "Alberto", "Roberto", "Ignacio", "Yesenia", "Jhonatan", "Edwin",
    "Maritza", "Wilfredo", "Nilda", "Percy", "Yolanda", "Ñusta", "Rubén", "Giovanna", "Ángel",
)  # fmt: skip

# How forms nickname some first names: written apart from matcher.names.NICKNAMES (Coco,
# Chabuca and Tito are not in it: not every nickname is known to the matcher).
DEMO_NICKNAMES = {
    "José": "Pepe",
    "Luis": "Lucho",
    "Enrique": "Kike",
    "Francisco": "Pancho",
    "Antonio": "Toño",
    "Jesús": "Chucho",
    "Guillermo": "Memo",
    "Rosario": "Charo",
    "Eduardo": "Lalo",
    "Fernando": "Nando",
    "Alejandro": "Alex",
    "Manuel": "Manolo",
    "Ignacio": "Nacho",
    "Alberto": "Beto",
    "Jorge": "Coco",
    "Isabel": "Chabuca",
    "Roberto": "Tito",
}


class DemoDataError(ConfigError):
    """Demo data cannot be loaded as asked (another size is loaded, foreign rows)."""


@dataclass(frozen=True)
class Loaded:
    """What ``load`` found or wrote."""

    size: str
    seed: int
    density: float
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
        what = f"size {self.size}, seed {self.seed}, density {self.density:.2f}"
        if self.skipped:
            return (
                f"demo data already loaded ({what}): {counts}; "
                "nothing to do (--reset regenerates it)"
            )
        return f"loaded demo data ({what}): {counts} in {self.seconds:.1f} s"


def name_pools(seed: int) -> tuple[list[str], list[str]]:
    """First names and surnames: Peruvian ones (commonest first), then Faker's Latin
    American locales. One spelling per name: a name that differs from one already in
    only by its accents or case (Faker's ``Garcia`` after ``García``) is left out."""
    first = {normalize_name(name): name for name in PERUVIAN_FIRST_NAMES}
    last = {normalize_name(name): name for name in PERUVIAN_SURNAMES}
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
                name = fake.first_name()
                first.setdefault(normalize_name(name), name)
            if len(last) < POOL_SIZE:
                name = fake.last_name()
                last.setdefault(normalize_name(name), name)
    return list(first.values()), list(last.values())


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
    density: float = DEFAULT_DENSITY,
    reset: bool = False,
    as_of: datetime | None = None,
) -> Loaded:
    """Create the upstream tables when missing (as their owner would: run it as that
    role) and fill them, in one transaction.

    ``density``: the share of the DNI and phone number blocks held by registry persons
    (0: the sparse space of earlier versions). A no-op when this size, seed and density
    are already loaded; ``reset`` empties the sources, links and origin, and the
    attempts log (when ``kpi-red init`` has made it) first. Raises ``DemoDataError``
    when other data is there and ``reset`` is not given.
    """
    if size not in SIZES:
        raise DemoDataError(f"unknown demo size {size!r} (sizes: {', '.join(SIZES)})")
    if not 0 <= density <= MAX_DENSITY:
        raise DemoDataError(f"density must be between 0 and {MAX_DENSITY}, not {density}")
    density = round(density, 4)
    leads, persons = SIZES[size]
    tables = settings.tables
    started = time.perf_counter()
    with store.session(conninfo) as conn:
        store.run_demo_sql(conn, "lock", tables=tables)
        store.run_demo_sql(conn, "ddl", tables=tables)
        state = store.run_demo_sql(conn, "state", tables=tables)
        if state and not reset:
            loaded = _loaded(state[0], skipped=True)
            if (loaded.size, loaded.seed, round(loaded.density, 4)) == (size, seed, density):
                return loaded
            raise DemoDataError(
                f"demo data of size {loaded.size} (seed {loaded.seed}, density "
                f"{loaded.density:.2f}) is already loaded; use --reset to replace it with "
                f"size {size} (seed {seed}, density {density:.2f})"
            )
        if not state and not reset and store.run_demo_sql(conn, "has_rows", tables=tables)[0][0]:
            raise DemoDataError(
                f"{'.'.join(tables.leads)} or {'.'.join(tables.registry)} already has rows "
                "that kpi-red demo did not load; use --reset to replace them"
            )
        if reset:
            store.run_demo_sql(conn, "reset", tables=tables)
            attempts: dict[str, object] = {
                "schema": tables.attempts[0],
                "table": tables.attempts[1],
            }
            if store.run_demo_sql(conn, "has_attempts", tables=tables, params=attempts)[0][0]:
                store.run_demo_sql(conn, "reset_attempts", tables=tables)
            store_review.reset_logs(conn, tables=tables)
        first_names, last_names = name_pools(seed)
        names, bounds = scenario_bounds()
        store.run_demo_sql(
            conn,
            "params",
            tables=tables,
            params={
                "seed": seed,
                "persons": persons,
                "leads": leads,
                "anchor_at": as_of,
                "lead_source_table": tables.lead_source_table,
                "density": density,
                "first_names": first_names,
                "last_names": last_names,
                "nickname_names": list(DEMO_NICKNAMES),
                "nicknames": list(DEMO_NICKNAMES.values()),
                "zipf_offset": ZIPF_OFFSET,
                "name_slots": NAME_SLOTS,
                "scenario_names": names,
                "scenario_bounds": bounds,
            },
        )
        store.run_demo_sql(conn, "generate", tables=tables)
        seconds = round(time.perf_counter() - started, 3)
        params = {"size": size, "seed": seed, "density": density, "seconds": seconds}
        row = store.run_demo_sql(conn, "record", tables=tables, params=params)
    return _loaded(row[0], skipped=False)


def _loaded(row: tuple[object, ...], *, skipped: bool) -> Loaded:
    size, seed, density, leads, persons, links, claims, origin_rows, seconds = row
    return Loaded(
        size=str(size),
        seed=int(seed),  # type: ignore[call-overload]
        density=float(density),  # type: ignore[arg-type]
        leads=int(leads),  # type: ignore[call-overload]
        persons=int(persons),  # type: ignore[call-overload]
        links=int(links),  # type: ignore[call-overload]
        claims=int(claims),  # type: ignore[call-overload]
        origin_rows=int(origin_rows),  # type: ignore[call-overload]
        seconds=float(seconds),  # type: ignore[arg-type]
        skipped=skipped,
    )
