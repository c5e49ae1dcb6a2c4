"""The world the day-by-day scenario test runs in: a generator of upstream events and an
independent recomputation of the backlog from the sources.

The recomputation is plain Python over rows read with plain ``select``s of the source
tables (leads, links, claims, the attempts log): it follows the rules the model docs
state (a lead enters at creation and leaves for good at its current link or first claim;
a matcher link that was removed is a leave and a return at the same instant; a deleted
lead never existed; a row dated after the as-of time counts at the as-of time) and shares
no SQL with the models it checks.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from conftest import Database

LIMA = ZoneInfo("America/Lima")
LINKED_BY = "kpi-red"
NEVER = datetime.max.replace(tzinfo=LIMA)
"""Stands for 'infinity' in comparisons."""
EARLIEST = datetime.min.replace(tzinfo=LIMA)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=LIMA)


def end_of(day: date) -> datetime:
    """The as-of instant of a bare date (the macro ``as_of_ts``)."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=LIMA) - timedelta(
        microseconds=1
    )


def local_date(moment: datetime) -> date:
    return moment.astimezone(LIMA).date()


SOURCE_DDL = """
create schema if not exists cabinet;
create schema if not exists claims;
create schema if not exists canon;
create table cabinet.leads (
    lead_id text primary key, created_at timestamptz not null, updated_at timestamptz,
    full_name text, phone text, document_type text, document_number text, email text
);
create table canon.identity_registry (
    person_key text primary key, full_name text, phone text, document_type text,
    document_number text, email text, created_at timestamptz, updated_at timestamptz
);
create table claims.lead_claims (claim_id text primary key, lead_id text, claimed_at timestamptz);
create table canon.identity_links (
    source_table text not null, source_pk text not null, person_key text not null,
    match_rule text, match_score real, linked_at timestamptz not null, linked_by text,
    run_id text, unique (source_table, source_pk)
);
create table canon.identity_origin (
    person_key text primary key, origin_tag text, origin_source_pk text,
    origin_created_at timestamptz, recorded_at timestamptz not null
);
"""


# --- the generator ------------------------------------------------------------------------


@dataclass
class World:
    """Writes upstream events into the source tables, deterministically (one seed)."""

    database: Database
    seed: int
    start: date
    chance: random.Random = field(init=False)
    persons: int = 0
    leads: int = 0
    claims: int = 0
    events: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.chance = random.Random(self.seed)

    # -- registry
    def person(self, number: int) -> tuple[str, str, str, str]:
        key = f"P{number:04d}"
        return (
            key,
            f"Persona {number} Apellido{number % 17}",
            f"9{number:08d}",
            f"{40000000 + number}",
        )

    def add_persons(self, count: int, when: datetime) -> None:
        rows = []
        for _ in range(count):
            self.persons += 1
            key, name, phone, document = self.person(self.persons)
            rows.append((key, name, phone, "DNI", document, when))
        with self.database.connect() as conn:
            conn.cursor().executemany(
                "insert into canon.identity_registry (person_key, full_name, phone,"
                " document_type, document_number, created_at) values (%s, %s, %s, %s, %s, %s)",
                rows,
            )

    def change_person_document(self, when: datetime) -> None:
        """A person whose keys change: a new document number, updated_at moved."""
        number = self.chance.randint(1, self.persons)
        self.database.execute(
            "update canon.identity_registry set document_number = %s, updated_at = %s"
            " where person_key = %s",
            (f"{70000000 + number * 7 + self.chance.randint(0, 6)}", when, f"P{number:04d}"),
        )
        self.events["person_changed"] += 1

    # -- leads
    def add_lead(self, created_at: datetime, *, kind: str | None = None) -> str:
        self.leads += 1
        lead_id = f"L{self.leads:05d}"
        kind = (
            kind
            or self.chance.choices(
                ["document", "phone_name", "unknown", "missing"], weights=[4, 2, 3, 1]
            )[0]
        )
        number = self.chance.randint(1, max(self.persons, 1))
        _, name, phone, document = self.person(number)
        values: dict[str, Any] = {"full_name": name, "phone": None, "document": None}
        if kind == "document":
            values["document"] = document
        elif kind == "phone_name":
            values["phone"] = phone
        elif kind == "unknown":
            values["document"] = f"{90000000 + self.leads}"
        else:
            values.update(full_name="Nadie", phone="999999999")
        self.database.execute(
            "insert into cabinet.leads (lead_id, created_at, full_name, phone, document_type,"
            " document_number) values (%s, %s, %s, %s, 'DNI', %s)",
            (lead_id, created_at, values["full_name"], values["phone"], values["document"]),
        )
        self.events[f"lead_{kind}"] += 1
        return lead_id

    def red_leads(self, *, created_before: datetime) -> list[str]:
        rows = self.database.query(
            """
            select leads.lead_id from cabinet.leads as leads
            where leads.created_at < %s
                and not exists (
                    select 1 from canon.identity_links as links
                    where links.source_table = 'cabinet_leads' and links.source_pk = leads.lead_id
                )
                and not exists (
                    select 1 from claims.lead_claims as claims where claims.lead_id = leads.lead_id
                )
            order by leads.lead_id
            """,
            (created_before,),
        )
        return [row[0] for row in rows]

    def pick(self, leads: list[str], count: int) -> list[str]:
        return self.chance.sample(leads, min(count, len(leads)))

    def link_by_others(self, lead_id: str, when: datetime) -> None:
        person = f"P{self.chance.randint(1, self.persons):04d}"
        self.database.execute(
            "insert into canon.identity_links (source_table, source_pk, person_key, match_rule,"
            " match_score, linked_at, linked_by, run_id) values"
            " ('cabinet_leads', %s, %s, 'crm', 100, %s, 'crm-sync', 'crm')",
            (lead_id, person, when),
        )
        self.events["linked_by_others"] += 1

    def claim(self, lead_id: str, when: datetime) -> None:
        self.claims += 1
        self.database.execute(
            "insert into claims.lead_claims values (%s, %s, %s)",
            (f"C{self.claims:05d}", lead_id, when),
        )
        self.events["claimed"] += 1

    def remove_links(self, *, by: str, count: int) -> None:
        linked_by = "= 'kpi-red'" if by == "matcher" else "<> 'kpi-red'"
        rows = self.database.query(
            "select source_pk from canon.identity_links where linked_by "  # noqa: S608
            + linked_by
            + " order by source_pk"
        )
        for lead_id in self.pick([row[0] for row in rows], count):
            self.database.execute(
                "delete from canon.identity_links where source_pk = %s", (lead_id,)
            )
            self.events[f"link_removed_{by}"] += 1

    def delete_leads(self, count: int) -> None:
        rows = self.database.query("select lead_id from cabinet.leads order by lead_id")
        for lead_id in self.pick([row[0] for row in rows], count):
            self.database.execute("delete from cabinet.leads where lead_id = %s", (lead_id,))
            self.events["lead_deleted"] += 1

    def day(self, day: date) -> None:
        """One day of upstream activity, every event between 08:00 and 20:00 (the matcher
        runs at 22:00); late and future-dated rows among them."""
        number = (day - self.start).days
        self.add_persons(self.chance.randint(1, 3), at(day, 7))
        if number % 4 == 2:
            self.change_person_document(at(day, 8))
        for _ in range(self.chance.randint(7, 11)):
            self.add_lead(at(day, self.chance.randint(8, 19), self.chance.randint(0, 59)))
        for lead_id in self.pick(self.red_leads(created_before=at(day, 8)), 1):
            self.link_by_others(lead_id, at(day, 14))
        for lead_id in self.pick(self.red_leads(created_before=at(day, 8)), 1):
            self.claim(lead_id, at(day, 15))
        if number % 3 == 1:
            self.remove_links(by="others", count=1)
        if number % 3 == 2:
            self.remove_links(by="matcher", count=2)
        if number % 5 == 3:
            self.delete_leads(2)
        # late rows: leads dated 5, 10 and 20 days back; a backdated link and claim
        for back in (5, 10, 20):
            if number % 7 == back % 7 and number >= back:
                self.add_lead(at(day - timedelta(days=back), 10))
                self.events[f"late_lead_{back}d"] += 1
        if number % 6 == 4 and number >= 10:
            older = self.red_leads(created_before=at(day - timedelta(days=9), 0))
            for lead_id in self.pick(older, 1):
                self.link_by_others(lead_id, at(day - timedelta(days=8), 11))
                self.events["late_link"] += 1
            for lead_id in self.pick(
                self.red_leads(created_before=at(day - timedelta(days=9), 0)), 1
            ):
                self.claim(lead_id, at(day - timedelta(days=6), 11))
                self.events["late_claim"] += 1
        # future-dated: a lead created two days ahead; a claim dated tomorrow
        if number % 5 == 1:
            self.add_lead(at(day + timedelta(days=2), 9))
            self.events["future_lead"] += 1
            for lead_id in self.pick(self.red_leads(created_before=at(day, 8)), 1):
                self.claim(lead_id, at(day + timedelta(days=1), 9))
                self.events["future_claim"] += 1


def shift_run(database: Database, run_id: str, moment: datetime) -> None:
    """Date what one matcher run wrote at ``moment`` (the simulated time it ran at)."""
    database.execute(
        "update canon.identity_links set linked_at = %s where run_id = %s", (moment, run_id)
    )
    database.execute(
        "update kpi_red.match_attempts set attempted_at = %s, started_at = %s where run_id = %s",
        (moment, moment, run_id),
    )


# --- the independent recomputation ------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    lead: str
    entered_at: datetime
    left_at: datetime | None
    exit_kind: str | None


@dataclass(frozen=True)
class Sources:
    leads: dict[str, datetime]
    links: dict[str, tuple[str, datetime | None, str | None]]
    claims: dict[str, list[datetime | None]]
    matched: dict[str, list[tuple[datetime, int, str | None]]]
    attempts: list[tuple[datetime, str | None]]

    @classmethod
    def read(cls, database: Database) -> Sources:
        links = {
            row[0]: (row[1], row[2], row[3])
            for row in database.query(
                "select source_pk, person_key, linked_at, linked_by from canon.identity_links"
                " where source_table = 'cabinet_leads'"
            )
        }
        claims: dict[str, list[datetime | None]] = defaultdict(list)
        for lead_id, claimed_at in database.query(
            "select lead_id, claimed_at from claims.lead_claims where lead_id is not null"
        ):
            claims[lead_id].append(claimed_at)
        matched: dict[str, list[tuple[datetime, int, str | None]]] = defaultdict(list)
        attempts = []
        for lead_id, attempted_at, attempt_id, person, fail_reason in database.query(
            "select lead_source_pk, attempted_at, attempt_id, person_key, fail_reason"
            " from kpi_red.match_attempts"
        ):
            attempts.append((attempted_at, fail_reason))
            if fail_reason is None:
                matched[lead_id].append((attempted_at, attempt_id, person))
        return cls(
            leads=dict(database.query("select lead_id, created_at from cabinet.leads")),
            links=links,
            claims=dict(claims),
            matched=dict(matched),
            attempts=attempts,
        )

    def red_now(self) -> set[str]:
        return {lead for lead in self.leads if lead not in self.links and lead not in self.claims}

    def intervals(self) -> list[Interval]:
        found: list[Interval] = []
        for lead, created in sorted(self.leads.items()):
            found.extend(self._lead_intervals(lead, created))
        return found

    def _lead_intervals(self, lead: str, created: datetime) -> list[Interval]:
        link = self.links.get(lead)
        claimed = self.claims.get(lead)
        first_claim = min((c for c in claimed or () if c is not None), default=None)
        final_left: datetime | None = None
        if link is not None or claimed is not None:
            candidates = [c for c in (link[1] if link else None, first_claim) if c is not None]
            if link is not None and link[1] is None:
                candidates.append(EARLIEST)
            final_left = max(min(candidates), created) if candidates else created
        attempts = sorted(self.matched.get(lead, ()), key=lambda a: (a[0], a[1]))
        live = None
        if link is not None and link[2] == LINKED_BY:
            same_person = [a for a in attempts if a[2] == link[0]]
            live = same_person[-1] if same_person else None
        if live is not None and (link[1] or EARLIEST) <= (first_claim or NEVER):  # type: ignore[index]
            final_kind: str | None = "matched"
        elif link is not None or claimed is not None:
            final_kind = "other"
        else:
            final_kind = None
        bounces = sorted(
            {
                attempted_at
                for attempted_at, attempt_id, _ in attempts
                if (live is None or attempt_id != live[1])
                and created < attempted_at < (final_left or NEVER)
            }
        )
        entries = [created, *bounces]
        result = []
        for position, entered in enumerate(entries):
            last = position == len(entries) - 1
            left = final_left if last else entries[position + 1]
            kind = final_kind if last else "matched"
            if left is None or left > entered:
                result.append(Interval(lead, entered, left, kind))
        return result

    def metrics(self, as_of_day: date) -> list[tuple[Any, ...]]:
        """``(metric_date, backlog_start, new_backlog_in, matched_out, other_out,
        backlog_end, attempts, failed_attempts, top_fail_reason)`` per day."""
        as_of = end_of(as_of_day)
        first = min([local_date(c) for c in self.leads.values()] + [as_of_day])
        entered: Counter[date] = Counter()
        left: dict[date, Counter[str]] = defaultdict(Counter)
        for interval in self.intervals():
            if interval.entered_at > as_of and interval.left_at is not None:
                continue  # entered and left after the as-of time: not yet
            entered[local_date(min(interval.entered_at, as_of))] += 1
            if interval.left_at is not None:
                left[local_date(min(interval.left_at, as_of))][interval.exit_kind or ""] += 1
        tried: Counter[date] = Counter()
        failed: dict[date, Counter[str]] = defaultdict(Counter)
        for attempted_at, fail_reason in self.attempts:
            tried[local_date(attempted_at)] += 1
            if fail_reason is not None:
                failed[local_date(attempted_at)][fail_reason] += 1
        rows = []
        backlog = 0
        day = first
        while day <= as_of_day:
            matched_out = left[day]["matched"]
            other_out = sum(left[day].values()) - matched_out
            end = backlog + entered[day] - matched_out - other_out
            reasons = failed[day]
            top = min(reasons, key=lambda reason: (-reasons[reason], reason)) if reasons else None
            movement = (entered[day], matched_out, other_out)
            rows.append((day, backlog, *movement, end, tried[day], sum(reasons.values()), top))
            backlog = end
            day += timedelta(days=1)
        return rows


def model_intervals(database: Database) -> list[Interval]:
    rows = database.query(
        "select lead_source_pk, entered_at, left_at, exit_kind"
        " from kpi_red_intermediate.int_backlog_intervals order by lead_source_pk, entered_at"
    )
    return [Interval(*row) for row in rows]


def model_metrics(database: Database) -> list[tuple[Any, ...]]:
    return database.query(
        "select metric_date, backlog_start, new_backlog_in, matched_out, other_out, backlog_end,"
        " attempts, failed_attempts, top_fail_reason"
        " from ops.v_cabinet_kpi_red_recovery_metrics_daily order by metric_date"
    )


def differences(expected: Iterable[Any], actual: Iterable[Any]) -> list[str]:
    expected, actual = list(expected), list(actual)
    missing = [row for row in expected if row not in actual]
    extra = [row for row in actual if row not in expected]
    return [f"missing {row}" for row in missing[:5]] + [f"extra {row}" for row in extra[:5]]
