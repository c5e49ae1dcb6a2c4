"""Everything that talks to PostgreSQL. The only module that runs SQL.

SQL is parameterized; schema and table names from configuration are composed with
``psycopg.sql.Identifier``, never spliced in as text.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib import resources
from typing import Any, NamedTuple, TypeVar

import psycopg
from psycopg import sql

from matcher.config import Roles, Tables, password_candidates, redact
from matcher.normalize import IDENTIFIER_COLUMNS, IDENTIFIERS_HASH_SQL
from matcher.registry import LiveRegistry


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
    except psycopg.Error as exc:
        message = expected_error(exc, conninfo)
        if message is None:
            raise
        raise DatabaseError(message) from None


_TIMEOUTS: tuple[tuple[type[psycopg.Error], str, str], ...] = (
    (
        psycopg.errors.IdleInTransactionSessionTimeout,
        "idle_in_transaction_session_timeout",
        "raise it for the matcher's role (a batch's transaction stays open while it is written)",
    ),
    (
        psycopg.errors.TransactionTimeout,
        "transaction_timeout",
        "raise it for the matcher's role, or lower --batch-size",
    ),
    (psycopg.errors.IdleSessionTimeout, "idle_session_timeout", "raise it, or retry"),
    (
        psycopg.errors.LockNotAvailable,
        "lock_timeout",
        "another session held a lock the matcher needs (a dbt build replacing a relation?); retry",
    ),
)


def expected_error(exc: psycopg.Error, conninfo: str) -> str | None:
    """One line naming an expected database failure, or None for an unexpected one (a
    bug: it keeps its traceback). A batch is one transaction: whatever failed, nothing of
    the open batch was written, and the batches committed before it stand."""
    text = _first_line(exc, conninfo)
    for kind, setting, advice in _TIMEOUTS:
        if isinstance(exc, kind):
            return f"{text} ({setting}): {advice}"
    if isinstance(exc, psycopg.errors.QueryCanceled):
        if "statement timeout" in text:
            return (
                f"{text} (statement_timeout): raise it for the matcher's role, or lower"
                " --batch-size"
            )
        return text
    if isinstance(exc, psycopg.errors.OutOfMemory):  # the lock table: a lock per lead
        return f"{text}: lower --batch-size or --writers, or raise max_locks_per_transaction"
    if isinstance(exc, psycopg.errors.DeadlockDetected | psycopg.errors.SerializationFailure):
        return f"{text}: retry"
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return f"permission denied: {text}"
    if isinstance(exc, psycopg.errors.UndefinedTable):
        return f"{text} (run `kpi-red init` and `dbt build` first)"
    if isinstance(exc, psycopg.OperationalError):
        return f"lost the connection to PostgreSQL: {text}"
    return None


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

DBT_SCHEMAS = ("kpi_red_staging", "kpi_red_intermediate", "ops")
"""The schemas dbt builds into (``+schema`` in ``dbt_project.yml``, used as written)."""


def init_schema(
    conn: psycopg.Connection, tables: Tables, *, dbt_role: str | None = None
) -> list[str]:
    """Create what the project owns when missing: its schemas (the attempts log's and
    dbt's) and the attempts log. As ``dbt_role`` when given (``set local role``), so
    whoever runs it, it belongs to that role. Never touches an upstream table.
    Idempotent; returns the schemas and tables it created."""
    created: list[str] = []
    with conn.transaction():
        # two `init`s at once must not race on "create ... if not exists"
        conn.execute("select pg_advisory_xact_lock(hashtext('kpi-red init'))")
        if dbt_role:
            _become(conn, dbt_role)
        user = _current_user(conn)
        logs = (tables.attempts[0], tables.reviews[0], tables.removals[0])
        for schema in dict.fromkeys((*logs, *DBT_SCHEMAS)):
            if _owner(conn, "select nspowner from pg_namespace where nspname = %s", schema):
                continue
            try:
                conn.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))
            except psycopg.errors.InsufficientPrivilege:
                raise DatabaseError(
                    f"{user} may not create schema {schema} (CREATE on the database): as the"
                    " database's owner, run what `kpi-red grants --for database` prints"
                ) from None
            created.append(schema)
        attempts = ".".join(tables.attempts)
        owner = _owner(
            conn,
            "select relowner from pg_class"
            " where oid = to_regclass(format('%%I.%%I', %s::text, %s::text))",
            *tables.attempts,
        )
        if owner and not owner[1]:
            raise DatabaseError(
                f"{attempts} belongs to {owner[0]}, not {user}: as {owner[0]} or a superuser,"
                f" run: alter table {qualified(tables.attempts).as_string(conn)}"
                f" owner to {sql.Identifier(user).as_string(conn)};"
            )
        if not owner:
            created.append(attempts)
        template = resources.files("matcher").joinpath("sql/init.sql").read_text()
        conn.execute(
            sql.SQL(template).format(
                attempts_schema=sql.Identifier(tables.attempts[0]),
                attempts=qualified(tables.attempts),
            )
        )
        # the reviewers' logs (``kpi-red review``, ``kpi-red unlink``)
        review_logs = resources.files("matcher").joinpath("sql/review/init.sql").read_text()
        conn.execute(
            sql.SQL(review_logs).format(
                reviews=qualified(tables.reviews), removals=qualified(tables.removals)
            )
        )
    return created


def _become(conn: psycopg.Connection, role: str) -> None:
    """``set local role``, or a one-line error naming who may not act as whom."""
    user = _current_user(conn)
    try:
        with conn.transaction():
            conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
    except (psycopg.errors.InsufficientPrivilege, psycopg.errors.InvalidParameterValue):
        raise DatabaseError(
            f"{user} may not act as {role} (var dbt_role): run it as {role}, or as a member of it"
        ) from None


def _current_user(conn: psycopg.Connection) -> str:
    return str(conn.execute("select current_user").fetchone()[0])  # type: ignore[index]


def _owner(conn: psycopg.Connection, query: str, *params: str) -> tuple[str, bool] | None:
    """The owner of the object ``query`` finds (a select of one owner oid), and whether
    the current role may act as it; None when there is no such object."""
    row = conn.execute(
        f"select owner::regrole::text, pg_has_role(owner, 'USAGE') from ({query}) as found (owner)",  # noqa: S608
        params,
    ).fetchone()
    return (str(row[0]), bool(row[1])) if row else None


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


# --- matcher: worklist, stream, candidates, writes (`kpi-red match`) ---------------------
# A run copies the eligible backlog into its session's worklist (a short statement), then
# streams the worklist with its candidates through a server-side cursor that reads no
# view dbt replaces; each batch is one transaction on a writer connection: the decisions
# staged by ``COPY``, advisory locks on their leads, then one statement that re-checks
# them against the live sources and writes links, origin and the attempts log. Never a
# statement per lead.

LOCK_NAMESPACE = 0x4B52  # "KR": the seed of the leads' 64-bit lock keys (LEAD_LOCK_KEY)
LEAD_LOCK_KEY = f"hashtextextended({{lead}}, {LOCK_NAMESPACE})"
"""A lead's advisory lock key: a 64-bit hash, so two leads held at once (two writers of
a run hold thousands) practically never share a key; seeded with ``LOCK_NAMESPACE``."""
CYCLE_LOCK = (0x4B53, 1)  # the session lock that keeps two `kpi-red cycle`s apart
PERSON_KEYS_RELATION = ("kpi_red_intermediate", "int_person_keys")
PERSON_KEYS_CHANGED_RELATION = ("kpi_red_intermediate", "int_person_keys_changed")
PERSON_IDENTIFIERS_RELATION = ("kpi_red_intermediate", "int_person_identifiers")
PERSON_DELETIONS_RELATION = ("kpi_red_intermediate", "int_person_identifier_deletions")
JUNK_RELATION = ("kpi_red_intermediate", "int_junk_identifiers")
BUILT_MARKER_RELATION = ("kpi_red_intermediate", "int_lead_keys")
"""An incremental table of the project: it exists from the first ``dbt build`` on, and a
build never drops it (only ``--full-refresh`` swaps it)."""
ORIGIN_TAG = "cabinet_lead"
REBUILD_WAIT_SECONDS = 120.0
"""How long a read waits for a dbt view that a running build dropped and will re-create."""
REBUILD_LOCK_TIMEOUT = "100ms"
"""A read of dbt's views gives up a lock it waits for this long, and tries again: PostgreSQL
locks a view before the relations under it, and a build replacing one locks them the
other way round (`drop ... cascade`), so a read that waited could deadlock with it."""


def sql_sections(name: str) -> dict[str, str]:
    """``matcher/sql/<name>`` split at its ``-- name: <section>`` lines."""
    text = resources.files("matcher").joinpath(f"sql/{name}").read_text()
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        if line.startswith("-- name: "):
            current = sections.setdefault(line.removeprefix("-- name: ").strip(), [])
        else:
            current.append(line)
    return {name: "\n".join(lines) for name, lines in sections.items()}


def _statement(file: str, section: str, **names: sql.Composable) -> sql.Composed:
    return sql.SQL(sql_sections(file)[section]).format(**names)


T = TypeVar("T")


def through_rebuilds(
    conn: psycopg.Connection,
    read: Callable[[], T],
    *,
    built: tuple[str, str] = BUILT_MARKER_RELATION,
    wait: float | None = None,
) -> T:
    """``read()`` in a transaction of its own, tried again while a running ``dbt build``
    has dropped a view it reads (a view built on one dbt replaced goes with it until its
    own model runs) or holds a lock it needs for longer than ``REBUILD_LOCK_TIMEOUT``
    (given up at once, so the build never waits on a deadlock). A relation missing while
    ``built`` (a relation every build keeps) does not exist either fails at once: the
    project was never built. ``wait``: at most ``REBUILD_WAIT_SECONDS``."""
    wait = REBUILD_WAIT_SECONDS if wait is None else wait
    deadline = time.monotonic() + wait
    delay = 0.1
    while True:
        try:
            with conn.transaction():
                conn.execute(f"set local lock_timeout = '{REBUILD_LOCK_TIMEOUT}'")
                return read()
        except psycopg.errors.UndefinedTable as exc:
            if not _exists(conn, built):
                raise
            if time.monotonic() >= deadline:
                missing = exc.diag.message_primary or "a dbt relation is missing"
                raise DatabaseError(
                    f"{missing}: a dbt build is re-creating it (still missing after"
                    f" {wait:.0f} s); retry when the build has finished"
                ) from None
        except (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected):
            if time.monotonic() >= deadline:
                raise DatabaseError(
                    f"another session holds a lock on what the matcher reads (a dbt build"
                    f" replacing a view?), still after {wait:.0f} s; retry when it is done"
                ) from None
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


def _exists(conn: psycopg.Connection, relation: tuple[str, str]) -> bool:
    row = conn.execute(
        "select to_regclass(%s) is not null", (qualified(relation).as_string(conn),)
    ).fetchone()
    return bool(row and row[0])


class BacklogLead(NamedTuple):
    """One eligible lead as streamed: its usable keys, the newest attempt seen, and the
    registry persons holding each key (a tuple: the stream makes tens of thousands per
    second)."""

    lead_source_pk: str
    created_at: datetime
    identifiers_hash: str
    full_name: str | None
    phone_key: str | None
    document_key: str | None
    email_key: str | None
    last_attempt_id: int
    candidate_key_types: list[str] | None = None
    """Per candidate, in the lists' order: the key type it holds the lead's value of."""
    candidate_person_keys: list[str] | None = None
    candidate_names: list[str | None] | None = None
    candidate_hashes: list[str] | None = None
    """The candidate's ``identifiers_hash`` when dbt normalized its keys."""
    rejected_person_keys: list[str] | None = None
    """The persons a reviewer rejected for the lead as it is (its identifiers hash)."""


def create_worklist(conn: psycopg.Connection) -> None:
    """The session's worklist table (temporary; needs TEMPORARY on the database)."""
    conn.execute(_statement("stream.sql", "create"))


def load_worklist(
    conn: psycopg.Connection, *, limit: int | None, after: tuple[datetime, str] | None = None
) -> int:
    """Replace the worklist with eligible leads from the live backlog view and commit (a
    dbt build waits for this statement at most, never for a run): with ``limit``, the
    ``limit`` oldest after ``after`` (``(lead_created_at, lead_source_pk)``), else all of
    them, unsorted. Returns how many."""
    backlog = qualified(BACKLOG_RELATION)

    def read() -> int:
        conn.execute(_statement("stream.sql", "clear"))
        if limit is None:
            cursor = conn.execute(_statement("stream.sql", "all", backlog=backlog))
        else:
            created_at, lead = after or (datetime.min.replace(tzinfo=UTC), "")
            cursor = conn.execute(
                _statement("stream.sql", "oldest", backlog=backlog),
                {"after_created_at": created_at, "after_lead": lead, "limit": limit},
            )
        return cursor.rowcount

    return through_rebuilds(conn, read)


def stream_worklist(
    conn: psycopg.Connection, *, batch_size: int, tables: Tables | None = None
) -> Generator[list[BacklogLead], None, None]:
    """The worklist with its candidates, in its order, a page (``batch_size`` leads) per
    statement on the autocommit connection ``conn``: memory flat, and no transaction open
    between pages, so nothing a dbt build replaces (``int_person_keys`` with
    ``--full-refresh``) waits on the run, and no idle transaction can time out."""
    statement = _statement(
        "stream.sql",
        "page",
        person_keys=qualified(PERSON_KEYS_RELATION),
        reviews=qualified((tables or Tables()).reviews),
    )
    read = 0
    with conn.cursor(binary=True) as cursor:
        while True:
            rows = cursor.execute(statement, {"after": read, "size": batch_size}).fetchall()
            if rows:
                yield [BacklogLead._make(row) for row in rows]
            if len(rows) < batch_size:
                return
            read += len(rows)


def count_eligible(conn: psycopg.Connection) -> int:
    """How many leads are eligible now (for a progress bar)."""
    statement = sql.SQL("select count(*) from {} where is_eligible").format(
        qualified(BACKLOG_RELATION)
    )
    return through_rebuilds(conn, lambda: int(conn.execute(statement).fetchone()[0]))  # type: ignore[index]


def load_junk(conn: psycopg.Connection) -> frozenset[tuple[str, str]]:
    """``(key_type, key_value)`` pairs treated as absent, as dbt materialized them."""
    statement = sql.SQL("select key_type, key_value from {}").format(qualified(JUNK_RELATION))
    return through_rebuilds(
        conn, lambda: frozenset((row[0], row[1]) for row in conn.execute(statement))
    )


class ChangedPersonKey(NamedTuple):
    """A key of a registry person changed since the last build, normalized now."""

    person_key: str
    key_type: str
    key_value: str | None
    full_name: str | None
    identifiers_hash: str


def load_changed_persons(conn: psycopg.Connection, *, limit: int) -> list[ChangedPersonKey]:
    """The keys of the registry persons changed since ``int_person_keys`` was built
    (dbt's live view ``int_person_keys_changed``: the same macros), for at most ``limit``
    persons (three rows each); more than that raises ``TooManyChangesError``."""
    statement = sql.SQL(
        "select person_key, key_type, key_value, full_name, identifiers_hash from {}"
        " order by person_key, key_type limit %s"
    ).format(qualified(PERSON_KEYS_CHANGED_RELATION))
    rows = through_rebuilds(conn, lambda: conn.execute(statement, (limit * 3 + 1,)).fetchall())
    if len(rows) > limit * 3:
        raise TooManyChangesError(
            f"more than {limit:,} registry persons changed since the last dbt build: run"
            " `dbt build` first (the matcher reads the changed ones live, up to that many)"
        )
    return [ChangedPersonKey._make(row) for row in rows]


class TooManyChangesError(DatabaseError):
    """Too many registry persons changed since the last build to read them live."""


NAME_SAMPLE_PAGES = 800
"""Blocks of ``int_person_keys`` the name sample reads: some 25,000 persons, whatever the
size of the registry (a few milliseconds)."""


def sample_person_names(conn: psycopg.Connection) -> list[str | None]:
    """Registry names, one per person, from a repeatable block sample of
    ``int_person_keys`` (all of it when small): what ``TokenWeights`` counts words in."""
    template = resources.files("matcher").joinpath("sql/name_sample.sql").read_text()
    statement = sql.SQL(template).format(
        person_keys=qualified(PERSON_KEYS_RELATION),
        person_keys_name=sql.Literal(".".join(PERSON_KEYS_RELATION)),
        target_pages=sql.Literal(NAME_SAMPLE_PAGES),
    )
    return [row[0] for row in conn.execute(statement)]


def tune_lookups(conn: psycopg.Connection) -> None:
    """The matcher's statements are index lookups (the stream's probes, the one-edit
    queries) and one batch's writes: launching parallel workers costs more than they
    save (measured: a 2,000-lead batch's candidate lookup took half the time without)."""
    conn.execute("set max_parallel_workers_per_gather = 0")


def near_candidates_statement(key_types: Sequence[str]) -> sql.Composed:
    """``matcher/sql/near_candidates.sql`` once per key type, ``union all``: two array
    parameters each (the values one edit off, the lead values)."""
    template = resources.files("matcher").joinpath("sql/near_candidates.sql").read_text()
    return sql.SQL("\nunion all\n").join(
        sql.SQL("({})").format(
            sql.SQL(template).format(
                person_keys=qualified(PERSON_KEYS_RELATION),
                deletions=qualified(PERSON_DELETIONS_RELATION),
                junk=qualified(JUNK_RELATION),
                key_type=sql.Literal(key_type),
            )
        )
        for key_type in key_types
    )


NearRow = tuple[str, str, str, str, str | None, str]
"""``(key_type, found_by, key_value, person_key, full_name, identifiers_hash)``: a person
one edit from a batch's value (``fetch_near_candidates``)."""


def fetch_near_candidates(
    conn: psycopg.Connection,
    probes: Sequence[tuple[str, str]],
    variants: Sequence[tuple[str, str]],
    *,
    live: LiveRegistry | None = None,
) -> list[NearRow]:
    """The registry persons one edit from a batch's values (``matcher/sql/
    near_candidates.sql``): ``probes`` (``(key_type, value)``) are the values one
    character substituted, swapped or left out, looked up as they are; ``variants`` the
    lead values themselves, looked up in the deletion table (a person's value one
    character longer). The persons changed since the build (``live``) are taken as they
    are now, not as the build stored them.

    One statement, two index scans per key type; every row is one edit from a lead's
    value. A value held by two or more persons is shared and never a near candidate."""
    by_type: dict[str, tuple[list[str], list[str]]] = {}
    for key_type, value in probes:
        by_type.setdefault(key_type, ([], []))[0].append(value)
    for key_type, value in variants:
        by_type.setdefault(key_type, ([], []))[1].append(value)
    if not by_type:
        return []
    statement = near_candidates_statement(list(by_type))
    # sorted: consecutive lookups land on the same index pages
    params = [sorted(values) for pair in by_type.values() for values in pair]
    rows: list[NearRow] = conn.execute(statement, params).fetchall()
    if live:
        rows = [row for row in rows if row[3] not in live.changed]
        rows.extend(live.near_rows(probes, variants))
    holders: dict[tuple[str, str], set[str]] = {}
    for key_type, _found_by, key_value, person_key, _full_name, _hash in rows:
        holders.setdefault((key_type, key_value), set()).add(person_key)
    return [row for row in rows if len(holders[(row[0], row[2])]) == 1]


class StagedDecision(NamedTuple):
    """One decided lead, in the order of the staging table's ``COPY`` columns (a tuple:
    tens of thousands are made per second)."""

    lead_source_pk: str
    last_attempt_id: int
    """The newest attempt of the lead when the stream read it."""
    lead_created_at: datetime | None
    outcome: str
    fail_reason: str | None
    match_rule: str | None
    match_score: float | None
    person_key: str | None
    evidence: str
    """JSON text."""
    identifiers_hash: str
    """The lead's, when the stream read it: the write checks the live lead against it."""
    person_identifiers_hash: str | None
    """The chosen person's, when the decision read its keys (None unless matched): the
    write checks the live registry row against it."""


STAGE_TABLE = "kpi_red_batch"
STAGE_TYPES = [
    "text",
    "int8",
    "timestamptz",
    "text",
    "text",
    "text",
    "float4",
    "text",
    "text",
    "text",
    "text",
]
"""The staging table's column types: a binary ``COPY`` (several times cheaper in Python
than text, which escapes every value; the evidence becomes jsonb when it is written)."""


def stage(conn: psycopg.Connection, rows: Iterable[StagedDecision]) -> None:
    """``COPY`` a batch's decisions into the session's staging table (temporary, emptied
    at every commit or rollback): one statement for the batch, whatever its size."""
    conn.execute(_statement("write_batch.sql", "stage", stage=sql.Identifier(STAGE_TABLE)))
    copy = sql.SQL("copy pg_temp.{stage} from stdin (format binary)").format(
        stage=sql.Identifier(STAGE_TABLE)
    )
    with conn.cursor() as cursor, cursor.copy(copy) as writer:
        writer.set_types(STAGE_TYPES)
        for row in rows:
            writer.write_row(row)


def lock_staged(conn: psycopg.Connection) -> set[str]:
    """Transaction-level advisory locks on the staged leads; the leads another matcher
    holds are dropped from the stage and returned. The locks vanish at commit, rollback
    or a dropped connection (a killed matcher)."""
    statement = _statement(
        "write_batch.sql",
        "lock",
        stage=sql.Identifier(STAGE_TABLE),
        lock_key=sql.SQL(LEAD_LOCK_KEY.format(lead="staged.lead_source_pk")),
    )
    return {row[0] for row in conn.execute(statement).fetchall()}


SKIP_REASONS = (
    "attempted_meanwhile",
    "lead_deleted",
    "claimed_meanwhile",
    "linked_meanwhile",
    "changed_since_read",
    "rejected_meanwhile",
)
"""Why the write left a staged lead out, first match wins: another matcher attempted it
since the stream read it; the lead is gone; it was claimed; it got a link (a lead decided
failed; one decided matched is recorded, see ``StagedWrite.linked_meanwhile``); its
identifiers changed; a reviewer rejected the chosen person since the stream read the lead.
None of these gets an attempts-log row: the lead left the backlog,
or the next run decides it on what it is then."""


class StagedWrite(NamedTuple):
    links_written: int
    origins_written: int
    skipped: dict[str, str]
    """Leads left out, with their reason (one of ``SKIP_REASONS``)."""
    person_changed: list[str]
    """Leads decided matched whose person's registry row changed since the decision read
    it: recorded as failed ``person_changed``, no link."""
    linked_meanwhile: list[str]
    """Leads decided matched whose link insert found someone else's link: nothing
    written for them yet (the caller records them)."""
    written_at: datetime
    """The time stamped on every row of the batch."""


def identifiers_hash_sql(alias: str) -> sql.Composable:
    """``normalize.IDENTIFIERS_HASH_SQL`` over the raw columns of ``alias`` (a lead or a
    registry row: the same five columns)."""
    return sql.SQL(IDENTIFIERS_HASH_SQL).format(
        **{column: sql.Identifier(alias, column) for column in IDENTIFIER_COLUMNS}
    )


def write_staged(
    conn: psycopg.Connection, *, tables: Tables, run_id: str, started_at: datetime
) -> StagedWrite:
    """Check the staged (and locked) batch against the live sources and write it, in one
    statement (``matcher/sql/write_batch.sql``): links for the matched leads (never
    overwriting one), origin rows for linked persons that have none, one attempts-log row
    per lead settled, every column set. Runs after ``lock_staged``, in a new statement,
    so what an earlier lock holder committed is visible."""
    statement = _statement(
        "write_batch.sql",
        "write",
        stage=sql.Identifier(STAGE_TABLE),
        leads=qualified(tables.leads),
        registry=qualified(tables.registry),
        claims=qualified(tables.claims),
        links=qualified(tables.links),
        origin=qualified(tables.origin),
        attempts=qualified(tables.attempts),
        reviews=qualified(tables.reviews),
        lead_hash=identifiers_hash_sql("lead_rows"),
        person_hash=identifiers_hash_sql("person_rows"),
    )
    row = conn.execute(
        statement,
        {
            "source_table": tables.lead_source_table,
            "linked_by": tables.linked_by,
            "origin_tag": ORIGIN_TAG,
            "run_id": run_id,
            "started_at": started_at,
        },
    ).fetchone()
    assert row is not None
    links, origins, _attempts, skipped, person_changed, linked_meanwhile, written_at = row
    return StagedWrite(
        links_written=int(links),
        origins_written=int(origins),
        skipped=dict(entry.rsplit(" ", 1) for entry in skipped),
        person_changed=person_changed,
        linked_meanwhile=linked_meanwhile,
        written_at=written_at,
    )


def existing_links(
    conn: psycopg.Connection, *, tables: Tables, lead_pks: Sequence[str]
) -> dict[str, str]:
    """``{lead: person_key}`` of the leads among ``lead_pks`` that have a link."""
    if not lead_pks:
        return {}
    rows = conn.execute(
        sql.SQL(
            "select source_pk, person_key from {links}"
            " where source_table = %s and source_pk = any(%s::text[])"
        ).format(links=qualified(tables.links)),
        (tables.lead_source_table, list(lead_pks)),
    ).fetchall()
    return {row[0]: row[1] for row in rows}


def record_outcomes(
    conn: psycopg.Connection,
    *,
    tables: Tables,
    run_id: str,
    started_at: datetime,
    written_at: datetime,
    decisions: Sequence[StagedDecision],
) -> int:
    """Decided leads written without staging (the rare leads linked by someone else
    meanwhile): origin rows for the matched ones' persons that have none, then one
    attempts-log row per lead by ``COPY``, stamped ``written_at``. Returns how many
    origin rows were added."""
    matched = [decision for decision in decisions if decision.outcome == "matched"]
    added = 0
    if matched:
        row = conn.execute(
            _statement(
                "write_batch.sql", "linked_meanwhile_origins", origin=qualified(tables.origin)
            ),
            {
                "origin_tag": ORIGIN_TAG,
                "written_at": written_at,
                "person_keys": [decision.person_key for decision in matched],
                "lead_pks": [decision.lead_source_pk for decision in matched],
                "created_at": [decision.lead_created_at for decision in matched],
            },
        ).fetchone()
        added = int(row[0]) if row else 0
    if decisions:
        copy = sql.SQL(
            "copy {attempts} (run_id, lead_source_pk, outcome, fail_reason, match_rule,"
            " match_score, person_key, evidence, identifiers_hash, started_at, attempted_at)"
            " from stdin"
        ).format(attempts=qualified(tables.attempts))
        with conn.cursor() as cursor, cursor.copy(copy) as rows:
            for decision in decisions:
                rows.write_row(
                    (
                        run_id,
                        decision.lead_source_pk,
                        decision.outcome,
                        decision.fail_reason,
                        decision.match_rule,
                        decision.match_score,
                        decision.person_key,
                        decision.evidence,
                        decision.identifiers_hash,
                        started_at,
                        written_at,
                    )
                )
    return added


def analyze_written(conn: psycopg.Connection, *, tables: Tables) -> None:
    """Fresh statistics on the attempts log and the links after a run's writes, so the
    next run's plans (the backlog view's attempt folds and anti-joins, the writers'
    re-check probes) see the rows just added instead of an empty table. A role that may
    not analyze them gets a warning from PostgreSQL, not an error."""
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
            insert into {origin} (
                person_key, origin_tag, origin_source_pk, origin_created_at, recorded_at
            )
            select person_key, origin_tag, origin_source_pk, origin_created_at, now()
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


GRANT_PARTS = ("database", "upstream", "project")
"""The parts of ``kpi-red grants``, each run by the owner of its objects: the DBA, the
owner of the upstream tables, the dbt role."""


def grant_statements(tables: Tables, *, roles: Roles, part: str) -> str:
    """One part of ``matcher/sql/grants.sql`` with every schema, table and role quoted."""
    template = sql_sections("grants.sql")[part]
    for role in (roles.dbt, roles.matcher, roles.reader, roles.reviewer):
        if "$$" in role or not role:
            raise DatabaseError(f"role name {role!r} cannot be used (empty, or has $$)")

    def identifiers(names: Iterable[str]) -> sql.Composable:
        return sql.SQL(", ").join(sql.Identifier(name) for name in dict.fromkeys(names))

    upstream = (tables.leads, tables.registry, tables.links, tables.origin, tables.claims)
    matcher_dbt_schemas = [BACKLOG_RELATION[0], PERSON_KEYS_RELATION[0]]
    statement = sql.SQL(template.strip() + "\n").format(
        dbt_role=sql.Identifier(roles.dbt),
        matcher_role=sql.Identifier(roles.matcher),
        reader_role=sql.Identifier(roles.reader),
        dbt_role_name=sql.Literal(roles.dbt),
        matcher_role_name=sql.Literal(roles.matcher),
        reader_role_name=sql.Literal(roles.reader),
        reviewer_role=sql.Identifier(roles.reviewer),
        reviewer_role_name=sql.Literal(roles.reviewer),
        reviewer_upstream_schemas=identifiers(
            name[0]
            for name in (tables.leads, tables.registry, tables.claims, tables.links, tables.origin)
        ),
        reviews_schema=sql.Identifier(tables.reviews[0]),
        reviews=qualified(tables.reviews),
        removals=qualified(tables.removals),
        review_schemas=identifiers((tables.attempts[0], tables.reviews[0], tables.removals[0])),
        upstream_schemas=identifiers(name[0] for name in upstream),
        matcher_upstream_schemas=identifiers(
            name[0]
            for name in (tables.leads, tables.registry, tables.claims, tables.links, tables.origin)
        ),
        leads=qualified(tables.leads),
        registry=qualified(tables.registry),
        links=qualified(tables.links),
        origin=qualified(tables.origin),
        claims=qualified(tables.claims),
        attempts_schema=sql.Identifier(tables.attempts[0]),
        attempts=qualified(tables.attempts),
        matcher_dbt_schemas=identifiers(matcher_dbt_schemas),
        reader_schema=sql.Identifier(BACKLOG_RELATION[0]),
    )
    return statement.as_string(None)


def doctor_rows(
    conn: psycopg.Connection, section: str, params: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """One section of ``matcher/sql/doctor.sql`` (catalog reads only), as dicts."""
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cursor:
        cursor.execute(sql.SQL(sql_sections("doctor.sql")[section]), params)
        return cursor.fetchall()


# --- panel ---
# `kpi-red metrics` and `kpi-red serve` read two dbt models, nothing else, in a read-only
# transaction: a role with SELECT on them suffices.


METRICS_RELATION = ("ops", "v_cabinet_kpi_red_recovery_metrics_daily")
BACKLOG_RELATION = ("ops", "v_cabinet_kpi_red_backlog")
SETTINGS_RELATION = ("ops", "kpi_red_settings")


class MetricsNotBuiltError(DatabaseError):
    """The metrics or backlog model does not exist: dbt has not been built here yet."""


@dataclass(frozen=True)
class PanelRows:
    """What the panel shows: the newest days of metrics and, when asked for, the live
    size of the backlog."""

    metrics: list[dict[str, Any]]
    live_backlog: int | None
    """``count(*)`` of the backlog view now; None unless ``live`` was asked for."""
    local_today: date
    time_zone: str
    """The zone the model's days are in: the ``metrics_time_zone`` dbt built it with."""


def read_panel_rows(
    conninfo: str, *, days: int, time_zone: str | None = None, live: bool = False
) -> PanelRows:
    """The last ``days`` metric rows (up to the newest metric_date) and, with ``live``,
    the backlog view's row count (which reads every lead: a second at millions). The
    days are in ``time_zone``, by default the one the last build used
    (``ops.kpi_red_settings``)."""
    from psycopg.rows import dict_row

    metrics = qualified(METRICS_RELATION)
    backlog = qualified(BACKLOG_RELATION)

    def read(conn: psycopg.Connection) -> tuple[list[dict[str, Any]], int | None, date, str]:
        live_backlog: int | None = None
        with conn.cursor(row_factory=dict_row) as cursor:
            cursor.execute("set local statement_timeout = '30s'")
            cursor.execute(
                sql.SQL(
                    "select * from {metrics} where metric_date >"
                    " (select max(metric_date) from {metrics}) - %s::integer"
                    " order by metric_date"
                ).format(metrics=metrics),
                (days,),
            )
            rows = cursor.fetchall()
            zone = time_zone or str(_built_setting(cursor, "metrics_time_zone") or "UTC")
            cursor.execute("select (now() at time zone %s)::date as local_today", (zone,))
            local_today = cursor.fetchone()["local_today"]  # type: ignore[index]
            if live:
                cursor.execute(sql.SQL("select count(*) as leads from {}").format(backlog))
                live_backlog = int(cursor.fetchone()["leads"])  # type: ignore[index]
        return rows, live_backlog, local_today, zone

    with connect(conninfo) as conn:
        conn.read_only = True
        try:
            # a view a running build dropped and re-creates is waited for
            rows, live_backlog, local_today, zone = through_rebuilds(
                conn, lambda: read(conn), built=METRICS_RELATION
            )
        except psycopg.errors.UndefinedTable as exc:
            missing = exc.diag.message_primary or "a model is missing"
            raise MetricsNotBuiltError(
                f"the metrics are not built yet: {missing} (run `dbt build` first)"
            ) from None
        except psycopg.errors.OperationalError:
            raise
        except psycopg.Error as exc:
            raise DatabaseError(f"cannot read the metrics: {_first_line(exc, conninfo)}") from None
    return PanelRows(
        metrics=rows, live_backlog=live_backlog, local_today=local_today, time_zone=zone
    )


def _built_setting(cursor: psycopg.Cursor[Any], name: str) -> Any:
    """One var as the last ``dbt build`` used it (``ops.kpi_red_settings``)."""
    cursor.execute(
        sql.SQL("select setting_value from {} where setting_name = %s").format(
            qualified(SETTINGS_RELATION)
        ),
        (name,),
    )
    row = cursor.fetchone()
    if row is None:
        return None
    return row["setting_value"] if isinstance(row, dict) else row[0]


def missing_relations(conn: psycopg.Connection) -> list[str]:
    """The dbt relations the matcher reads that do not exist (none after a good build)."""
    names = [
        BACKLOG_RELATION,
        PERSON_KEYS_RELATION,
        PERSON_IDENTIFIERS_RELATION,
        PERSON_DELETIONS_RELATION,
        PERSON_KEYS_CHANGED_RELATION,
        JUNK_RELATION,
        SETTINGS_RELATION,
    ]
    rows = conn.execute(
        "select name from unnest(%s::text[], %s::text[]) as relation (schema, name)"
        " where to_regclass(format('%%I.%%I', relation.schema, relation.name)) is null",
        ([schema for schema, _ in names], [name for _, name in names]),
    ).fetchall()
    missing = {row[0] for row in rows}
    return [".".join(name) for name in names if name[1] in missing]


def missing_sources(conn: psycopg.Connection, *, tables: Tables) -> list[str]:
    """The upstream tables every write re-checks live (leads, registry, claims) that do not
    exist: without them the matcher cannot tell that a lead is still unclaimed."""
    names = [tables.leads, tables.registry, tables.claims]
    rows = conn.execute(
        "select to_regclass(format('%%I.%%I', schema, name)) is null"
        " from unnest(%s::text[], %s::text[]) with ordinality as relation (schema, name, n)"
        " order by n",
        ([schema for schema, _ in names], [name for _, name in names]),
    ).fetchall()
    return [".".join(name) for name, (missing,) in zip(names, rows, strict=True) if missing]


def read_dbt_settings(conn: psycopg.Connection) -> dict[str, Any] | None:
    """Every var as the last ``dbt build`` used it (``ops.kpi_red_settings``), or None
    when no build has made that view yet."""
    try:
        with conn.transaction():
            rows = conn.execute(
                sql.SQL("select setting_name, setting_value from {}").format(
                    qualified(SETTINGS_RELATION)
                )
            ).fetchall()
    except psycopg.errors.UndefinedTable:
        return None
    return {str(name): value for name, value in rows}


# --- kpi-red demo -----------------------------------------------------------------------


def demo_sql_sections() -> dict[str, str]:
    """``matcher/sql/demo.sql`` split at its ``-- name: <section>`` lines."""
    return sql_sections("demo.sql")


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
        links_schema=sql.Identifier(tables.links[0]),
        origin_schema=sql.Identifier(tables.origin[0]),
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
