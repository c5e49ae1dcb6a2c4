"""One benchmark run at one size, on fresh databases: every step, in one place.

Order (all on the same generated data):

1. a fresh database; ``demo.load`` generates the data inside PostgreSQL;
2. ``dbt parse`` (not timed: dbt's fixed start-up cost), then ``dbt build`` (full);
3. ``vacuum analyze``, then an identical copy of that state (``create database ...
   template``) for the references: the naive loop on a sample (rolled back), a traced
   in-process matcher run for a few batches (its slowest statement explained), then the
   one-statement bound on the rest;
4. optional batch-size trials, each on its own copy;
5. ``kpi-red match --limit 0 --no-near`` draining a copy, then ``kpi-red match --limit 0``
   draining another copy (the rest of the run continues on it), as child processes;
6. ``dbt build`` after the drain; 1% new leads (one statement); the matcher on them, then
   again with nothing due (the hour's fixed part); ``dbt build --exclude
   tag:whole_history`` again: the incremental build as an hourly schedule runs it,
   compared with the full one, then the same build with nothing new (its floor); then
   those tests alone;
7. the hourly ``kpi-red cycle --skip-history-tests`` (new leads, a registry person,
   registry phones), then the day's cycle with every data test;
8. the panel's read, median of 5, without and with ``--live``.
"""

from __future__ import annotations

import compileall
import os
import platform
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import bound, database, match_child, naive, recall, trace, workload
from bench.measure import ChildResult, Clock, Step, median_ms, run_child
from matcher.cycle import HISTORY_TESTS
from matcher.settings import DEFAULT_BATCH_SIZE, Settings, load_settings

SIZES = {
    "demo": (3_000, 12_000),
    "small": (10_000, 50_000),
    "medium": (100_000, 500_000),
    "large": (500_000, 2_000_000),
}


@dataclass(frozen=True)
class Options:
    size: str
    seed: int = 42
    density: float = 0.33
    """The demo data's identifier density (``kpi-red demo --density``)."""
    batch_sizes: tuple[int, ...] = (DEFAULT_BATCH_SIZE,)
    naive_sample: int = 2000
    trace_batches: int = 3
    new_share: float = 0.01
    incremental: bool = True
    explain_bound: bool = False
    keep: bool = False
    hold: bool = False
    """Leave the drained database to the caller (``Outcome.held``) for the interleaved
    hours of a run of several sizes (``interleaved_hours``), which drops it."""
    workdir: Path | None = None


@dataclass
class Outcome:
    """What one size produced: the table rows and the JSON record."""

    steps: list[Step] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)
    slowest: trace.Statement | None = None
    """The matcher's slowest statement, explained again in the hourly steady state."""
    recall: recall.Recall | None = None
    """Right, wrong and missed links of the default drain, against the ground truth."""
    held: database.BenchDatabase | None = None
    """The drained database after the run, with ``Options.hold``."""
    hourly_argv: list[str] = field(default_factory=list)
    """The hourly cycle's command line, as the run timed it."""


def log(message: str) -> None:
    print(f"  [{datetime.now():%H:%M:%S}] {message}", flush=True)


def run(options: Options) -> Outcome:
    settings = load_settings(database.PROJECT_DIR)
    # the matcher's modules compiled, as an installed package has them: the project is
    # installed editable, and where PYTHONDONTWRITEBYTECODE is set (this machine's image)
    # every `kpi-red` child would compile them again (40 ms a run, measured)
    compileall.compile_dir(database.PROJECT_DIR / "matcher", quiet=1)
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="kpi-red-bench-"))
    name = database.bench_name(options.size)
    outcome = Outcome()
    record = outcome.record
    record.update(
        size=options.size,
        seed=options.seed,
        density=options.density,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        machine=machine(),
    )
    log(f"database {name}")
    main_db = database.create(name, home=workdir / name)
    created = [main_db]
    try:
        generate(main_db, settings, options, outcome)
        leads = record["leads"]

        log("dbt parse (not timed) and dbt build (full)")
        if options.incremental:  # the same warm start for the full and the later builds
            main_db.dbt("parse")
        timed_dbt(main_db, outcome, "dbt_full", "dbt build full", ["build"], rows=leads)
        before = workload.counts(main_db, settings)
        record["backlog"] = before["backlog"]
        record["eligible"] = before["eligible"]
        record["database_mb"] = round(database.database_size_mb(main_db), 1)

        # fresh statistics and visibility maps before any copy: the matcher and the bound
        # plan on the same statistics (autovacuum's analyze, landing at a random moment,
        # changed the bound's plan), and no autovacuum of the freshly built tables is left
        # to run during a measured step of the original (its copies start with none)
        log("vacuum analyze (not timed)")
        main_db.execute("vacuum analyze", autocommit=True)
        reference = database.clone(main_db, f"{name}_ref")
        created.append(reference)
        references(reference, settings, options, outcome)
        database.drop(reference)
        created.remove(reference)

        if options.explain_bound:
            copy = database.clone(main_db, f"{name}_explain")
            try:
                log("EXPLAIN ANALYZE of the bound, on another copy")
                record["bound_explain_analyze"] = bound.explain(copy, settings)
            finally:
                database.drop(copy)

        best = (
            batch_trials(main_db, settings, options, outcome)
            if len(options.batch_sizes) > 1
            else (options.batch_sizes[0])
        )
        exact = database.clone(main_db, f"{name}_exact")
        created.append(exact)
        drain(exact, best, outcome, near=False)
        record["recall_no_near"] = recall.measure(exact, density=options.density).to_json()
        database.drop(exact)
        created.remove(exact)
        # every measured step starts on a database just copied (so its files are as
        # fresh in the page cache as the bound's): the default drain, and all after it,
        # run on a copy of the original
        drained = database.clone(main_db, f"{name}_drained", home=main_db.home)
        created.append(drained)
        database.drop(main_db)
        created.remove(main_db)
        main_db = drained
        drain(main_db, best, outcome, near=True)
        outcome.recall = recall.measure(main_db, label="defaults", density=options.density)
        record["recall"] = outcome.recall.to_json()

        if options.incremental:
            incremental(main_db, settings, options, best, outcome)
            hourly_cycle(main_db, settings, options, best, outcome)
        panel(main_db, settings, outcome)
    except Exception as exc:  # report what was measured, and what stopped the run
        record["error"] = f"{exc.__class__.__name__}: {exc}"
        log(f"STOPPED: {record['error']}")
    finally:
        ratios(record)
        for made in created:
            if options.hold and made is main_db and outcome.hourly_argv:
                outcome.held = main_db  # the caller's: its interleaved hours, then dropped
            elif options.keep:
                log(f"kept database {made.name}")
            else:
                database.drop(made)
    return outcome


def generate(
    main_db: database.BenchDatabase, settings: Settings, options: Options, outcome: Outcome
) -> None:
    from matcher import demo

    log(f"generating {options.size} data inside PostgreSQL")
    clock = Clock()
    with clock.timing():
        demo.load(
            main_db.conninfo,
            settings,
            size=options.size,
            seed=options.seed,
            density=options.density,
            reset=False,
        )
    counted = workload.counts_sources(main_db, settings)
    outcome.record.update(
        leads=counted["leads"], persons=counted["persons"], generate_s=round(clock.seconds, 2)
    )
    outcome.steps.append(
        Step("generate data (SQL)", clock.seconds, rows=counted["leads"] + counted["persons"])
    )


def references(
    reference: database.BenchDatabase,
    settings: Settings,
    options: Options,
    outcome: Outcome,
) -> None:
    """Naive loop, traced matcher batches and the bound, on the copy, in that order."""
    record = outcome.record
    log(f"naive loop on {options.naive_sample} leads (rolled back)")
    naive_result = naive.run(reference.conninfo, settings, sample=options.naive_sample)
    record["naive_leads"] = naive_result.leads
    record["naive_leads_per_s"] = round(naive_result.leads_per_s, 1)
    record["naive_statements_per_lead"] = round(
        naive_result.statements / max(1, naive_result.leads), 2
    )
    outcome.steps.append(
        Step(
            "naive per-lead loop (sample)",
            naive_result.seconds,
            rows=naive_result.leads,
            note=f"{record['naive_statements_per_lead']} statements/lead",
        )
    )

    batch_size = options.batch_sizes[0]
    log(f"traced matcher: {options.trace_batches} batches of {batch_size} in-process")
    record["matcher_trace"] = trace_matcher(
        reference,
        settings,
        batch_size=batch_size,
        batches=options.trace_batches,
        eligible=record["eligible"],
        outcome=outcome,
    )

    log("the bound: one statement for the rest of the backlog")
    with database.server_cpu(reference) as server:
        bound_result = bound.run(reference, settings)
    record["bound_leads"] = bound_result.leads
    record["bound_matched"] = bound_result.matched
    record["bound_leads_per_s"] = round(bound_result.leads_per_s, 1)
    step = Step(
        "bound: one SQL statement",
        bound_result.seconds,
        rows=bound_result.leads,
        server_cpu_s=server.seconds,
    )
    outcome.steps.append(step)
    record.update(cpu_record("bound_", step))


def trace_matcher(
    reference: database.BenchDatabase,
    settings: Settings,
    *,
    batch_size: int,
    batches: int,
    eligible: int,
    outcome: Outcome,
) -> dict[str, Any]:
    """A few batches (at most a tenth of the backlog, so the bound keeps most of it)."""
    from matcher.run import MatchOptions, run_match

    limit = max(1, min(batch_size * batches, eligible // 10))

    def action() -> Any:
        return run_match(
            reference.conninfo,
            settings=settings,
            options=MatchOptions(limit=limit, batch_size=batch_size),
        )

    recorded, summary = trace.run_traced(action, env=reference.cli_env())
    found = trace.slowest_explainable(recorded)
    if found is not None:
        outcome.slowest = found[0]
    statements = trace.summarize(recorded)
    result: dict[str, Any] = {
        "batch_size": batch_size,
        "claimed": summary.claimed,
        "seconds": round(summary.seconds, 3),
        "statements": [{**entry, "sql": entry["sql"][:300]} for entry in statements[:8]],
    }
    if found is not None:
        statement, total, calls = found
        log("EXPLAIN ANALYZE of the slowest matcher statement")
        result["slowest"] = {
            "sql": " ".join(statement.text.split()),
            "calls": calls,
            "total_s": round(total, 3),
            "slowest_call_s": round(statement.seconds, 3),
            "explain_analyze": trace.explain_analyze(reference.conninfo, statement, timeout_s=120),
        }
    return result


def batch_trials(
    main_db: database.BenchDatabase,
    settings: Settings,
    options: Options,
    outcome: Outcome,
) -> int:
    """Drain an identical copy once per batch size; the fastest size wins."""
    trials: list[dict[str, Any]] = []
    for batch_size in options.batch_sizes:
        copy = database.clone(main_db, f"{main_db.name}_b{batch_size}")
        try:
            log(f"batch-size trial: {batch_size}")
            child, summary = match_child.run(copy, batch_size=batch_size)
        finally:
            database.drop(copy)
        trials.append(
            {
                "batch_size": batch_size,
                "seconds": round(child.seconds, 3),
                "leads": summary.get("claimed"),
                "leads_per_s": round((summary.get("claimed") or 0) / child.seconds, 1),
                "peak_rss_mb": round(child.peak_rss_mb, 1),
            }
        )
    outcome.record["batch_trials"] = trials
    best = max(trials, key=lambda trial: trial["leads_per_s"])
    return int(best["batch_size"])


def drain(target: database.BenchDatabase, batch_size: int, outcome: Outcome, *, near: bool) -> None:
    """``kpi-red match --limit 0`` as a child process. With ``near=False``
    (``--no-near``) the matcher does exactly the bound's work (exact keys, plus the name
    guard): ``exact_*`` keys, the exact ratio; by default the one-edit pass runs too:
    ``leads_per_s``, ``peak_rss_mb``, ``matcher_*``, the near ratio."""
    record = outcome.record
    prefix, label = ("", "kpi-red match drain") if near else ("exact_", "kpi-red match --no-near")
    log(f"{label}: {record['eligible']} eligible leads, batch {batch_size}")
    with database.server_cpu(target) as server:
        child, summary = match_child.run(target, batch_size=batch_size, near=near)
    claimed = int(summary.get("claimed") or 0)
    record.update(
        {
            f"{prefix}matcher_leads": claimed,
            f"{prefix}matcher_matched": summary.get("matched"),
            f"{prefix}matcher_seconds": round(child.seconds, 3),
            f"{prefix}leads_per_s": round(claimed / child.seconds, 1) if child.seconds else 0.0,
            f"{prefix}peak_rss_mb": round(child.peak_rss_mb, 1),
        }
    )
    if near:
        record.update(
            batch_size=batch_size,
            matcher_failed_by_reason=summary.get("failed_by_reason"),
            matcher_matched_by_rule=summary.get("matched_by_rule"),
            matcher_reported_leads_per_s=summary.get("leads_per_s"),
        )
    step = Step(
        f"{label} (batch {batch_size})",
        child.seconds,
        rows=claimed,
        peak_rss_mb=child.peak_rss_mb,
        note=f"matched {summary.get('matched')}",
        cpu_s=child.cpu_s,
        server_cpu_s=server.seconds,
    )
    outcome.steps.append(step)
    record.update(cpu_record(f"{prefix}matcher_", step))


def incremental(
    main_db: database.BenchDatabase,
    settings: Settings,
    options: Options,
    batch_size: int,
    outcome: Outcome,
) -> None:
    record = outcome.record
    log("dbt build after the drain")
    after = main_db.dbt("build")
    record["dbt_after_drain_s"] = round(after.child.seconds, 2)
    outcome.steps.append(
        Step(
            "dbt build after drain",
            after.child.seconds,
            rows=record["leads"],
            peak_rss_mb=after.child.peak_rss_mb,
        )
    )

    log(f"adding {options.new_share:.0%} new leads (one statement)")
    clock = Clock()
    with clock.timing():
        added = workload.add_new_leads(
            main_db, settings, share=options.new_share, seed=options.seed
        )
    record["new_leads"] = added
    outcome.steps.append(
        Step(f"add {options.new_share:.0%} new leads (SQL)", clock.seconds, rows=added)
    )

    if outcome.slowest is not None:
        log("EXPLAIN ANALYZE of that statement again, in the hourly steady state")
        record["steady_state_explain"] = trace.explain_analyze(
            main_db.conninfo, outcome.slowest, timeout_s=180
        )
    child, summary = match_child.run(main_db, batch_size=batch_size)
    record["match_new_s"] = round(child.seconds, 3)
    record["match_new_leads"] = summary.get("claimed")
    outcome.steps.append(
        Step(
            "kpi-red match new leads",
            child.seconds,
            rows=summary.get("claimed"),
            peak_rss_mb=child.peak_rss_mb,
        )
    )
    # the same run again, with nothing due (the hour's failures wait their back-off): what
    # any hour's match costs before its first lead, the fixed part of the target's ratio
    child, summary = match_child.run(main_db, batch_size=batch_size)
    record["match_empty_s"] = round(child.seconds, 3)
    record["match_empty_leads"] = summary.get("claimed")
    outcome.steps.append(
        Step("kpi-red match, nothing due", child.seconds, rows=summary.get("claimed"))
    )

    # the hourly build: every model, the data tests of what changes (a plain `dbt build`
    # scheduled hourly leaves out those of the whole history, as `kpi-red cycle
    # --skip-history-tests` does); then those tests alone, what the day's build adds
    def hourly_build(key: str, name: str, *, rows: int | None = None) -> None:
        timed_dbt(
            main_db,
            outcome,
            key,
            name,
            ["build", "--exclude", HISTORY_TESTS],
            rows=rows,
            note=lambda seconds: f"{seconds / record['dbt_full_s']:.0%} of full; hourly tests",
        )
        record[f"{key}_ratio"] = round(record[f"{key}_s"] / record["dbt_full_s"], 3)

    log("dbt build (incremental, after 1% new leads and a matcher run, hourly tests)")
    hourly_build("dbt_incremental", "dbt build incremental (1%)", rows=added)
    # the same build again, with nothing new: what every hourly build costs (dbt's start,
    # each source compared whole, each node's own statements), the floor of that ratio
    log("dbt build again, nothing new (the hourly build's floor)")
    hourly_build("dbt_noop", "dbt build, nothing new")
    log("dbt build --select tag:whole_history (the day's tests of the whole history)")
    timed_dbt(
        main_db,
        outcome,
        "dbt_history_tests",
        "dbt build: the whole-history tests",
        ["build", "--select", HISTORY_TESTS],
        note=lambda _: "once a day",
    )


def timed_dbt(
    main_db: database.BenchDatabase,
    outcome: Outcome,
    key: str,
    name: str,
    args: list[str],
    *,
    rows: int | None = None,
    note: Callable[[float], str] | None = None,
) -> None:
    """``dbt <args>`` as a child process, a step ``name`` (``note`` made from its seconds)
    with its CPU and the server's, and in the record ``<key>_s``, ``<key>_node_s``,
    ``<key>_slowest_nodes`` and the CPU figures (``cpu_record``)."""
    with database.server_cpu(main_db) as server:
        result = main_db.dbt(*args)
    seconds = result.child.seconds
    outcome.record[f"{key}_s"] = round(seconds, 2)
    outcome.record[f"{key}_node_s"] = round(result.node_seconds, 2)
    outcome.record[f"{key}_slowest_nodes"] = result.slowest()
    step = Step(
        name,
        seconds,
        rows=rows,
        peak_rss_mb=result.child.peak_rss_mb,
        note=note(seconds) if note else "",
        cpu_s=result.child.cpu_s,
        server_cpu_s=server.seconds,
    )
    outcome.steps.append(step)
    outcome.record.update(cpu_record(f"{key}_", step))


REGISTRY_EDIT_SHARE = 0.0005
"""The registry persons whose phone the busier registry hour edits."""

INTERLEAVED_ROUNDS = 3
"""Hours of each size in a run of several sizes, alternating sizes (``interleaved_hours``)."""


@dataclass(frozen=True)
class CycleRun:
    """One timed ``kpi-red cycle``: its seconds, its JSON summary and its step."""

    seconds: float
    summary: dict[str, Any]
    step: Step


def hourly_cycle(
    main_db: database.BenchDatabase,
    settings: Settings,
    options: Options,
    batch_size: int,
    outcome: Outcome,
) -> None:
    """The hour users schedule: another share of new leads, then ``kpi-red cycle
    --skip-history-tests`` (dbt build -> match -> repair origin -> dbt build of what the
    match changed, as the hourly cron line runs it) as a child process:
    ``hourly_cycle_s``, and each of its steps. Then the same after one new registry
    person (``hourly_cycle_registry_change_s``), and after 0.05% of the persons got a new
    phone (``hourly_cycle_registry_edits_s``): what an hour costs when another system
    wrote to the registry, as it does every hour. Last, another share of new leads and
    the day's cycle, every data test in (``daily_cycle_s``)."""
    record = outcome.record
    daily = [str(database.BIN_DIR / "kpi-red"), "cycle", "--batch-size", str(batch_size), "--json"]
    argv = [*daily, "--skip-history-tests"]
    # the previous hour's cycle, not timed: cron's cycle finds the manifest dbt saved an
    # hour before for the same project and profile (partial parsing: "nothing changed"),
    # where the first cycle on a database parses the whole project (~2.5 s here)
    log("kpi-red cycle (the previous hour's, not timed)")
    record["hourly_cycle_previous_s"] = round(untimed_cycle(main_db, argv).seconds, 2)

    outcome.hourly_argv = argv
    run = new_leads_cycle(
        main_db, settings, options, outcome, argv, seed=options.seed + 1, label="hourly"
    )
    record_cycle(outcome, "hourly_cycle", run)
    record["hourly_cycle_new_leads"] = run.step.rows
    # its match step, after the build as the cron line runs it (``ratios``: its pace)
    record["hourly_cycle_match_leads"] = (run.summary.get("match") or {}).get("claimed")
    record["hourly_cycle_match_s"] = next(
        (step["seconds"] for step in run.summary.get("steps") or () if step["step"] == "match"),
        None,
    )

    # the same hour when the registry changed: a failed lead whose reason a registry
    # change may cure is due again when the change touches its keys (docs/operations.md,
    # retries); this person's email is nobody's
    log("one new registry person, then kpi-red cycle (the hour another system wrote)")
    workload.add_registry_person(main_db, settings, seed=options.seed)
    run = timed_cycle(main_db, argv, outcome, label="hourly, 1 registry person new")
    record_cycle(outcome, "hourly_cycle_registry_change", run)
    record["hourly_cycle_registry_change_attempted"] = cycle_claimed(run.summary)

    # a busier registry hour: a CRM sync corrects the phone of 0.05% of the persons (1,000
    # at `large`); each touches the failed leads holding its old or new number, or one
    # edit from either (int_lead_registry_touches)
    log(f"{REGISTRY_EDIT_SHARE:.2%} of the registry persons get a new phone, then kpi-red cycle")
    edited = workload.edit_registry_phones(
        main_db, settings, share=REGISTRY_EDIT_SHARE, seed=options.seed
    )
    run = timed_cycle(main_db, argv, outcome, label=f"hourly, {edited:,} registry phones edited")
    record_cycle(outcome, "hourly_cycle_registry_edits", run)
    record["hourly_cycle_registry_edits_persons"] = edited
    record["hourly_cycle_registry_edits_attempted"] = cycle_claimed(run.summary)

    # the day's cycle (the daily cron line): the same hour with every data test, those
    # that read the whole history included
    run = new_leads_cycle(
        main_db,
        settings,
        options,
        outcome,
        daily,
        seed=options.seed + 2,
        label="daily, every data test",
    )
    record_cycle(outcome, "daily_cycle", run)


def interleaved_hours(held: list[tuple[Options, Outcome]]) -> None:
    """The growth of the hour, measured in one phase of the machine: with several sizes,
    each size's drained database (``Options.hold``) gets ``INTERLEAVED_ROUNDS`` more hours
    (an untimed cycle with nothing new, then another share of new leads and the timed
    hourly cycle), the sizes alternating, so every size's hours fall in the same minutes.
    ``hourly_cycle_interleaved_s`` is each size's median hour,
    ``hourly_cycle_interleaved_runs_s`` all of them, in order. One hour per size, minutes
    apart, moved the growth ratio by +-0.3 between runs of the same code: the machine is
    shared, and a slow phase lasts minutes."""
    settings = load_settings(database.PROJECT_DIR)
    runs: dict[str, list[float]] = {options.size: [] for options, _ in held}
    # the larger sizes' database copies leave gigabytes for the kernel and the server to
    # write out: written before the first hour, so that no size's hours pay for them
    log("sync and checkpoint (not timed)")
    os.sync()
    _, first = held[0]
    assert first.held is not None
    first.held.execute("checkpoint", autocommit=True)
    for round_number in range(1, INTERLEAVED_ROUNDS + 1):
        for options, outcome in held:
            assert outcome.held is not None
            # first an hour with nothing new, not timed: the other size's hour filled the
            # server's shared buffers with its own pages, and a size's hour follows its own
            log(f"{options.size}: kpi-red cycle with nothing new (not timed)")
            untimed_cycle(outcome.held, outcome.hourly_argv)
            run = new_leads_cycle(
                outcome.held,
                settings,
                options,
                outcome,
                outcome.hourly_argv,
                seed=options.seed + 10 + round_number,
                label=f"hourly, interleaved {round_number}/{INTERLEAVED_ROUNDS}",
            )
            runs[options.size].append(round(run.seconds, 2))
    for options, outcome in held:
        seconds = runs[options.size]
        outcome.record["hourly_cycle_interleaved_runs_s"] = seconds
        outcome.record["hourly_cycle_interleaved_s"] = sorted(seconds)[len(seconds) // 2]


def untimed_cycle(main_db: database.BenchDatabase, argv: list[str]) -> ChildResult:
    """``kpi-red cycle`` as a child process, not in the table (it must succeed)."""
    return run_child(argv, env=main_db.cli_env(), cwd=database.PROJECT_DIR, timeout_s=3600).check()


def new_leads_cycle(
    main_db: database.BenchDatabase,
    settings: Settings,
    options: Options,
    outcome: Outcome,
    argv: list[str],
    *,
    seed: int,
    label: str,
) -> CycleRun:
    """Another share of new leads, then the timed cycle ``argv`` (its step's rows: the
    leads added)."""
    log(f"adding {options.new_share:.0%} new leads again, then kpi-red cycle ({label})")
    added = workload.add_new_leads(main_db, settings, share=options.new_share, seed=seed)
    return timed_cycle(
        main_db, argv, outcome, label=f"{label}, {options.new_share:.0%} new", rows=added
    )


def cycle_claimed(summary: dict[str, Any]) -> int | None:
    """The leads a cycle's match step attempted, from the cycle's JSON summary."""
    return (summary.get("match") or {}).get("claimed")


def timed_cycle(
    main_db: database.BenchDatabase,
    argv: list[str],
    outcome: Outcome,
    *,
    label: str,
    rows: int | None = None,
) -> CycleRun:
    """``kpi-red cycle`` as a child process; its step (its rows: ``rows``, else the leads
    the match attempted) goes in the table."""
    with database.server_cpu(main_db) as server:
        child = run_child(argv, env=main_db.cli_env(), cwd=database.PROJECT_DIR, timeout_s=3600)
    child = child.check()
    summary = match_child.parse_summary(child.stdout)
    steps = ", ".join(
        f"{part['step']} {part['seconds']:.1f}" for part in summary.get("steps") or []
    )
    step = Step(
        f"kpi-red cycle ({label})",
        child.seconds,
        rows=rows if rows is not None else cycle_claimed(summary),
        peak_rss_mb=child.peak_rss_mb,
        note=steps,
        cpu_s=child.cpu_s,
        server_cpu_s=server.seconds,
    )
    outcome.steps.append(step)
    return CycleRun(child.seconds, summary, step)


def record_cycle(outcome: Outcome, key: str, run: CycleRun) -> None:
    """``<key>_s``, ``<key>_steps`` and the CPU of ``run`` in the record."""
    outcome.record[f"{key}_s"] = round(run.seconds, 2)
    outcome.record[f"{key}_steps"] = run.summary.get("steps")
    outcome.record.update(cpu_record(f"{key}_", run.step))


def panel(main_db: database.BenchDatabase, settings: Settings, outcome: Outcome) -> None:
    """The panel's read (``panel_ms``, the target), and with ``--live`` (``panel_live_ms``:
    the backlog view counted too)."""
    log("panel metrics read, median of 5 (and --live)")
    for live, key, label in (
        (False, "panel_ms", "panel metrics read (median of 5)"),
        (True, "panel_live_ms", "panel --live read (median of 5)"),
    ):

        def read(live: bool = live) -> Any:
            return workload.read_panel(main_db, settings, live=live)

        read()  # a first read: connection and catalog warm-up
        median, runs = median_ms(read, repeat=5)
        outcome.record[key] = round(median, 1)
        outcome.record[f"{key.removesuffix('_ms')}_runs_ms"] = [round(value, 1) for value in runs]
        outcome.steps.append(Step(label, median / 1000, note=f"{median:.1f} ms"))
    parts = workload.panel_parts(main_db)
    outcome.record["panel_parts_ms"] = parts["ms"]
    outcome.record["panel_backlog_count_explain"] = parts["explain"]


def cpu_record(prefix: str, step: Step) -> dict[str, Any]:
    """A step's CPU for the record: ``<prefix>cpu_s`` (its own process: the matcher, dbt,
    ``kpi-red cycle``), ``<prefix>server_cpu_s`` and their sum ``<prefix>total_cpu_s``
    (None when the server's cannot be measured)."""
    own_s, server_s = step.cpu_s, step.server_cpu_s
    total = None if server_s is None else (own_s or 0.0) + server_s
    return {
        f"{prefix}cpu_s": None if own_s is None else round(own_s, 2),
        f"{prefix}server_cpu_s": None if server_s is None else round(server_s, 2),
        f"{prefix}total_cpu_s": None if total is None else round(total, 2),
    }


def cpu_ratios(record: dict[str, Any]) -> None:
    """CPU per lead of the bound and of each drain (both processes, every core), and the
    bound's against each drain's (``*cpu_ratio_to_bound``: 1.0 spends what the bound
    spends per lead); the incremental build's CPU against the full build's. On a shared
    machine these move less than wall times: a slow hour stretches the wall, not the work."""
    per_lead = {}
    for prefix, leads_key in (
        ("bound_", "bound_leads"),
        ("exact_matcher_", "exact_matcher_leads"),
        ("matcher_", "matcher_leads"),
    ):
        total, leads = record.get(f"{prefix}total_cpu_s"), record.get(leads_key)
        if total and leads:
            per_lead[prefix] = total / leads * 1e6
            record[f"{prefix}cpu_us_per_lead"] = round(per_lead[prefix], 1)
    for prefix in ("exact_matcher_", "matcher_"):
        if "bound_" in per_lead and prefix in per_lead:
            record[f"{prefix}cpu_ratio_to_bound"] = round(per_lead["bound_"] / per_lead[prefix], 3)
    full, later = record.get("dbt_full_total_cpu_s"), record.get("dbt_incremental_total_cpu_s")
    if full and later:
        record["dbt_incremental_cpu_ratio"] = round(later / full, 3)


def ratios(record: dict[str, Any]) -> None:
    """``ratio_*``: the default matcher (with the one-edit pass); ``exact_ratio_*``: the
    matcher with ``--no-near``, doing the bound's own work; and ``cpu_ratios``."""
    cpu_ratios(record)
    for prefix, speed_key in (("", "leads_per_s"), ("exact_", "exact_leads_per_s")):
        speed = record.get(speed_key)
        for name, reference in (("bound", "bound_leads_per_s"), ("naive", "naive_leads_per_s")):
            record[f"{prefix}ratio_to_{name}"] = (
                round(speed / record[reference], 3) if speed and record.get(reference) else None
            )
    # the hourly match: the new leads of an hour against the drain's pace (the target),
    # and the same inside the hourly cycle, after its build (no target)
    speed = record.get("leads_per_s")
    for leads_key, seconds_key, prefix in (
        ("match_new_leads", "match_new_s", "hourly_"),
        ("hourly_cycle_match_leads", "hourly_cycle_match_s", "hourly_cycle_match_"),
    ):
        if record.get(seconds_key) and record.get(leads_key):
            hourly = record[leads_key] / record[seconds_key]
            record[f"{prefix}leads_per_s"] = round(hourly, 1)
            record[f"{prefix}ratio_to_drain"] = round(hourly / speed, 3) if speed else None
    # the best the hourly target's ratio can be: a run with nothing due, then the hour's
    # leads at the drain's pace
    fixed, leads = record.get("match_empty_s"), record.get("match_new_leads")
    if fixed is not None and leads and speed:
        record["hourly_ratio_ceiling"] = round(leads / (fixed * speed + leads), 3)


def machine() -> dict[str, Any]:
    import os

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }
