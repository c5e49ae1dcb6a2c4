"""The dbt models over simulated days: the backlog, its history, the queue and the metrics.

One throwaway database lives through four days (D-3 .. D, America/Lima). Days D-3 .. D-1
are loaded and built with ``as_of = D-1``; day D is added and built again (incremental);
a third build with no new data and a ``--full-refresh`` must give the same rows.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from conftest import Database, PartialIndex
from psycopg import sql
from scenario_support import SOURCE_DDL

from matcher import dbt

LIMA = ZoneInfo("America/Lima")
DAY = date(2024, 5, 10)
MARTS = {
    "queue": ("ops.cabinet_kpi_red_recovery_queue", "lead_source_pk"),
    "metrics": ("ops.v_cabinet_kpi_red_recovery_metrics_daily", "metric_date"),
    "intervals": ("kpi_red_intermediate.int_backlog_intervals", "lead_source_pk, interval_number"),
}


IDENTIFIERS_HASH = """md5(concat_ws(chr(31), coalesce(full_name, ''), coalesce(phone, ''),
    coalesce(document_type, ''), coalesce(document_number, ''), coalesce(email, '')))"""


def at(day_offset: int, hour: int) -> datetime:
    """An instant on day D+day_offset, local (Lima) time."""
    return datetime.combine(DAY + timedelta(days=day_offset), time(hour), tzinfo=LIMA)


@dataclass(frozen=True)
class Scenario:
    database: Database

    def lead(self, lead_id: str, created_at: datetime, *, phone: str | None = None) -> None:
        number = lead_id[1:].zfill(8)
        self.database.execute(
            "insert into cabinet.leads (lead_id, created_at, full_name, phone, document_type,"
            " document_number, email) values (%s, %s, %s, %s, 'DNI', %s, %s)",
            (lead_id, created_at, f"Lead {lead_id}", phone or f"98765{number[-4:]}", number, None),
        )

    def junk_lead(self, lead_id: str, created_at: datetime) -> None:
        self.database.execute(
            "insert into cabinet.leads (lead_id, created_at, full_name, phone, email)"
            " values (%s, %s, 'Nadie', '999999999', 'test@test.com')",
            (lead_id, created_at),
        )

    def attempt(self, lead_id: str, when: datetime, *, fail_reason: str | None = None) -> None:
        outcome = "failed" if fail_reason else "matched"
        person = None if fail_reason else f"P{lead_id[1:]}"
        self.database.execute(
            f"""insert into kpi_red.match_attempts (run_id, lead_source_pk, outcome, fail_reason,
                match_rule, match_score, person_key, identifiers_hash, started_at, attempted_at)
            select %s, lead_id, %s, %s, %s, %s, %s, {IDENTIFIERS_HASH}, %s, %s
            from cabinet.leads where lead_id = %s""",  # noqa: S608 (a constant)
            (
                f"run-{when:%m%d}",
                outcome,
                fail_reason,
                None if fail_reason else "document",
                None if fail_reason else 100,
                person,
                when - timedelta(minutes=1),
                when,
                lead_id,
            ),
        )
        if person:
            self.link(lead_id, when, person=person, linked_by="kpi-red")

    def link(self, lead_id: str, when: datetime, *, person: str, linked_by: str) -> None:
        self.database.execute(
            "insert into canon.identity_links (source_table, source_pk, person_key, match_rule,"
            " match_score, linked_at, linked_by, run_id)"
            " values ('cabinet_leads', %s, %s, 'document', 100, %s, %s, 'r')",
            (lead_id, person, when, linked_by),
        )

    def claim(self, lead_id: str, when: datetime) -> None:
        self.database.execute(
            "insert into claims.lead_claims values (%s, %s, %s)", (f"C-{lead_id}", lead_id, when)
        )

    def build(self, *args: str, as_of: date, command: str = "build") -> None:
        self.database.dbt(command, *args, dbt_vars={"as_of": as_of.isoformat()})

    def metrics(self) -> list[tuple[object, ...]]:
        return self.database.query(
            "select metric_date, backlog_start, new_backlog_in, matched_out, other_out,"
            " backlog_end from ops.v_cabinet_kpi_red_recovery_metrics_daily order by metric_date"
        )

    def checksums(self) -> dict[str, str]:
        # `loaded_at` (when a dbt run wrote the row: run metadata, not data) is left out
        statement = sql.SQL(
            "select md5(coalesce(string_agg((to_jsonb(t) - 'loaded_at')::text, '|'"
            " order by {order}), '')) from {table} as t"
        )
        return {
            name: self.database.scalar(statement.format(order=sql.SQL(order), table=sql.SQL(table)))
            for name, (table, order) in MARTS.items()
        }

    def queue_row_versions(self) -> dict[str, str]:
        rows = self.database.query(
            "select lead_source_pk, xmin::text from ops.cabinet_kpi_red_recovery_queue"
        )
        return dict(rows)  # type: ignore[arg-type]


def load_days_before(scenario: Scenario) -> None:
    """D-3: 10 leads. D-2: 2 leads, the matcher links 5 and fails 3. D-1: 6 leads, a claim
    and someone else's link."""
    for number in range(1, 11):
        if number == 7:
            scenario.junk_lead("L07", at(-3, 9))
        else:
            scenario.lead(f"L{number:02d}", at(-3, 9))
    for number in (11, 12):
        scenario.lead(f"L{number}", at(-2, 8))
    for number in range(1, 6):
        scenario.attempt(f"L{number:02d}", at(-2, 12))
    scenario.attempt("L06", at(-2, 12), fail_reason="no_match")
    scenario.attempt("L07", at(-2, 12), fail_reason="missing_identifiers")
    scenario.attempt("L08", at(-2, 12), fail_reason="conflict")
    for number in range(13, 19):
        scenario.lead(f"L{number}", at(-1, 9))
    scenario.claim("L09", at(-1, 9))
    scenario.link("L10", at(-1, 11), person="P10", linked_by="crm-sync")


def load_day(scenario: Scenario) -> None:
    """D: 1 lead, the matcher links 3 and fails 1; L06 gets a new phone; L01's link is
    removed (it matched on D-2)."""
    scenario.lead("L19", at(0, 9))
    for number in (11, 12, 13):
        scenario.attempt(f"L{number}", at(0, 12))
    scenario.attempt("L14", at(0, 12), fail_reason="low_confidence")
    scenario.database.execute(
        "update cabinet.leads set phone = '912 345 670', updated_at = %s where lead_id = 'L06'",
        (at(0, 8),),
    )
    scenario.database.execute("delete from canon.identity_links where source_pk = 'L01'")


@pytest.fixture(scope="module")
def scenario(make_database: Callable[..., Database]) -> Iterator[Scenario]:
    database = make_database()
    database.execute(SOURCE_DDL)
    yield Scenario(database)


@pytest.fixture(scope="module")
def built_days(scenario: Scenario) -> dict[str, object]:
    """Build after D-1 and after D; remember what the tests compare."""
    load_days_before(scenario)
    scenario.build(as_of=DAY - timedelta(days=1))
    before = {
        "metrics": scenario.metrics(),
        "backlog": scenario.database.scalar("select count(*) from ops.v_cabinet_kpi_red_backlog"),
        "versions": scenario.queue_row_versions(),
    }
    load_day(scenario)
    scenario.build(as_of=DAY)
    analyzed = scenario.database.scalar(
        "select (select max(loaded_at) from ops.cabinet_kpi_red_recovery_queue)"
        " = any(most_common_vals::text::timestamptz[]) from pg_stats"
        " where schemaname = 'ops' and tablename = 'cabinet_kpi_red_recovery_queue'"
        " and attname = 'loaded_at'"
    )
    return {
        "before": before,
        "versions": scenario.queue_row_versions(),
        "queue_loaded_at_analyzed": analyzed,
    }


def test_backlog_rises_when_inflow_exceeds_recovery_and_falls_when_not(
    scenario: Scenario, built_days: dict[str, object]
) -> None:
    before = built_days["before"]
    assert isinstance(before, dict)
    # metric_date, backlog_start, new_backlog_in, matched_out, other_out, backlog_end
    assert before["metrics"] == [
        (DAY - timedelta(days=3), 0, 10, 0, 0, 10),
        (DAY - timedelta(days=2), 10, 2, 5, 0, 7),  # recovery beats inflow: falls
        (DAY - timedelta(days=1), 7, 6, 0, 2, 11),  # inflow beats recovery: rises
    ]
    assert before["backlog"] == 11
    # after day D: L01's removed link makes it leave (matched) and come back on D-2
    assert scenario.metrics() == [
        (DAY - timedelta(days=3), 0, 10, 0, 0, 10),
        (DAY - timedelta(days=2), 10, 3, 5, 0, 8),
        (DAY - timedelta(days=1), 8, 6, 0, 2, 12),
        (DAY, 12, 1, 3, 0, 10),
    ]
    flags = scenario.database.query(
        "select metric_date, is_inflow_exceeding_recovery, top_fail_reason, attempts,"
        " failed_attempts, has_conflicts from ops.v_cabinet_kpi_red_recovery_metrics_daily"
        " order by metric_date"
    )
    assert flags == [
        (DAY - timedelta(days=3), True, None, 0, 0, False),
        (DAY - timedelta(days=2), False, "conflict", 8, 3, True),  # 3 reasons tie: by name
        (DAY - timedelta(days=1), True, None, 0, 0, False),
        (DAY, False, "low_confidence", 4, 1, False),
    ]


def test_backlog_view_reasons_and_queue_statuses(
    scenario: Scenario, built_days: dict[str, object]
) -> None:
    buckets = dict(
        scenario.database.query(
            "select lead_source_pk, reason_bucket from ops.v_cabinet_kpi_red_backlog"
        )
    )
    assert buckets == {
        "L01": "pending_match",  # its match was undone
        "L06": "pending_match",  # new phone since the failed attempt
        "L07": "missing_identifiers",  # junk values only
        "L08": "conflict",
        "L14": "low_confidence",
        **{f"L{number}": "pending_match" for number in range(15, 20)},
    }
    statuses = dict(
        scenario.database.query(
            "select lead_source_pk, status || coalesce(':' || fail_reason, '')"
            " from ops.cabinet_kpi_red_recovery_queue"
        )
    )
    assert statuses == {
        "L01": "pending",
        **{f"L{number:02d}": "matched" for number in (2, 3, 4, 5, 11, 12, 13)},
        "L06": "pending",
        "L07": "failed:missing_identifiers",
        "L08": "failed:conflict",
        "L09": "resolved_elsewhere",
        "L10": "resolved_elsewhere",
        "L14": "failed:low_confidence",
        **{f"L{number}": "pending" for number in range(15, 20)},
    }


def test_incremental_queue_rewrites_only_changed_leads(built_days: dict[str, object]) -> None:
    before = built_days["before"]
    assert isinstance(before, dict)
    old, new = before["versions"], built_days["versions"]
    assert isinstance(old, dict) and isinstance(new, dict)
    rewritten = {lead for lead, version in new.items() if old.get(lead) != version}
    # exactly D's changes: the queue rebuilds the leads whose intervals, keys or attempts
    # dbt rewrote since its last write (no look-back re-reads an unchanged lead)
    assert rewritten == {"L01", "L06", "L11", "L12", "L13", "L14", "L19"}


def test_a_models_post_hooks_run_in_its_transaction(built_days: dict[str, object]) -> None:
    # D's build rewrote 7 of the queue's 19 rows, more than `analyze_when_changed`'s tenth:
    # its post-hook analyzed the table only if it ran in the model's transaction (its
    # `now()` is then the rows' `loaded_at`). A pre-hook outside the transaction made dbt
    # send `commit;` itself, after which every statement committed alone: this failed.
    assert built_days["queue_loaded_at_analyzed"] is True


def test_rebuild_and_full_refresh_change_no_row(
    scenario: Scenario, built_days: dict[str, object]
) -> None:
    # the second build already ran every test; `run` is the part that writes
    first = scenario.checksums()
    scenario.build(as_of=DAY, command="run")
    assert scenario.checksums() == first
    scenario.build("--full-refresh", as_of=DAY, command="run")
    assert scenario.checksums() == first


def test_backlog_view_is_live_between_builds_and_equals_the_built_state(
    scenario: Scenario, built_days: dict[str, object]
) -> None:
    # runs after the rebuild checks: it changes the sources without building
    backlog = (
        "select lead_source_pk, reason_bucket, attempt_count, attempts_since_change,"
        " last_attempt_at, next_attempt_at, is_eligible, identifiers_hash, phone_key,"
        " document_key, email_key, has_usable_identifier"
        " from ops.v_cabinet_kpi_red_backlog order by lead_source_pk"
    )
    # L15: only junk left (its stored keys are stale now); L16: attempted since the build;
    # L20: a lead the build never saw, in a messy phone format
    scenario.database.execute(
        "update cabinet.leads set phone = '999 999 999', document_number = null,"
        " updated_at = %s where lead_id = 'L15'",
        (at(0, 13),),
    )
    scenario.attempt("L16", at(0, 14), fail_reason="no_match")
    scenario.lead("L20", at(0, 15), phone="+51 (0) 987 654 320")
    live = {row[0]: row for row in scenario.database.query(backlog)}
    assert live["L15"][1:3] == ("missing_identifiers", 0)
    assert live["L15"][8:12] == (None, None, None, False)
    assert live["L16"][1:4] == ("no_match", 1, 1)
    assert live["L20"][1] == "pending_match"
    assert live["L20"][8:10] == ("51987654320", "DNI:20")
    # what the matcher takes: the view's eligible leads, but L20, inserted with a creation
    # time long before the build (a backfill), waits for the next build
    eligible = "select lead_source_pk from ops.v_cabinet_kpi_red_backlog where is_eligible"
    due = "select lead_source_pk from kpi_red_interface.backlog_due"
    before = {row[0] for row in scenario.database.query(due)}
    assert before == {row[0] for row in scenario.database.query(eligible)} - {"L20"}
    # a build stores what the view computed live: the same rows either way
    scenario.build(as_of=DAY)
    assert {row[0]: row for row in scenario.database.query(backlog)} == live
    assert {row[0] for row in scenario.database.query(due)} == before | {"L20"}
    stored = scenario.database.query(
        "select lead_id, phone_key from kpi_red_intermediate.int_lead_identifiers__stored"
        " where lead_id in ('L15', 'L20') order by lead_id"
    )
    assert stored == [("L15", None), ("L20", "51987654320")]


def bulk_branch_ran(database: Database) -> bool:
    """Whether ``backlog_due`` took its leads in bulk (the branch whose one-time filter is
    the InitPlan ``is_bulk``) rather than one at a time (``NOT is_bulk``)."""
    plan = database.scalar(
        "explain (analyze, format json, costs off, timing off, summary off)"
        " select * from kpi_red_interface.backlog_due"
    )
    ran: dict[bool, bool] = {}
    nodes = [plan[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        nodes.extend(node.get("Plans", []))
        gate = re.fullmatch(r"\(?(NOT )?\(InitPlan \d+\)\.col1\)?", node.get("One-Time Filter", ""))
        if gate:
            ran[not gate.group(1)] = any(
                child["Actual Loops"]
                for child in node["Plans"]
                if child.get("Parent Relationship") == "Outer"  # not the InitPlan
            )
    assert set(ran) == {True, False}, plan
    assert ran[True] != ran[False]
    return ran[True]


def test_backlog_due_takes_the_same_leads_one_at_a_time_or_in_bulk(
    scenario: Scenario, built_days: dict[str, object]
) -> None:
    # after the live-view test: L17 attempted since the build (a candidate the view
    # rejects: back-off), besides the leads due at the build
    scenario.attempt("L17", at(0, 16), fail_reason="no_match")
    due = "select lead_source_pk from kpi_red_interface.backlog_due order by 1"
    eligible = (
        "select lead_source_pk from ops.v_cabinet_kpi_red_backlog where is_eligible order by 1"
    )
    taken = {}
    # 0: in bulk whenever a lead is due at the build; 1000: never
    for percent in (0, 1000):
        scenario.database.dbt(
            "run",
            "--select",
            "backlog_due",
            dbt_vars={"as_of": DAY.isoformat(), "backlog_due_bulk_percent": percent},
        )
        taken[percent] = (scenario.database.query(due), bulk_branch_ran(scenario.database))
    scenario.build("--select", "backlog_due", as_of=DAY, command="run")
    assert taken[0][0] == taken[1000][0] == scenario.database.query(eligible)
    assert taken[0][0], "no lead due: nothing compared"
    assert (taken[0][1], taken[1000][1]) == (True, False)


@pytest.fixture(scope="module")
def demo_built(make_database: Callable[..., Database]) -> Database:
    """Its own database with the demo data, built once: `demo_db` is shared read-only,
    and dbt build writes."""
    from matcher import demo

    database = make_database()
    demo.load(database.conninfo, database.settings, size="demo", seed=42, reset=False)
    result = database.dbt("build")
    assert result.succeeded and not result.failures
    return database


@pytest.mark.skipif(
    importlib.util.find_spec("matcher.demo") is None, reason="matcher/demo.py not there yet"
)
def test_demo_data_builds_with_every_dbt_test_passing(demo_built: Database) -> None:
    backlog = demo_built.scalar("select count(*) from ops.v_cabinet_kpi_red_backlog")
    today = demo_built.scalar(
        "select backlog_end from ops.v_cabinet_kpi_red_recovery_metrics_daily"
        " order by metric_date desc limit 1"
    )
    assert backlog == today > 0


@pytest.mark.skipif(
    importlib.util.find_spec("matcher.demo") is None, reason="matcher/demo.py not there yet"
)
def test_queue_test_fails_on_each_way_the_queue_can_leave_the_intervals(
    demo_built: Database,
) -> None:
    # each corruption alone, undone after: a red lead's row gone, a red lead marked out of
    # the backlog, a lead out of it marked red, and a row for a lead the intervals lack
    queue = sql.Identifier("ops", "cabinet_kpi_red_recovery_queue")
    red, out = demo_built.query(
        "select min(lead_source_pk) filter (where is_in_backlog),"
        " min(lead_source_pk) filter (where not is_in_backlog)"
        " from ops.cabinet_kpi_red_recovery_queue"
    )[0]
    columns = [
        name
        for (name,) in demo_built.query(
            "select column_name from information_schema.columns where table_schema = 'ops'"
            " and table_name = 'cabinet_kpi_red_recovery_queue' order by ordinal_position"
        )
    ]
    copied = sql.SQL(", ").join(
        sql.Literal("NOT-A-LEAD") if name == "lead_source_pk" else sql.Identifier(name)
        for name in columns
    )
    corruptions = [
        (sql.SQL("delete from {} where lead_source_pk = %s").format(queue), red),
        (
            sql.SQL("update {} set is_in_backlog = false where lead_source_pk = %s").format(queue),
            red,
        ),
        (
            sql.SQL("update {} set is_in_backlog = true where lead_source_pk = %s").format(queue),
            out,
        ),
        (
            sql.SQL("insert into {} ({}) select {} from {} where lead_source_pk = %s").format(
                queue, sql.SQL(", ").join(map(sql.Identifier, columns)), copied, queue
            ),
            red,
        ),
    ]
    with demo_built.connect() as conn:
        conn.execute(sql.SQL("create table public.queue_before as select * from {}").format(queue))
    try:
        for corruption, lead in corruptions:
            with demo_built.connect() as conn:
                conn.execute(corruption, (lead,))
            with pytest.raises(dbt.DbtError) as failed:
                demo_built.dbt("test", "--select", "assert_queue_one_row_per_red_lead")
            assert any(
                "assert_queue_one_row_per_red_lead" in line for line in failed.value.failures
            )
            with demo_built.connect() as conn:
                conn.execute(sql.SQL("delete from {}").format(queue))
                conn.execute(
                    sql.SQL("insert into {} select * from public.queue_before").format(queue)
                )
        assert demo_built.dbt("test", "--select", "assert_queue_one_row_per_red_lead").succeeded
    finally:
        demo_built.execute("drop table public.queue_before")


def test_the_hours_backlog_view_check_fails_on_the_leads_the_last_build_wrote(
    demo_built: Database,
) -> None:
    # an interval the last build wrote, closed or reopened by hand: the hour's check
    # fails, as the whole one does; the same fault on a lead an earlier build wrote is the
    # whole check's (once a day) alone
    hourly, whole = "assert_backlog_view_rows_last_written", "assert_backlog_view_rows"
    red, out = demo_built.query(
        "select min(lead_source_pk) filter (where is_open),"
        " min(lead_source_pk) filter (where not is_open and interval_number = 1"
        " and lead_source_pk not in (select lead_source_pk"
        " from kpi_red_intermediate.int_backlog_intervals where is_open))"
        " from kpi_red_intermediate.int_backlog_intervals"
    )[0]
    assert red and out

    def failing(*tests: str) -> set[str]:
        try:
            demo_built.dbt("test", "--select", *tests)
        except dbt.DbtError as error:
            return {test for test in tests if any(f"{test} (" in line for line in error.failures)}
        return set()

    demo_built.execute(
        "create table public.intervals_before as"
        " select * from kpi_red_intermediate.int_backlog_intervals"
    )
    close = (
        "update kpi_red_intermediate.int_backlog_intervals"
        " set left_at = entered_at, is_open = false, exit_kind = 'other'"
        " where lead_source_pk = %s and is_open"
    )
    reopen = (
        "update kpi_red_intermediate.int_backlog_intervals"
        " set left_at = null, is_open = true, exit_kind = null"
        " where lead_source_pk = %s and interval_number = (select max(interval_number)"
        " from kpi_red_intermediate.int_backlog_intervals where lead_source_pk = %s)"
    )
    try:
        for corruption, arguments in ((close, (red,)), (reopen, (out, out))):
            demo_built.execute(corruption, arguments)
            assert failing(hourly, whole) == {hourly, whole}
            # the same fault on a lead an earlier build wrote
            demo_built.execute(
                "update kpi_red_intermediate.int_backlog_intervals"
                " set loaded_at = loaded_at - interval '1 hour' where lead_source_pk = %s",
                (arguments[0],),
            )
            assert failing(hourly, whole) == {whole}
            demo_built.execute("delete from kpi_red_intermediate.int_backlog_intervals")
            demo_built.execute(
                "insert into kpi_red_intermediate.int_backlog_intervals"
                " select * from public.intervals_before"
            )
        assert not failing(hourly, whole)
    finally:
        demo_built.execute("drop table public.intervals_before")


def open_interval_indexes(database: Database) -> list[PartialIndex]:
    """The partial indexes that allow one open interval per lead."""
    return database.partial_indexes(
        "kpi_red_intermediate.int_backlog_intervals", "(left_at IS NULL)"
    )


@pytest.mark.skipif(
    importlib.util.find_spec("matcher.demo") is None, reason="matcher/demo.py not there yet"
)
def test_one_open_interval_per_lead_is_enforced_and_tested_without_the_index_too(
    demo_built: Database,
) -> None:
    # PostgreSQL refuses a second open interval for a lead (the post-hook's partial unique
    # index), so the test reads the catalog; without the index it reads the rows and
    # fails on one; a --full-refresh keeps exactly one such index
    ((index_name, definition),) = open_interval_indexes(demo_built)
    assert "CREATE UNIQUE INDEX" in definition
    assert "(lead_source_pk) WHERE (left_at IS NULL)" in definition
    second_open = (
        "insert into kpi_red_intermediate.int_backlog_intervals"
        " (lead_source_pk, interval_number, entered_at, left_at, entry_kind, is_open)"
        " select lead_source_pk, 99, entered_at + interval '1 second', null, entry_kind, true"
        " from kpi_red_intermediate.int_backlog_intervals where is_open"
        " order by lead_source_pk limit 1"
    )
    with pytest.raises(psycopg.errors.UniqueViolation):
        demo_built.execute(second_open)
    test = ["test", "--select", "int_backlog_intervals,test_name:at_most_one_open"]
    assert demo_built.dbt(*test).succeeded
    demo_built.execute(f"drop index {index_name}")
    demo_built.execute(second_open)
    with pytest.raises(dbt.DbtError) as failed:
        demo_built.dbt(*test)
    assert any("at_most_one_open" in line for line in failed.value.failures)
    demo_built.execute(
        "delete from kpi_red_intermediate.int_backlog_intervals where interval_number = 99"
    )
    for _ in range(2):
        assert demo_built.dbt(
            "run", "--full-refresh", "--select", "int_backlog_intervals"
        ).succeeded
        assert len(open_interval_indexes(demo_built)) == 1
    assert demo_built.dbt("build", "--select", "int_backlog_intervals").succeeded
    assert len(open_interval_indexes(demo_built)) == 1


@pytest.mark.skipif(
    importlib.util.find_spec("matcher.demo") is None, reason="matcher/demo.py not there yet"
)
def test_an_attempt_committed_after_a_build_began_is_folded_by_the_next(
    demo_built: Database,
) -> None:
    # a matcher transaction takes its attempt_id, another commits a higher one, a build
    # folds that one; the first commits after: the build after that folds it (the
    # attempts look-back), though its attempt_id is below every id the fold stored
    late_lead, other_lead = (
        lead
        for (lead,) in demo_built.query(
            "select lead_source_pk from ops.v_cabinet_kpi_red_backlog"
            " where has_usable_identifier order by lead_source_pk limit 2"
        )
    )
    insert = (
        "insert into kpi_red.match_attempts (run_id, lead_source_pk, outcome, fail_reason,"
        " identifiers_hash, started_at) select 'late-commit', lead_source_pk, 'failed',"
        " 'no_match', identifiers_hash, now() from ops.v_cabinet_kpi_red_backlog"
        " where lead_source_pk = %s returning attempt_id"
    )
    folded = (
        "select max_attempt_id from kpi_red_intermediate.int_lead_attempts__stored"
        " where lead_source_pk = %s"
    )
    with demo_built.connect() as late:
        late_id = late.execute(insert, (late_lead,)).fetchone()[0]  # type: ignore[index]
        with demo_built.connect() as other:
            other_id = other.execute(insert, (other_lead,)).fetchone()[0]  # type: ignore[index]
        assert other_id > late_id
        demo_built.dbt("run", "--select", "int_lead_attempts__stored")
        assert demo_built.scalar(folded, (other_lead,)) == other_id
        assert (demo_built.scalar(folded, (late_lead,)) or 0) < late_id
    # the late transaction commits as its connection closes
    demo_built.dbt("run", "--select", "int_lead_attempts__stored")
    assert demo_built.scalar(folded, (late_lead,)) == late_id


def test_a_log_created_before_written_xact_id_gets_it_once_and_dbt_reads_both(
    make_database: Callable[..., Database],
) -> None:
    from matcher.store import admin as store_admin
    from matcher.store import base as store_base

    database = make_database(init=False)
    # the attempts log as an earlier version created it, with one attempt
    database.execute(
        "create schema kpi_red; create table kpi_red.match_attempts ("
        " attempt_id bigint generated always as identity primary key,"
        " run_id text not null, lead_source_pk text not null, outcome text not null,"
        " fail_reason text, match_rule text, match_score real, person_key text,"
        " evidence jsonb not null default '{}'::jsonb, identifiers_hash text not null,"
        " started_at timestamptz not null, attempted_at timestamptz not null default now());"
        " insert into kpi_red.match_attempts (run_id, lead_source_pk, outcome, fail_reason,"
        " identifiers_hash, started_at) values ('old', 'L1', 'failed', 'no_match', 'h', now())"
    )
    staged = "select written_xact_id::text from kpi_red_staging.stg_kpi_red__match_attempts"
    folded = "select count(loaded_xmin) from kpi_red_intermediate.int_lead_attempts__stored"
    # dbt before any kpi-red init: the column reads as null
    database.dbt("run", "--select", "stg_kpi_red__match_attempts", "int_lead_attempts__stored")
    assert database.query(staged) == [(None,)]
    for _ in range(2):  # idempotent
        with store_base.connect(database.conninfo) as conn:
            store_admin.init_schema(conn, database.settings.tables)
    with database.connect() as conn:
        xact = conn.execute(
            "insert into kpi_red.match_attempts (run_id, lead_source_pk, outcome, fail_reason,"
            " identifiers_hash, started_at) values ('new', 'L2', 'failed', 'no_match', 'h',"
            " now()) returning written_xact_id::text, pg_current_xact_id()::text"
        ).fetchone()
    assert xact is not None and xact[0] == xact[1]
    assert (
        database.scalar(
            "select count(*) from pg_indexes where indexname = 'match_attempts_written_xact_idx'"
        )
        == 1
    )
    # the stored fold run alone, its staging view still the one built before the column:
    # the view reads null, so the fold claims no snapshot (late commits by time)
    database.dbt("run", "--select", "int_lead_attempts__stored")
    assert database.scalar(folded) == 0
    database.dbt("run", "--select", "stg_kpi_red__match_attempts")
    assert sorted(database.query(staged), key=str) == sorted([(None,), (xact[0],)], key=str)
    # rebuilt, the view reads the column: the fold of the next attempt stores its
    # snapshot's xmin
    database.execute(
        "insert into kpi_red.match_attempts (run_id, lead_source_pk, outcome, fail_reason,"
        " identifiers_hash, started_at) values ('newer', 'L3', 'failed', 'no_match', 'h', now())"
    )
    database.dbt("run", "--select", "int_lead_attempts__stored")
    assert database.scalar(folded) == 1
