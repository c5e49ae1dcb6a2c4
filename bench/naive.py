"""The naive baseline: the shape of a typical first implementation, one lead at a time.

Per lead: read the lead, normalize it in Python, ask the junk table about each key, ask
the registry for candidates per key, decide (the matcher's own pure rules, so only the I/O
shape differs), then INSERT the link, the origin row and the attempt. All of it in ONE
transaction that is rolled back at the end: that is kinder to the loop than a commit per
lead (no WAL flush per lead), so the matcher's ratio against it is conservative.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from matcher import match, normalize, records
from matcher.settings import Settings

PERSON_KEYS = ("kpi_red_interface", "person_keys")
JUNK_IDENTIFIERS = ("kpi_red_interface", "junk_keys")
BACKLOG = ("ops", "v_cabinet_kpi_red_backlog")


@dataclass(frozen=True)
class NaiveResult:
    leads: int
    seconds: float
    statements: int
    matched: int

    @property
    def leads_per_s(self) -> float:
        return self.leads / self.seconds if self.seconds > 0 else 0.0


def run(conninfo: str, settings: Settings, *, sample: int) -> NaiveResult:
    tables = settings.tables
    project_vars = settings.vars
    country = str(project_vars.get("phone_country_code", "51"))
    lengths = tuple(int(value) for value in project_vars.get("phone_national_lengths", [8, 9]))
    default_type = str(project_vars.get("default_document_type", "DNI"))

    select_lead = sql.SQL(
        "select lead_id, created_at, full_name, phone, document_type, document_number, email"
        " from {} where lead_id = %s"
    ).format(sql.Identifier(*tables.leads))
    is_junk = sql.SQL("select 1 from {} where key_type = %s and key_value = %s").format(
        sql.Identifier(*JUNK_IDENTIFIERS)
    )
    candidates = sql.SQL(
        "select person_key, full_name from {} where key_type = %s and key_value = %s"
    ).format(sql.Identifier(*PERSON_KEYS))
    insert_link = sql.SQL(
        "insert into {} (source_table, source_pk, person_key, match_rule, match_score,"
        " linked_at, linked_by, run_id) values (%s, %s, %s, %s, %s, now(), 'naive', 'naive')"
        " on conflict (source_table, source_pk) do nothing"
    ).format(sql.Identifier(*tables.links))
    insert_origin = sql.SQL(
        "insert into {} (person_key, origin_tag, origin_source_pk, origin_created_at,"
        " recorded_at) values (%s, 'naive', %s, %s, now()) on conflict (person_key) do nothing"
    ).format(sql.Identifier(*tables.origin))
    insert_attempt = sql.SQL(
        "insert into {} (run_id, lead_source_pk, outcome, fail_reason, match_rule,"
        " match_score, person_key, evidence, identifiers_hash, started_at)"
        " values ('naive', %s, %s, %s, %s, %s, %s, %s, %s, now())"
    ).format(sql.Identifier(*tables.attempts))
    pick = sql.SQL(
        "select lead_source_pk from {} where is_eligible order by lead_source_pk limit %s"
    ).format(sql.Identifier(*BACKLOG))

    statements = 0
    matched = 0
    with psycopg.connect(conninfo, application_name="kpi-red-bench-naive") as conn:
        # Which leads: one read of the live view, left out of the timing (the matcher
        # pays it once per run, the loop would pay it once per 2,000-lead sample).
        lead_ids = [row[0] for row in conn.execute(pick, (sample,)).fetchall()]
        started = time.perf_counter()
        for lead_id in lead_ids:
            row = conn.execute(select_lead, (lead_id,)).fetchone()
            statements += 1
            assert row is not None
            _, created_at, full_name, phone, doc_type, doc_number, email = row
            raw_keys = {
                "document": normalize.normalize_document(
                    doc_type, doc_number, default_type=default_type
                ),
                "phone": normalize.normalize_phone(
                    phone, country_code=country, national_lengths=lengths
                ),
                "email": normalize.normalize_email(email),
            }
            keys: dict[str, str] = {}
            found: list[tuple[str, str, str, Any]] = []
            for key_type, key_value in raw_keys.items():
                if key_value is None:
                    continue
                statements += 1
                if conn.execute(is_junk, (key_type, key_value)).fetchone():
                    continue
                keys[key_type] = key_value
                statements += 1
                for person_key, person_name in conn.execute(candidates, (key_type, key_value)):
                    found.append((key_type, key_value, person_key, person_name))
            lead = records.Lead(
                lead_source_pk=lead_id,
                created_at=created_at,
                identifiers_hash=normalize.identifiers_hash(
                    full_name=full_name,
                    phone=phone,
                    document_type=doc_type,
                    document_number=doc_number,
                    email=email,
                ),
                full_name=full_name,
                keys=keys,
            )
            (decision,) = match.decide_batch([lead], match.CandidateIndex.from_rows(found))
            if decision.is_matched:
                matched += 1
                conn.execute(
                    insert_link,
                    (
                        tables.lead_source_table,
                        lead_id,
                        decision.person_key,
                        decision.match_rule,
                        decision.match_score,
                    ),
                )
                conn.execute(insert_origin, (decision.person_key, lead_id, created_at))
                statements += 2
            conn.execute(
                insert_attempt,
                (
                    lead_id,
                    decision.outcome,
                    decision.fail_reason,
                    decision.match_rule,
                    decision.match_score,
                    decision.person_key,
                    Jsonb(dict(decision.evidence)),
                    lead.identifiers_hash,
                ),
            )
            statements += 1
        seconds = time.perf_counter() - started
        conn.rollback()
    return NaiveResult(leads=len(lead_ids), seconds=seconds, statements=statements, matched=matched)
