"""Everything that talks to PostgreSQL. The only module that runs SQL.

SQL is parameterized; schema and table names from configuration are composed with
``psycopg.sql.Identifier``, never spliced in as text.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import NamedTuple

import psycopg
from psycopg import sql

from matcher.config import Tables, password_candidates, redact


class DatabaseError(Exception):
    """A database problem the user can act on; shown as one line, never with secrets."""


def qualified(name: tuple[str, str]) -> sql.Identifier:
    return sql.Identifier(*name)


@contextmanager
def connect(conninfo: str, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    """A connection whose expected failures become one-line ``DatabaseError``s."""
    try:
        conn = psycopg.connect(conninfo, autocommit=autocommit, application_name="kpi-red")
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot connect to PostgreSQL: {_first_line(exc, conninfo)}") from None
    except psycopg.ProgrammingError as exc:  # a malformed connection string
        raise DatabaseError(f"invalid connection string: {_first_line(exc, conninfo)}") from None
    try:
        with conn:
            yield conn
    except psycopg.OperationalError as exc:
        raise DatabaseError(
            f"lost the connection to PostgreSQL: {_first_line(exc, conninfo)}"
        ) from None
    except psycopg.errors.InsufficientPrivilege as exc:
        raise DatabaseError(f"permission denied: {_first_line(exc, conninfo)}") from None
    except psycopg.errors.UndefinedTable as exc:
        raise DatabaseError(
            f"{_first_line(exc, conninfo)} (run `kpi-red init` and `dbt build` first)"
        ) from None


def _first_line(exc: BaseException, conninfo: str) -> str:
    text = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
    # libpq may echo parts of the connection string; never let a password through.
    from psycopg.conninfo import conninfo_to_dict

    try:
        password = conninfo_to_dict(conninfo).get("password")
    except psycopg.ProgrammingError:
        # unparseable, so libpq may quote any part of it: mask what looks like a password
        for secret in password_candidates(conninfo):
            text = text.replace(secret, "***")
        return redact(text)
    if password:
        text = text.replace(str(password), "***")
    return text


# --- kpi-red init -----------------------------------------------------------------------


def init_schema(conn: psycopg.Connection, tables: Tables) -> None:
    """Create the three tables the matcher writes when missing. Idempotent."""
    template = resources.files("matcher").joinpath("sql/init.sql").read_text()
    statement = sql.SQL(template).format(
        links_schema=sql.Identifier(tables.links[0]),
        origin_schema=sql.Identifier(tables.origin[0]),
        attempts_schema=sql.Identifier(tables.attempts[0]),
        links=qualified(tables.links),
        origin=qualified(tables.origin),
        attempts=qualified(tables.attempts),
    )
    with conn.transaction():
        # two `init`s at once must not race on "create ... if not exists"
        conn.execute("select pg_advisory_xact_lock(hashtext('kpi-red init'))")
        conn.execute(statement)


def create_database(conninfo: str, dbname: str) -> None:
    with connect(conninfo, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (dbname,)).fetchone()
        if not exists:
            with suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))


def drop_database(conninfo: str, dbname: str) -> None:
    with connect(conninfo, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(dbname))
        )


# --- matcher: stream, claim, candidates, writes (`kpi-red match`, `repair-origin`) -------
# One reader connection streams the eligible backlog through a server-side cursor; each
# batch is one transaction on a writer connection: advisory locks on its leads, a re-check
# under the locks, candidates for every key at once, then links and origin written from
# arrays (``unnest``) and the attempts log by ``COPY``, never a statement per lead.

LOCK_NAMESPACE = 0x4B52  # "KR": pg_try_advisory_xact_lock(LOCK_NAMESPACE, hashtext(lead))
CYCLE_LOCK = (0x4B53, 1)  # the session lock that keeps two `kpi-red cycle`s apart
PERSON_IDENTIFIERS_RELATION = ("kpi_red_intermediate", "int_person_identifiers")
PERSON_DELETIONS_RELATION = ("kpi_red_intermediate", "int_person_identifier_deletions")
JUNK_RELATION = ("kpi_red_intermediate", "int_junk_identifiers")
ORIGIN_TAG = "cabinet_lead"
LINKED_BY = "kpi-red"


class BacklogLead(NamedTuple):
    """One eligible lead as streamed: its usable keys and the newest attempt seen (a
    tuple: the stream makes tens of thousands per second)."""

    lead_source_pk: str
    created_at: datetime
    identifiers_hash: str
    full_name: str | None
    phone_key: str | None
    document_key: str | None
    email_key: str | None
    last_attempt_id: int


def _stream_query(tables: Tables) -> sql.Composed:
    # The keys are the backlog view's own (dbt's normalization, junk removed): the
    # matcher decides on exactly the keys behind the view's reason_bucket.
    return sql.SQL(
        """
        select
            backlog.lead_source_pk,
            backlog.lead_created_at,
            backlog.identifiers_hash,
            backlog.full_name,
            backlog.phone_key,
            backlog.document_key,
            backlog.email_key,
            coalesce(last_attempt.attempt_id, 0) as last_attempt_id
        from {backlog} as backlog
        left join lateral (
            -- the newest attempt: one backward read of the (lead_source_pk, attempt_id)
            -- index per lead. Ordering by both columns leaves the planner no other ordered
            -- path (a backward scan of the primary key, filtered by lead, reads the whole
            -- log per lead when fresh attempts are not analyzed yet)
            select attempts.attempt_id
            from {attempts} as attempts
            where attempts.lead_source_pk = backlog.lead_source_pk
            order by attempts.lead_source_pk desc, attempts.attempt_id desc
            limit 1
        ) as last_attempt on true
        where backlog.is_eligible
        order by backlog.lead_created_at, backlog.lead_source_pk
        """
    ).format(backlog=qualified(BACKLOG_RELATION), attempts=qualified(tables.attempts))


def stream_eligible(
    conninfo: str, *, tables: Tables, batch_size: int
) -> Generator[list[BacklogLead], None, None]:
    """The eligible backlog, oldest first, in batches: one query, memory flat."""
    with connect(conninfo) as conn:
        conn.read_only = True
        with conn.cursor(name="kpi_red_eligible_leads") as cursor:
            cursor.itersize = batch_size
            cursor.execute(_stream_query(tables))
            while rows := cursor.fetchmany(batch_size):
                yield [BacklogLead(*row) for row in rows]


def count_eligible(conn: psycopg.Connection) -> int:
    """How many leads are eligible now (for a progress bar)."""
    statement = sql.SQL("select count(*) from {} where is_eligible").format(
        qualified(BACKLOG_RELATION)
    )
    return int(conn.execute(statement).fetchone()[0])  # type: ignore[index]


def load_junk(conn: psycopg.Connection) -> frozenset[tuple[str, str]]:
    """``(key_type, key_value)`` pairs treated as absent, as dbt materialized them."""
    statement = sql.SQL("select key_type, key_value from {}").format(qualified(JUNK_RELATION))
    return frozenset((row[0], row[1]) for row in conn.execute(statement))


def tune_lookups(conn: psycopg.Connection) -> None:
    """The matcher's statements are index lookups and inserts of one batch: launching
    parallel workers costs more than they save (measured: the candidate lookup of a
    2,000-lead batch takes half the time without them)."""
    conn.execute("set max_parallel_workers_per_gather = 0")


def lock_leads(conn: psycopg.Connection, lead_pks: Sequence[str]) -> set[str]:
    """Transaction-level advisory locks on the batch's leads; returns the ones we hold.

    The id list is materialized first so the lock function runs for these rows only. The
    locks vanish at commit, rollback or a dropped connection (a killed matcher).
    """
    rows = conn.execute(
        """
        with batch as materialized (
            select distinct lead_source_pk
            from unnest(%b::text[]) as batch (lead_source_pk)
        )
        select lead_source_pk
        from batch
        where pg_try_advisory_xact_lock(%s, hashtext(lead_source_pk))
        """,
        (list(lead_pks), LOCK_NAMESPACE),
    ).fetchall()
    return {row[0] for row in rows}


def changed_since_stream(
    conn: psycopg.Connection, *, tables: Tables, leads: Sequence[BacklogLead]
) -> set[str]:
    """Leads attempted or linked since the stream read them (run under the locks, in a new
    statement, so what the previous lock holder committed is visible)."""
    statement = sql.SQL(
        """
        select seen.lead_source_pk
        from unnest(%b::text[], %b::bigint[]) as seen (lead_source_pk, last_attempt_id)
        where exists (
            select 1
            from {attempts} as attempts
            where attempts.lead_source_pk = seen.lead_source_pk
                and attempts.attempt_id > seen.last_attempt_id
        )
        or exists (
            select 1
            from {links} as links
            where links.source_table = %s
                and links.source_pk = seen.lead_source_pk
        )
        """
    ).format(attempts=qualified(tables.attempts), links=qualified(tables.links))
    rows = conn.execute(
        statement,
        (
            [lead.lead_source_pk for lead in leads],
            [lead.last_attempt_id for lead in leads],
            tables.lead_source_table,
        ),
    ).fetchall()
    return {row[0] for row in rows}


def fetch_candidates(
    conn: psycopg.Connection, keys: Sequence[tuple[str, str]]
) -> list[tuple[str, str, str, str | None]]:
    """Registry persons for every ``(key_type, key_value)`` of a batch: one statement, a
    ``key_value = any(...)`` index scan per key type (a join against the unnested keys
    would let the planner hash the whole registry on every batch)."""
    if not keys:
        return []
    values: dict[str, list[str]] = {"document": [], "phone": [], "email": []}
    for key_type, key_value in keys:
        values[key_type].append(key_value)
    branch = sql.SQL(
        "select key_type, key_value, person_key, full_name from {identifiers}"
        " where key_type = {key_type} and key_value = any(%b::text[])"
    )
    statement = sql.SQL(" union all ").join(
        branch.format(
            identifiers=qualified(PERSON_IDENTIFIERS_RELATION), key_type=sql.Literal(key_type)
        )
        for key_type in values
    )
    return conn.execute(statement, list(values.values())).fetchall()


def fetch_near_candidates(
    conn: psycopg.Connection, variants: Sequence[tuple[str, str]]
) -> list[tuple[str, str, str, str, str | None]]:
    """Registry values sharing a deletion variant with a batch's keys (issue 8): one
    statement, a ``variant = any(...)`` index scan per key type. Rows: ``(key_type,
    variant, key_value, person_key, full_name)``; the caller keeps those exactly one edit
    away.

    The deletion table holds every holder of every value; the filters are applied here:
    a probe of ``int_person_identifiers`` (its ``(key_type, key_value)`` index) drops
    junk values and keys a person no longer holds, and a value returned with two or more
    persons is shared (all its holders have the same variants, so all of them come back
    with it) and never a near candidate."""
    if not variants:
        return []
    values: dict[str, list[str]] = {"document": [], "phone": []}
    for key_type, variant in variants:
        values[key_type].append(variant)
    branch = sql.SQL(
        """
        select
            deletions.key_type,
            deletions.variant,
            deletions.key_value,
            deletions.person_key,
            identifiers.full_name
        from {deletions} as deletions
        -- a lateral probe per row (not a join the planner could hash over the registry)
        cross join lateral (
            select person_identifiers.full_name
            from {identifiers} as person_identifiers
            where person_identifiers.key_type = deletions.key_type
                and person_identifiers.key_value = deletions.key_value
                and person_identifiers.person_key = deletions.person_key
            limit 1
        ) as identifiers
        where deletions.key_type = {key_type} and deletions.variant = any(%b::text[])
        """
    )
    statement = sql.SQL(" union all ").join(
        branch.format(
            identifiers=qualified(PERSON_IDENTIFIERS_RELATION),
            deletions=qualified(PERSON_DELETIONS_RELATION),
            key_type=sql.Literal(key_type),
        )
        for key_type in values
    )
    rows = conn.execute(statement, list(values.values())).fetchall()
    holders: dict[tuple[str, str], set[str]] = {}
    for key_type, _variant, key_value, person_key, _name in rows:
        holders.setdefault((key_type, key_value), set()).add(person_key)
    return [row for row in rows if len(holders[(row[0], row[2])]) == 1]


class LinkRow(NamedTuple):
    """(A tuple: tens of thousands are made per second.)"""

    lead_source_pk: str
    person_key: str
    match_rule: str
    match_score: float | None


def insert_links(
    conn: psycopg.Connection, *, tables: Tables, run_id: str, links: Sequence[LinkRow]
) -> dict[str, str]:
    """Link the leads; never overwrite. Returns ``{lead: person_key}`` of the leads that
    were already linked (to that person or another) and so were not written."""
    if not links:
        return {}
    statement = sql.SQL(
        """
        insert into {links} (
            source_table, source_pk, person_key, match_rule, match_score, linked_by, run_id
        )
        select %s, new_links.source_pk, new_links.person_key, new_links.match_rule,
            new_links.match_score, %s, %s
        from unnest(%b::text[], %b::text[], %b::text[], %b::real[])
            as new_links (source_pk, person_key, match_rule, match_score)
        on conflict (source_table, source_pk) do nothing
        returning source_pk
        """
    ).format(links=qualified(tables.links))
    written = {
        row[0]
        for row in conn.execute(
            statement,
            (
                tables.lead_source_table,
                LINKED_BY,
                run_id,
                [link.lead_source_pk for link in links],
                [link.person_key for link in links],
                [link.match_rule for link in links],
                [link.match_score for link in links],
            ),
        ).fetchall()
    }
    not_written = [link.lead_source_pk for link in links if link.lead_source_pk not in written]
    if not not_written:
        return {}
    existing = conn.execute(
        sql.SQL(
            "select source_pk, person_key from {links}"
            " where source_table = %s and source_pk = any(%b::text[])"
        ).format(links=qualified(tables.links)),
        (tables.lead_source_table, not_written),
    ).fetchall()
    return {row[0]: row[1] for row in existing}


class AttemptRow(NamedTuple):
    """One attempts-log row, in the order of the log's ``COPY`` columns (a tuple: tens of
    thousands are made per second)."""

    lead_source_pk: str
    outcome: str
    fail_reason: str | None
    match_rule: str | None
    match_score: float | None
    person_key: str | None
    evidence: str
    """JSON text."""
    identifiers_hash: str


class OriginRow(NamedTuple):
    person_key: str
    lead_source_pk: str
    lead_created_at: datetime


def record_outcomes(
    conn: psycopg.Connection,
    *,
    tables: Tables,
    run_id: str,
    started_at: datetime,
    origins: Sequence[OriginRow],
    attempts: Sequence[AttemptRow],
) -> int:
    """Origin rows for linked persons that have none (one statement from arrays), and one
    attempts-log row per lead (``COPY`` straight into the log: measured ~25% cheaper per
    lead than unnesting eight arrays, and than one ``jsonb_to_recordset`` parameter).
    Returns how many origin rows were added."""
    added = 0
    if origins:
        statement = sql.SQL(
            """
            with new_origins as (
                insert into {origin} (person_key, origin_tag, origin_source_pk, origin_created_at)
                select distinct on (linked.person_key)
                    linked.person_key, %s, linked.source_pk, linked.created_at
                from unnest(%b::text[], %b::text[], %b::timestamptz[])
                    as linked (person_key, source_pk, created_at)
                order by linked.person_key, linked.created_at, linked.source_pk
                on conflict (person_key) do nothing
                returning 1
            )

            select count(*) from new_origins
            """
        ).format(origin=qualified(tables.origin))
        row = conn.execute(
            statement,
            (
                ORIGIN_TAG,
                [origin.person_key for origin in origins],
                [origin.lead_source_pk for origin in origins],
                [origin.lead_created_at for origin in origins],
            ),
        ).fetchone()
        added = int(row[0]) if row else 0
    if attempts:
        copy = sql.SQL(
            "copy {attempts} (run_id, lead_source_pk, outcome, fail_reason, match_rule,"
            " match_score, person_key, evidence, identifiers_hash, started_at) from stdin"
        ).format(attempts=qualified(tables.attempts))
        with conn.cursor() as cursor, cursor.copy(copy) as rows:
            for attempt in attempts:
                rows.write_row((run_id, *attempt, started_at))
    return added


def analyze_written(conn: psycopg.Connection, *, tables: Tables) -> None:
    """Fresh statistics on the attempts log and the links after a run's writes, so the
    next run's plans (the stream's newest-attempt lookup, the backlog's anti-joins) see
    the rows just added instead of an empty table. A role that may not analyze them
    gets a warning from PostgreSQL, not an error."""
    for table in (tables.attempts, tables.links):
        conn.execute(sql.SQL("analyze {}").format(qualified(table)))


def repair_origin(conn: psycopg.Connection, *, tables: Tables, dry_run: bool = False) -> int:
    """An origin row for every linked person without one (ORIGIN_MISSING), whoever linked
    them, from their earliest link. Set-based and idempotent. Returns the rows added."""
    statement = sql.SQL(
        """
        with first_links as (
            select distinct on (links.person_key)
                links.person_key,
                links.source_table,
                links.source_pk,
                links.linked_at
            from {links} as links
            where not exists (
                select 1 from {origin} as origin where origin.person_key = links.person_key
            )
            order by links.person_key, links.linked_at, links.source_table, links.source_pk
        ),

        origin_sources as (
            select
                first_links.person_key,
                case
                    when first_links.source_table = %s then %s
                    else first_links.source_table
                end as origin_tag,
                first_links.source_pk as origin_source_pk,
                coalesce(leads.created_at, first_links.linked_at) as origin_created_at
            from first_links
            left join {leads} as leads
                on first_links.source_table = %s
                and leads.lead_id::text = first_links.source_pk
        ),

        inserted as (
            insert into {origin} (person_key, origin_tag, origin_source_pk, origin_created_at)
            select person_key, origin_tag, origin_source_pk, origin_created_at
            from origin_sources
            on conflict (person_key) do nothing
            returning 1
        )

        select count(*) from inserted
        """
    ).format(
        links=qualified(tables.links),
        origin=qualified(tables.origin),
        leads=qualified(tables.leads),
    )
    with conn.transaction() as transaction:
        row = conn.execute(
            statement, (tables.lead_source_table, ORIGIN_TAG, tables.lead_source_table)
        ).fetchone()
        count = int(row[0]) if row else 0
        if dry_run:
            raise psycopg.Rollback(transaction)
    return count


def try_cycle_lock(conn: psycopg.Connection) -> bool:
    """The session lock of `kpi-red cycle` (on an autocommit connection held for the run)."""
    row = conn.execute("select pg_try_advisory_lock(%s, %s)", CYCLE_LOCK).fetchone()
    return bool(row and row[0])


def release_cycle_lock(conn: psycopg.Connection) -> None:
    conn.execute("select pg_advisory_unlock(%s, %s)", CYCLE_LOCK)


def grant_statements(tables: Tables, *, matcher_role: str, reader_role: str) -> str:
    """``matcher/sql/grants.sql`` with every schema, table and role quoted."""
    template = resources.files("matcher").joinpath("sql/grants.sql").read_text()

    def identifiers(names: Sequence[str]) -> sql.Composable:
        return sql.SQL(", ").join(sql.Identifier(name) for name in dict.fromkeys(names))

    dbt_relations = (
        BACKLOG_RELATION,
        PERSON_IDENTIFIERS_RELATION,
        PERSON_DELETIONS_RELATION,
        JUNK_RELATION,
    )
    source_tables = (tables.leads,)
    written = (tables.links, tables.origin, tables.attempts)
    statement = sql.SQL(template).format(
        matcher_role=sql.Identifier(matcher_role),
        reader_role=sql.Identifier(reader_role),
        matcher_schemas=identifiers(
            [name[0] for name in (*source_tables, *written, *dbt_relations)]
        ),
        dbt_schemas=identifiers([name[0] for name in dbt_relations]),
        ops_schema=sql.Identifier(BACKLOG_RELATION[0]),
        leads=qualified(tables.leads),
        links=qualified(tables.links),
        origin=qualified(tables.origin),
        attempts=qualified(tables.attempts),
        backlog=qualified(BACKLOG_RELATION),
        person_identifiers=qualified(PERSON_IDENTIFIERS_RELATION),
        person_deletions=qualified(PERSON_DELETIONS_RELATION),
        junk=qualified(JUNK_RELATION),
    )
    return statement.as_string(None)


# --- panel ---
# `kpi-red metrics` and `kpi-red serve` read two dbt models, nothing else, in a read-only
# transaction: a role with SELECT on them suffices.

from datetime import date  # noqa: E402
from typing import Any  # noqa: E402

METRICS_RELATION = ("ops", "v_cabinet_kpi_red_recovery_metrics_daily")
BACKLOG_RELATION = ("ops", "v_cabinet_kpi_red_backlog")


class MetricsNotBuiltError(DatabaseError):
    """The metrics or backlog model does not exist: dbt has not been built here yet."""


@dataclass(frozen=True)
class PanelRows:
    """What the panel shows: the newest days of metrics and the live backlog size."""

    metrics: list[dict[str, Any]]
    current_backlog: int
    local_today: date


def read_panel_rows(conninfo: str, *, days: int, time_zone: str) -> PanelRows:
    """The last ``days`` metric rows (up to the newest metric_date) and the backlog count."""
    from psycopg.rows import dict_row

    metrics = qualified(METRICS_RELATION)
    backlog = qualified(BACKLOG_RELATION)
    with connect(conninfo) as conn:
        conn.read_only = True
        try:
            with conn.cursor(row_factory=dict_row) as cursor:
                cursor.execute("set local statement_timeout = '30s'")
                cursor.execute("select (now() at time zone %s)::date as local_today", (time_zone,))
                local_today = cursor.fetchone()["local_today"]  # type: ignore[index]
                cursor.execute(
                    sql.SQL(
                        "select * from {metrics} where metric_date >"
                        " (select max(metric_date) from {metrics}) - %s::integer"
                        " order by metric_date"
                    ).format(metrics=metrics),
                    (days,),
                )
                rows = cursor.fetchall()
                cursor.execute(sql.SQL("select count(*) as leads from {}").format(backlog))
                current_backlog = cursor.fetchone()["leads"]  # type: ignore[index]
        except psycopg.errors.UndefinedTable as exc:
            missing = exc.diag.message_primary or "a model is missing"
            raise MetricsNotBuiltError(
                f"the metrics are not built yet: {missing} (run `dbt build` first)"
            ) from None
        except psycopg.errors.OperationalError:
            raise
        except psycopg.Error as exc:
            raise DatabaseError(f"cannot read the metrics: {_first_line(exc, conninfo)}") from None
    return PanelRows(metrics=rows, current_backlog=int(current_backlog), local_today=local_today)


# --- kpi-red demo -----------------------------------------------------------------------


def demo_sql_sections() -> dict[str, str]:
    """``matcher/sql/demo.sql`` split at its ``-- name: <section>`` lines."""
    text = resources.files("matcher").joinpath("sql/demo.sql").read_text()
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        if line.startswith("-- name: "):
            current = sections.setdefault(line.removeprefix("-- name: ").strip(), [])
        else:
            current.append(line)
    return {name: "\n".join(lines) for name, lines in sections.items()}


def run_demo_sql(
    conn: psycopg.Connection,
    section: str,
    *,
    tables: Tables,
    params: dict[str, object] | None = None,
) -> list[tuple[object, ...]]:
    """Run one section of ``demo.sql`` with the configured table names; its rows, if any.

    A section with ``params`` is one statement; one of several statements takes none.
    """
    statement = sql.SQL(demo_sql_sections()[section]).format(
        leads_schema=sql.Identifier(tables.leads[0]),
        registry_schema=sql.Identifier(tables.registry[0]),
        claims_schema=sql.Identifier(tables.claims[0]),
        leads=qualified(tables.leads),
        registry=qualified(tables.registry),
        claims=qualified(tables.claims),
        links=qualified(tables.links),
        origin=qualified(tables.origin),
        attempts=qualified(tables.attempts),
    )
    cursor = conn.execute(statement, params)
    return cursor.fetchall() if cursor.description else []
