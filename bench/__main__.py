"""``python -m bench --size small|medium|large`` (``make bench SIZE=...``).

Example: python -m bench --sizes small,medium --batch-sizes 500,1000,2000
"""

from __future__ import annotations

from pathlib import Path

import click

from bench import database, recall, report
from bench.run import SIZES, Options, Outcome, interleaved_hours, run
from matcher.settings import DEFAULT_BATCH_SIZE

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--size",
    type=click.Choice(list(SIZES)),
    help="One size: demo 3k leads/12k persons, small 10k/50k, medium 100k/500k, large 500k/2M.",
)
@click.option("--sizes", help="Several sizes, comma-separated, to see how each step grows.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option(
    "--density",
    type=click.FloatRange(0, 0.6),
    default=0.33,
    show_default=True,
    help="Identifier density of the demo data (kpi-red demo --density).",
)
@click.option(
    "--batch-sizes",
    default=str(DEFAULT_BATCH_SIZE),
    show_default=True,
    help="Matcher --batch-size; several (comma-separated) are tried, each on a copy, "
    "and the fastest drains.",
)
@click.option("--naive-sample", type=int, default=2000, show_default=True)
@click.option("--trace-batches", type=int, default=3, show_default=True)
@click.option(
    "--incremental/--no-incremental",
    default=True,
    show_default=True,
    help="Measure the rebuild after the drain, 1% new leads and the incremental dbt build.",
)
@click.option(
    "--explain-bound", is_flag=True, help="Also EXPLAIN ANALYZE the bound, on another copy."
)
@click.option(
    "--compare",
    "compare",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Print the growth table of earlier results/*.json files (repeatable) and exit.",
)
@click.option("--keep", is_flag=True, help="Keep the benchmark databases (default: dropped).")
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=RESULTS_DIR,
    show_default=True,
)
def main(
    size: str | None,
    sizes: str | None,
    seed: int,
    density: float,
    batch_sizes: str,
    naive_sample: int,
    trace_batches: int,
    incremental: bool,
    explain_bound: bool,
    compare: tuple[Path, ...],
    keep: bool,
    out_dir: Path,
) -> None:
    """Benchmark the schedule (dbt build -> kpi-red match -> dbt build) at a size.

    Example: python -m bench --size small --batch-sizes 250,500,1000,2000
    """
    if compare:
        click.echo(report.growth([report.load_json(path) for path in compare]))
        return
    chosen = [part.strip() for part in (sizes or size or "small").split(",") if part.strip()]
    unknown = [name for name in chosen if name not in SIZES]
    if unknown:
        raise click.BadParameter(f"unknown size(s): {', '.join(unknown)}", param_hint="--sizes")
    # with several sizes, each keeps its drained database for the interleaved hours
    hold = incremental and len(chosen) > 1
    outcomes = []
    held: list[tuple[Options, Outcome, Path]] = []
    try:
        for name in chosen:
            click.echo(f"== {name} ==")
            options = Options(
                size=name,
                seed=seed,
                density=density,
                batch_sizes=_ints(batch_sizes),
                naive_sample=naive_sample,
                trace_batches=trace_batches,
                incremental=incremental,
                explain_bound=explain_bound,
                keep=keep,
                hold=hold,
            )
            outcome = run(options)
            path = report.write_json(outcome.record, outcome.steps, out_dir=out_dir)
            _print_size(name, outcome, density, path)
            outcomes.append((name, outcome.steps, outcome.record))
            if outcome.held is not None:
                held.append((options, outcome, path))
        if len(held) > 1 and len(held) == len(chosen):
            click.echo("== the hourly cycle of every size, interleaved ==")
            try:
                interleaved_hours([(options, outcome) for options, outcome, _ in held])
            except Exception as exc:  # each size's own figures stand, its own hour included
                for _, outcome, _ in held:
                    outcome.record["error"] = f"interleaved hours: {exc.__class__.__name__}: {exc}"
                click.echo(f"STOPPED: {outcome.record['error']}")
            for _, outcome, path in held:
                report.write_json(outcome.record, outcome.steps, path=path)
    finally:
        for _, outcome, _ in held:
            if outcome.held is None:
                continue
            if keep:
                click.echo(f"kept database {outcome.held.name}")
            else:
                database.drop(outcome.held)
    if len(outcomes) > 1:
        click.echo(report.growth(outcomes))
    if any("error" in record for _, _, record in outcomes):
        raise SystemExit(1)


def _print_size(name: str, outcome: Outcome, density: float, path: Path) -> None:
    """One size's table, verdict, CPU and recall, as it finishes."""
    click.echo("")
    click.echo(report.table(name, outcome.steps, outcome.record))
    click.echo("")
    click.echo(report.verdict(outcome.record))
    click.echo("\nCPU (both processes, every core; no targets):")
    click.echo(report.cpu(outcome.record))
    if outcome.recall is not None:
        click.echo(f"\nagainst the ground truth (density {density:.2f}, default drain):")
        click.echo(recall.render(outcome.recall))
    click.echo(f"\nwrote {path}\n")


if __name__ == "__main__":
    main()
