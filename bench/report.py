"""The table on the terminal, the JSON file, and how each step grows across sizes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.measure import Step

HEADER = ("size", "step", "seconds", "rows", "rows/s", "peak MB", "CPU s", "x naive", "note")
"""``CPU s``: the step's own process + the server (``own+server``), when measured."""


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return ""
    return f"{value:,.{digits}f}"


def table(size: str, steps: Sequence[Step], record: dict[str, Any]) -> str:
    naive = record.get("naive_leads_per_s") or 0.0
    rows = []
    for step in steps:
        speed = step.rows_per_s
        leads_step = step.name.startswith(("naive", "bound", "kpi-red match drain"))
        ratio = f"{speed / naive:.1f}x" if leads_step and speed and naive else ""
        rows.append(
            (
                size,
                step.name,
                f"{step.seconds:.3f}" if step.seconds < 1 else f"{step.seconds:.1f}",
                _number(step.rows),
                _number(speed),
                _number(step.peak_rss_mb, 1),
                _cpu(step),
                ratio,
                step.note,
            )
        )
    return _grid([HEADER, *rows])


def _cpu(step: Step) -> str:
    if step.server_cpu_s is None:
        return "" if step.cpu_s is None else f"{step.cpu_s:.1f}"
    if step.cpu_s is None:  # the bound: one statement, on the server
        return f"{step.server_cpu_s:.1f} server"
    return f"{step.cpu_s:.1f}+{step.server_cpu_s:.1f}"


def _grid(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(row[column])) for row in rows) for column in range(len(rows[0]))]
    numeric = {2, 3, 4, 5, 6, 7}
    lines = []
    for index, row in enumerate(rows):
        cells = [
            str(cell).rjust(width) if column in numeric else str(cell).ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def verdict(record: dict[str, Any]) -> str:
    """The benchmark's targets, checked (they are meant for ``large``)."""
    checks = [
        ("matcher --no-near >= 0.9x bound", record.get("exact_ratio_to_bound"), 0.9, ">="),
        ("matcher --no-near >= 8x naive", record.get("exact_ratio_to_naive"), 8.0, ">="),
        ("matcher (one-edit pass) >= 0.7x bound", record.get("ratio_to_bound"), 0.7, ">="),
        ("matcher (one-edit pass) >= 8x naive", record.get("ratio_to_naive"), 8.0, ">="),
        (
            "hourly match >= 0.5x the drain's leads/s",
            record.get("hourly_ratio_to_drain"),
            0.5,
            ">=",
        ),
        ("peak RSS < 200 MB", record.get("peak_rss_mb"), 200.0, "<"),
        ("dbt incremental <= 10% of full", record.get("dbt_incremental_ratio"), 0.1, "<="),
        ("panel < 50 ms", record.get("panel_ms"), 50.0, "<"),
    ]
    lines = []
    for label, value, limit, sign in checks:
        if value is None:
            lines.append(f"  ?    {label}: not measured")
            continue
        passed = {">=": value >= limit, "<": value < limit, "<=": value <= limit}[sign]
        lines.append(f"  {'ok ' if passed else 'MISS'} {label}: {value}")
    inside = record.get("hourly_cycle_match_ratio_to_drain")
    if inside is not None:
        lines.append(f"  --   the hourly cycle's match, after its build (no target): {inside}")
    ceiling = record.get("hourly_ratio_ceiling")
    if ceiling is not None:
        lines.append(
            f"  --   the hourly match's ceiling: {ceiling} (a run with nothing due takes"
            f" {record['match_empty_s']} s, then the hour's leads at the drain's pace)"
        )
    floor = record.get("dbt_noop_ratio")
    if floor is not None:
        lines.append(
            f"  --   the hourly build's floor: {floor} of full (the same build with nothing"
            f" new, {record['dbt_noop_s']} s)"
        )
    return "\n".join(lines)


def cpu(record: dict[str, Any]) -> str:
    """What the work costs in CPU, both processes on every core (no targets: the figures
    the drain and build targets would be set on, less moved by a busy machine than wall
    times)."""
    lines = []
    bound = record.get("bound_cpu_us_per_lead")
    if bound is not None:
        lines.append(f"  the bound: {bound:,.0f} us per lead (one statement, the server)")
    for prefix, label in (("exact_matcher_", "--no-near drain"), ("matcher_", "default drain")):
        per_lead = record.get(f"{prefix}cpu_us_per_lead")
        if per_lead is None:
            continue
        ratio = record.get(f"{prefix}cpu_ratio_to_bound")
        lines.append(
            f"  {label}: {per_lead:,.0f} us per lead (matcher {record[f'{prefix}cpu_s']:.1f} s"
            f" + server {record[f'{prefix}server_cpu_s']:.1f} s)"
            + (f", the bound's per lead / this = {ratio:.2f}" if ratio is not None else "")
        )
    for prefix, label in (
        ("dbt_full_", "dbt build full"),
        ("dbt_incremental_", "dbt build incremental (hourly tests)"),
        ("dbt_history_tests_", "the whole-history tests (daily)"),
        ("hourly_cycle_", "hourly kpi-red cycle"),
        ("daily_cycle_", "the day's kpi-red cycle (every data test)"),
    ):
        total = record.get(f"{prefix}total_cpu_s")
        if total is None:
            continue
        line = (
            f"  {label}: {total:.1f} s (its process {record[f'{prefix}cpu_s']:.1f}"
            f" + server {record[f'{prefix}server_cpu_s']:.1f})"
        )
        if prefix == "dbt_incremental_" and record.get("dbt_incremental_cpu_ratio") is not None:
            line += f", {record['dbt_incremental_cpu_ratio']:.0%} of the full build's"
        lines.append(line)
    return "\n".join(lines) if lines else "  CPU: not measured (no /proc)"


def write_json(
    record: dict[str, Any],
    steps: Sequence[Step],
    *,
    out_dir: Path | None = None,
    path: Path | None = None,
) -> Path:
    """The results as ``<out_dir>/<UTC timestamp>-<size>.json``, or again to ``path``."""
    if path is None:
        assert out_dir is not None
        out_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = out_dir / f"{stamp}-{record['size']}.json"
    payload = {
        **record,
        "steps": [
            {
                "step": step.name,
                "seconds": round(step.seconds, 4),
                "rows": step.rows,
                "rows_per_s": round(step.rows_per_s, 1) if step.rows_per_s else None,
                "peak_rss_mb": round(step.peak_rss_mb, 1) if step.peak_rss_mb else None,
                "note": step.note,
                "cpu_s": None if step.cpu_s is None else round(step.cpu_s, 2),
                "server_cpu_s": None if step.server_cpu_s is None else round(step.server_cpu_s, 2),
            }
            for step in steps
        ],
    }
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


PER_ROW_STEPS = ("naive", "bound", "kpi-red match", "add ")


def growth(outcomes: Sequence[tuple[str, Sequence[Step], dict[str, Any]]]) -> str:
    """Seconds per 1,000 leads of each step, per size: flat across a row means linear.

    Steps that process leads (naive, bound, matcher, new leads) are divided by the leads
    they processed; dbt builds and the panel by all the leads in the database.
    """
    sizes = [size for size, _, _ in outcomes]
    names: list[str] = []
    for _, steps, _ in outcomes:
        for step in steps:
            key = _growth_key(step.name)
            if key not in names:
                names.append(key)
    header = ("step (s per 1k leads)", *sizes, "growth")
    rows: list[tuple[str, ...]] = [header]
    for name in names:
        values: list[float | None] = []
        for _, steps, record in outcomes:
            found = [step for step in steps if _growth_key(step.name) == name]
            per_row = name.startswith(PER_ROW_STEPS)
            count = (found[0].rows if found and per_row else record.get("leads")) or 0
            values.append(found[0].seconds / count * 1000 if found and count else None)
        known = [value for value in values if value]
        trend = f"{known[-1] / known[0]:.2f}x" if len(known) > 1 else ""
        rows.append(
            (name, *[f"{value:.4f}" if value is not None else "" for value in values], trend)
        )
    return _grid_plain(rows) + "\n" + _cycle_growth(outcomes)


def _cycle_growth(outcomes: Sequence[tuple[str, Sequence[Step], dict[str, Any]]]) -> str:
    """The hourly ``kpi-red cycle`` in seconds per size: what a user waits for each hour,
    which should grow with what changed, not with the history (target: at most 1.5x from
    ``medium`` to ``large``, with 5x the leads); then the day's cycle, which runs the data
    tests that read the whole history too."""
    interleaved = _per_size(outcomes, "hourly_cycle_interleaved_s")
    single = _per_size(outcomes, "hourly_cycle_s")
    if not interleaved and not single:
        return "hourly kpi-red cycle: not measured"
    target = " (target <= 1.5x medium -> large)"
    if len(interleaved) == len(outcomes):
        line = _per_size_line(
            "hourly kpi-red cycle, the sizes' hours interleaved (s, median)", interleaved, target
        )
        line += "\nits hours, in order (s): " + "; ".join(
            f"{size} "
            + ", ".join(f"{value:.1f}" for value in record["hourly_cycle_interleaved_runs_s"])
            for size, _, record in outcomes
        )
        line += _per_size_line("\neach size's own run, one hour (s)", single)
    else:
        line = _per_size_line("hourly kpi-red cycle (s)", single, target)
    for key, label in (
        ("hourly_cycle_total_cpu_s", "\nits CPU (s, kpi-red + server)"),
        ("daily_cycle_s", "\nthe day's cycle, every data test (s)"),
    ):
        values = _per_size(outcomes, key)
        if values:
            line += _per_size_line(label, values)
    for key, what in (
        ("hourly_cycle_registry_change", "one new registry person"),
        ("hourly_cycle_registry_edits", "registry phones edited"),
    ):
        hours = [
            (size, record[f"{key}_s"], record.get(f"{key}_persons"))
            for size, _, record in outcomes
            if record.get(f"{key}_s")
        ]
        if hours:
            line += f"\nthe same hour after {what} (s): " + ", ".join(
                f"{size} {value:.1f}" + (f" ({persons:,} persons)" if persons else "")
                for size, value, persons in hours
            )
    return line


def _per_size(
    outcomes: Sequence[tuple[str, Sequence[Step], dict[str, Any]]], key: str
) -> list[tuple[str, float]]:
    """``key`` of each size's record that has it."""
    return [(size, record[key]) for size, _, record in outcomes if record.get(key)]


def _per_size_line(label: str, values: Sequence[tuple[str, float]], target: str = "") -> str:
    """``label: medium 7.0, large 11.3; growth 1.61x`` (the growth with two sizes or more)."""
    line = f"{label}: " + ", ".join(f"{size} {value:.1f}" for size, value in values)
    if len(values) > 1:
        line += f"; growth {values[-1][1] / values[0][1]:.2f}x{target}"
    return line


def _growth_key(name: str) -> str:
    return name.split(" (batch")[0]


def _grid_plain(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(row[column])) for row in rows) for column in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        cells = [
            str(cell).ljust(width) if column == 0 else str(cell).rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def load_json(path: Path) -> tuple[str, list[Step], dict[str, Any]]:
    """A results file back as (size, steps, record), for ``growth``."""
    record = json.loads(path.read_text())
    steps = [
        Step(
            name=entry["step"],
            seconds=entry["seconds"],
            rows=entry.get("rows"),
            peak_rss_mb=entry.get("peak_rss_mb"),
            note=entry.get("note") or "",
            cpu_s=entry.get("cpu_s"),
            server_cpu_s=entry.get("server_cpu_s"),
        )
        for entry in record.get("steps", [])
    ]
    return str(record["size"]), steps, record
