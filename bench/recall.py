"""Right, wrong and missed links against the demo's ground truth (``kpi_red_demo.lead_truth``).

Per scenario (what each lead really is): leads the matcher attempted, those that should
link (the truth names a person), linked to the right person, linked to someone else
(**wrong**), not linked (missed), and the outcomes seen. Per rule (what the matcher did):
links and wrong links. The benchmark prints both after its drain; on its own,

    python -m bench.recall --size small --densities 0,0.33,0.5 --sweep

loads the demo data at each density, builds it, and drains a copy per threshold setting
(the defaults, then one threshold moved at a time), to show what each costs in wrong
links and recall.

Example: python -m bench.recall --size demo --densities 0.33
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import click

from bench import database
from matcher import demo
from matcher.settings import load_settings

SCENARIOS = """
with

last_attempts as (
    select distinct on (lead_source_pk)
        lead_source_pk,
        outcome,
        fail_reason,
        match_rule,
        person_key
    from kpi_red.match_attempts
    order by lead_source_pk, attempt_id desc
),

judged as (
    select
        truth.scenario,
        truth.person_key is not null as should_link,
        attempts.outcome = 'matched' and attempts.person_key = truth.person_key as is_right,
        attempts.outcome = 'matched'
        and attempts.person_key is distinct from truth.person_key as is_wrong,
        coalesce(attempts.match_rule, attempts.fail_reason) as result
    from last_attempts as attempts
    inner join kpi_red_demo.lead_truth as truth
        on truth.lead_id = attempts.lead_source_pk
)

select
    scenario,
    count(*) as attempted,
    count(*) filter (where should_link) as should_link,
    count(*) filter (where is_right) as linked_right,
    count(*) filter (where is_wrong) as linked_wrong,
    count(*) filter (where should_link and not is_right and not is_wrong) as missed,
    jsonb_object_agg(result, results) as results
from (
    select scenario, should_link, is_right, is_wrong, result,
        count(*) over (partition by scenario, result) as results
    from judged
) as counted
group by scenario
order by scenario
"""

RULES = """
select
    links.match_rule,
    count(*) as links,
    count(*) filter (where links.person_key is distinct from truth.person_key) as wrong
from canon.identity_links as links
inner join kpi_red_demo.lead_truth as truth
    on truth.lead_id = links.source_pk
where links.linked_by = 'kpi-red'
group by links.match_rule
order by links.match_rule
"""


@dataclass(frozen=True)
class Scenario:
    scenario: str
    attempted: int
    should_link: int
    linked_right: int
    linked_wrong: int
    missed: int
    results: Mapping[str, int]

    @property
    def recall(self) -> float | None:
        return self.linked_right / self.should_link if self.should_link else None


@dataclass(frozen=True)
class Recall:
    scenarios: list[Scenario]
    rules: list[tuple[str, int, int]]
    """(match_rule, links, wrong)."""
    label: str = ""
    density: float | None = None

    @property
    def wrong(self) -> int:
        return sum(row.linked_wrong for row in self.scenarios)

    @property
    def links(self) -> int:
        return sum(links for _, links, _ in self.rules)

    def recall_of(self, scenarios: Sequence[str] | None = None) -> float:
        """Leads linked right over leads that should link, among the attempted ones of
        ``scenarios`` (default: those the matcher is expected to link)."""
        chosen = scenarios or [
            name for name, (outcome, _) in demo.EXPECTED.items() if outcome == "matched"
        ]
        rows = [row for row in self.scenarios if row.scenario in chosen]
        should = sum(row.should_link for row in rows)
        return sum(row.linked_right for row in rows) / should if should else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "density": self.density,
            "links": self.links,
            "wrong": self.wrong,
            "recall": round(self.recall_of(), 4),
            "scenarios": [
                {
                    "scenario": row.scenario,
                    "attempted": row.attempted,
                    "should_link": row.should_link,
                    "linked_right": row.linked_right,
                    "linked_wrong": row.linked_wrong,
                    "missed": row.missed,
                    "results": dict(row.results),
                }
                for row in self.scenarios
            ],
            "rules": [
                {"match_rule": rule, "links": links, "wrong": wrong}
                for rule, links, wrong in self.rules
            ],
        }


def measure(
    target: database.BenchDatabase, *, label: str = "", density: float | None = None
) -> Recall:
    """The tables of a database the matcher ran on (the demo's ground truth loaded)."""
    with target.connect() as conn:
        scenarios = [Scenario(*row) for row in conn.execute(SCENARIOS)]
        rules = [(str(rule), int(links), int(wrong)) for rule, links, wrong in conn.execute(RULES)]
    return Recall(scenarios=scenarios, rules=rules, label=label, density=density)


def render(recall: Recall) -> str:
    """Two small tables: per scenario, then per rule."""
    lines = [
        f"{'scenario':<20} {'expected':<20} {'attempted':>9} {'to link':>7} {'right':>6} "
        f"{'wrong':>5} {'missed':>6} {'recall':>6}  outcomes"
    ]
    for row in recall.scenarios:
        outcome, reason = demo.EXPECTED.get(row.scenario, ("?", None))
        expected = reason or outcome
        share = "" if row.recall is None else f"{row.recall:.0%}"
        seen = ", ".join(
            f"{name} {count}" for name, count in sorted(row.results.items(), key=lambda kv: -kv[1])
        )
        lines.append(
            f"{row.scenario:<20} {expected:<20} {row.attempted:>9} {row.should_link:>7} "
            f"{row.linked_right:>6} {row.linked_wrong:>5} {row.missed:>6} {share:>6}  {seen}"
        )
    lines.append("")
    lines.append(f"{'rule':<22} {'links':>6} {'wrong':>5}")
    for rule, links, wrong in recall.rules:
        lines.append(f"{rule:<22} {links:>6} {wrong:>5}")
    lines.append(
        f"{'all':<22} {recall.links:>6} {recall.wrong:>5}   recall of the linkable "
        f"scenarios {recall.recall_of():.1%}"
    )
    return "\n".join(lines)


# --- python -m bench.recall: densities and thresholds -----------------------------------


@dataclass(frozen=True)
class Setting:
    label: str
    options: dict[str, float] = field(default_factory=dict)


SWEEP = [
    Setting("defaults"),
    Setting("--name-threshold 70", {"name_threshold": 70}),
    Setting("--name-threshold 95", {"name_threshold": 95}),
    Setting("--name-min-bits 4", {"name_min_bits": 4}),
    Setting("--name-min-bits 12", {"name_min_bits": 12}),
    Setting("--near-name-threshold 85", {"near_name_threshold": 85}),
    Setting("--near-name-min-bits 8", {"near_name_min_bits": 8}),
    Setting("--near-name-min-bits 14", {"near_name_min_bits": 14}),
    Setting("--no-near", {"near": False}),
    Setting(
        "single keys ignore names",
        {"name_threshold": 0, "name_min_bits": 0, "name_mismatch_threshold": 0},
    ),
    Setting("--near-name-min-bits 4", {"near_name_min_bits": 4}),
]


def drain(target: database.BenchDatabase, setting: Setting) -> None:
    """``kpi-red match --limit 0`` in-process with the setting's options."""
    from matcher.run import MatchOptions, run_match

    options = replace(MatchOptions(limit=None), **setting.options)
    run_match(target.conninfo, settings=load_settings(database.PROJECT_DIR), options=options)


def sweep(
    *, size: str, density: float, seed: int, settings: Sequence[Setting], keep: bool = False
) -> list[Recall]:
    """Load, build, then one copy drained per setting (``keep``: the databases stay)."""
    workdir = Path(tempfile.mkdtemp(prefix="kpi-red-recall-"))
    name = f"{database.bench_name(size)}_recall"
    main = database.create(name, home=workdir / name)
    results = []
    try:
        demo.load(
            main.conninfo,
            load_settings(database.PROJECT_DIR),
            size=size,
            seed=seed,
            density=density,
        )
        main.dbt("build")
        main.execute("vacuum analyze", autocommit=True)
        for number, setting in enumerate(settings):
            copy = database.clone(main, f"{name}_{number}")
            try:
                drain(copy, setting)
                results.append(measure(copy, label=setting.label, density=density))
            finally:
                if not keep:
                    database.drop(copy)
    finally:
        if not keep:
            database.drop(main)
    return results


def sweep_table(results: Sequence[Recall]) -> str:
    lines = [f"{'density':>7}  {'setting':<32} {'links':>6} {'wrong':>5} {'recall':>7}"]
    for result in results:
        lines.append(
            f"{result.density:>7.2f}  {result.label:<32} {result.links:>6} {result.wrong:>5} "
            f"{result.recall_of():>7.1%}"
        )
    return "\n".join(lines)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--size", type=click.Choice(list(demo.SIZES)), default="small", show_default=True)
@click.option("--densities", default="0,0.33,0.5", show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--sweep/--no-sweep", "with_sweep", default=False, help="Also move each threshold.")
@click.option("--keep", is_flag=True, help="Keep the databases (named in the output).")
def main(size: str, densities: str, seed: int, with_sweep: bool, keep: bool) -> None:
    """Recall and wrong links per scenario and rule at each density (and threshold).

    Example: python -m bench.recall --size small --densities 0,0.33,0.5 --sweep
    """
    everything: list[Recall] = []
    if keep:
        click.echo(f"databases kept: {database.bench_name(size)}_recall[_<setting number>]")
    for density in (float(part) for part in densities.split(",") if part.strip()):
        results = sweep(
            size=size,
            density=density,
            seed=seed,
            settings=SWEEP if with_sweep else SWEEP[:1],
            keep=keep,
        )
        click.echo(f"== {size}, density {density:.2f}, defaults ==")
        click.echo(render(results[0]))
        click.echo("")
        everything.extend(results)
    click.echo(sweep_table(everything))


if __name__ == "__main__":
    main()
