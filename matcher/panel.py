"""The recovery panel: the JSON payload built from metrics rows, and its terminal rendering.

``build_payload`` (pure) turns the rows of ``ops.v_cabinet_kpi_red_recovery_metrics_daily``
(and, when asked for, the live size of ``ops.v_cabinet_kpi_red_backlog``) into the JSON
contract shared by ``kpi-red metrics --json``, the HTTP API and the web page; ``render``
(pure) draws it for a terminal. ``load_payload``, at the bottom, is the one step that reads
(through ``db``).

The current backlog is the newest day's ``backlog_end``: the backlog at the last ``dbt
build`` (a dbt test holds it equal to the backlog view then), the same number as the
trend's last row and the BI tool's, read in a millisecond. ``live`` counts the backlog view
instead: exact now, but a read of every lead (a quarter of a second at 500,000 leads).

"Today" is the newest ``metric_date`` the model holds (so a build with the dbt var
``as_of`` shows that day); with no rows at all, the current date in the metrics time zone.
A day with no row in the model (before the first lead, or not built) is an entry whose
numbers are all ``null``: the panel never invents a backlog it was not told.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

import click

from matcher import todo
from matcher.todo import dash as _dash

CONTRACT_DAYS = 7

# The contract fields first, in this order; then the model's other columns.
DAILY_FIELDS = (
    "metric_date",
    "backlog_start",
    "new_backlog_in",
    "matched_out",
    "backlog_end",
    "net_change",
    "top_fail_reason",
)
EXTRA_FIELDS = (
    "reviewed_out",
    "other_out",
    "attempts",
    "matched_attempts",
    "failed_attempts",
    "failed_missing_identifiers",
    "failed_no_match",
    "failed_conflict",
    "failed_low_confidence",
    "failed_ambiguous",
    "failed_name_mismatch",
    "failed_person_changed",
    "conflicts",
    "is_inflow_exceeding_recovery",
    "is_missing_identifiers_dominant",
    "has_conflicts",
)
FAIL_REASONS = (
    "missing_identifiers",
    "no_match",
    "conflict",
    "low_confidence",
    "ambiguous",
    "name_mismatch",
    "person_changed",
)
"""The matcher's fail reasons: each has a ``failed_<reason>`` column."""
FLAG_FIELDS = frozenset(
    {"is_inflow_exceeding_recovery", "is_missing_identifiers_dominant", "has_conflicts"}
)

Daily = dict[str, Any]
Payload = dict[str, Any]


# --- the payload ----------------------------------------------------------------------


def build_payload(
    rows: Sequence[Mapping[str, Any]],
    *,
    local_today: date,
    live_backlog: int | None = None,
    days: int = CONTRACT_DAYS,
    causes: Sequence[Mapping[str, Any]] | None = None,
) -> Payload:
    """The panel's JSON: ``today``, ``yesterday``, ``last_7_days``, ``current_backlog``,
    ``current_backlog_is_live``, then ``what_to_do`` (``causes``: the backlog by cause).

    ``rows`` are metrics rows (any order, any extra columns). ``local_today`` is only used
    when there are no rows. ``current_backlog`` is ``live_backlog`` when given, else the
    newest row's ``backlog_end`` (0 without rows: no lead yet). With ``days`` other than 7 a
    ``last_<days>_days`` list follows (the web page asks for 14).
    """
    by_date = {_as_date(row["metric_date"]): row for row in rows}
    today = max(by_date) if by_date else local_today
    yesterday = today - timedelta(days=1)
    at_last_build = int(by_date[today]["backlog_end"]) if by_date else 0
    payload: Payload = {
        "today": daily(by_date[today]) if today in by_date else None,
        "yesterday": daily(by_date[yesterday]) if yesterday in by_date else None,
        "last_7_days": _series(by_date, today, CONTRACT_DAYS),
        "current_backlog": at_last_build if live_backlog is None else int(live_backlog),
        "current_backlog_is_live": live_backlog is not None,
    }
    payload["what_to_do"] = todo.what_to_do(causes)
    if days != CONTRACT_DAYS:
        payload[f"last_{days}_days"] = _series(by_date, today, days)
    return payload


def daily(row: Mapping[str, Any]) -> Daily:
    """One model row as a ``Daily``: contract fields, the other columns, then ``alerts``."""
    entry: Daily = {"metric_date": _as_date(row["metric_date"]).isoformat()}
    for name in (*DAILY_FIELDS[1:], *EXTRA_FIELDS):
        value = row.get(name)
        if value is None:
            entry[name] = None
        elif name == "top_fail_reason":
            entry[name] = str(value)
        elif name in FLAG_FIELDS:
            entry[name] = bool(value)
        else:
            entry[name] = int(value)
    entry["alerts"] = alerts(entry)
    return entry


def empty_daily(day: date) -> Daily:
    """A day the model has no row for: every number ``null``, no alerts."""
    entry: Daily = {"metric_date": day.isoformat()}
    entry.update(dict.fromkeys((*DAILY_FIELDS[1:], *EXTRA_FIELDS)))
    entry["alerts"] = []
    return entry


def alerts(entry: Mapping[str, Any]) -> list[dict[str, str]]:
    """The three alerts, from the model's flags, in words: ``[{key, level, message}]``."""
    found: list[dict[str, str]] = []
    if entry.get("is_inflow_exceeding_recovery"):
        found.append(
            {
                "key": "inflow_exceeding_recovery",
                "level": "danger",
                "message": (
                    f"More leads came in ({_n(entry.get('new_backlog_in'))}) than left the "
                    f"backlog ({_n(entry.get('matched_out'))} recovered + "
                    f"{_n(entry.get('other_out'))} other): it is not draining."
                ),
            }
        )
    if entry.get("is_missing_identifiers_dominant"):
        found.append(
            {
                "key": "missing_identifiers_dominant",
                "level": "warning",
                "message": (
                    "missing_identifiers dominates the failures "
                    f"({_n(entry.get('failed_missing_identifiers'))} of "
                    f"{_n(entry.get('failed_attempts'))} failed attempts): fix the data at "
                    "the source."
                ),
            }
        )
    if entry.get("has_conflicts"):
        count = entry.get("conflicts")
        noun = "conflict" if count == 1 else "conflicts"
        found.append(
            {
                "key": "conflicts",
                "level": "danger",
                "message": f"{_n(count)} {noun}: identifiers point at different persons.",
            }
        )
    return found


def failures(entry: Mapping[str, Any] | None) -> list[tuple[str, int]]:
    """The day's failed attempts by reason, the most frequent first (none: empty)."""
    if not entry:
        return []
    counts = [(reason, entry.get(f"failed_{reason}") or 0) for reason in FAIL_REASONS]
    return sorted(((reason, n) for reason, n in counts if n), key=lambda item: (-item[1], item[0]))


def _series(by_date: Mapping[date, Mapping[str, Any]], today: date, days: int) -> list[Daily]:
    first = today - timedelta(days=days - 1)
    series = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        series.append(daily(by_date[day]) if day in by_date else empty_daily(day))
    return series


def _as_date(value: Any) -> date:
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _n(value: Any) -> str:
    return "?" if value is None else str(value)


# --- the terminal panel ---------------------------------------------------------------

BLOCKS = " ▏▎▍▌▋▊▉"
SPARKS = "▁▂▃▄▅▆▇█"
BAR_WIDTH = 12
LEVEL_COLOURS = {"danger": "red", "warning": "yellow"}


def render(payload: Mapping[str, Any], *, days: int = CONTRACT_DAYS, time_zone: str = "") -> str:
    """The panel as text with ANSI styles (``click.echo`` drops them off a TTY)."""
    series: list[Daily] = list(payload.get(f"last_{days}_days") or payload["last_7_days"])
    today: Daily | None = payload["today"]
    day = series[-1]["metric_date"] if series else "?"
    zone = f" ({time_zone})" if time_zone else ""
    lines = [click.style(f"Red KPI backlog recovery · {day}{zone}", bold=True), ""]
    lines += _headline(payload, today)
    lines += ["", *_trend(series)]
    lines += ["", *_alert_lines(today)]
    lines += todo.render_lines(payload.get("what_to_do"))
    return "\n".join(lines)


def _headline(payload: Mapping[str, Any], today: Daily | None) -> list[str]:
    def value(name: str) -> Any:
        return None if today is None else today.get(name)

    net = value("net_change")
    rows = [
        (
            "Current backlog",
            str(payload["current_backlog"]),
            "live, from the backlog view"
            if payload.get("current_backlog_is_live")
            else "at the last dbt build (--live: now)",
        ),
        ("Entered today", _dash(value("new_backlog_in")), "new red leads"),
        ("Recovered today", _dash(value("matched_out")), "matched by kpi-red"),
        ("Reviewed today", _dash(value("reviewed_out")), "linked by a review (kpi-red review)"),
        ("Other exits", _dash(value("other_out")), "linked or claimed elsewhere"),
        ("Net change", _signed(net), _trend_word(net)),
        (
            "Failed today",
            _dash(value("failed_attempts")),
            " · ".join(f"{reason} {count}" for reason, count in failures(today)),
        ),
        ("Top fail reason", _dash(value("top_fail_reason")), ""),
    ]
    lines = []
    for label, shown, note in rows:
        styled = f"{shown:>7}"
        if label == "Current backlog":
            styled = click.style(styled, bold=True)
        elif label == "Net change":
            styled = _net_style(styled, net, bold=True)
        elif label == "Top fail reason":
            styled = f"  {shown}"
        lines.append(
            f"  {label:<16}{styled}" + (f"  {click.style(note, dim=True)}" if note else "")
        )
    if today is None:
        lines.append(click.style("  no metrics for this day yet: run dbt build", fg="yellow"))
    return lines


def _trend(series: Sequence[Daily]) -> list[str]:
    ends = [entry["backlog_end"] for entry in series]
    known = [value for value in ends if value is not None]
    flows = [
        value
        for entry in series
        for value in (entry["new_backlog_in"], _out(entry))
        if value is not None
    ]
    flow_top = max(flows, default=0)
    summary = f"{known[0]} → {known[-1]}" if known else "no data"
    lines = [
        click.style(f"  Last {len(series)} days", bold=True)
        + f"   backlog {_sparkline(ends)}  {summary}",
        click.style(
            f"  {'day':<10} {'backlog':>8} {'net':>5}   {'entered':<{BAR_WIDTH + 5}}"
            f"{'recovered + other':<{BAR_WIDTH + 5}}",
            dim=True,
        ),
    ]
    for entry in series:
        net = entry["net_change"]
        inflow, outflow = entry["new_backlog_in"], _out(entry)
        lines.append(
            f"  {entry['metric_date']:<10} {_dash(entry['backlog_end']):>8} "
            + _net_style(f"{_signed(net):>5}", net)
            + f"   {_dash(inflow):>4} "
            + click.style(f"{_bar(inflow, flow_top):<{BAR_WIDTH}}", fg="red")
            + f"{_dash(outflow):>4} "
            + click.style(_bar(outflow, flow_top), fg="green")
        )
    return [line.rstrip() for line in lines]


def _alert_lines(today: Daily | None) -> list[str]:
    found = today["alerts"] if today else []
    if not found:
        return [click.style("  ✓ no alerts", fg="green")]
    return [
        click.style(f"  ● {alert['message']}", fg=LEVEL_COLOURS.get(alert["level"], "yellow"))
        for alert in found
    ]


def _out(entry: Mapping[str, Any]) -> int | None:
    matched, other = entry.get("matched_out"), entry.get("other_out")
    if matched is None and other is None:
        return None
    return (matched or 0) + (entry.get("reviewed_out") or 0) + (other or 0)


def _trend_word(net: int | None) -> str:
    if net is None:
        return ""
    return "growing" if net > 0 else "draining" if net < 0 else "flat"


def _net_style(text: str, net: int | None, *, bold: bool = False) -> str:
    if net is None or net == 0:
        return text
    return click.style(text, fg="red" if net > 0 else "green", bold=bold)


def _bar(value: int | None, top: int) -> str:
    """A horizontal bar, in eighths of a cell, scaled so ``top`` fills ``BAR_WIDTH``."""
    if not value or top <= 0:
        return ""
    eighths = max(1, round(value / top * (BAR_WIDTH - 1) * 8))
    return "█" * (eighths // 8) + (BLOCKS[eighths % 8] if eighths % 8 else "")


def _sparkline(values: Sequence[int | None]) -> str:
    """One character per day, scaled between the window's lowest and highest value."""
    known = [value for value in values if value is not None]
    if not known:
        return " " * len(values)
    low, high = min(known), max(known)
    steps = len(SPARKS) - 1
    return "".join(
        " "
        if value is None
        else SPARKS[round((value - low) / (high - low) * steps) if high > low else steps // 2]
        for value in values
    )


def _signed(value: int | None) -> str:
    return "—" if value is None else f"{value:+d}" if value else "0"


# --- the one impure step: read the rows, build the payload ----------------------------


def load_payload(
    conninfo: str, *, days: int = CONTRACT_DAYS, time_zone: str | None = None, live: bool = False
) -> Payload:
    """Read the metrics model (and, with ``live``, count the backlog view) and build the
    payload: the CLI and the API's single source. Raises ``matcher.store.base.DatabaseError``
    (``MetricsNotBuiltError`` when dbt has not been built)."""
    return load_panel(conninfo, days=days, time_zone=time_zone, live=live)[0]


def load_panel(
    conninfo: str, *, days: int = CONTRACT_DAYS, time_zone: str | None = None, live: bool = False
) -> tuple[Payload, str]:
    """The payload and the time zone its days are in: by default the ``metrics_time_zone``
    the last ``dbt build`` used, read from the database (not from the local project)."""
    from matcher.store import panel as store
    from matcher.store import review as store_review

    rows = store.read_panel_rows(
        conninfo, days=max(days, CONTRACT_DAYS), time_zone=time_zone, live=live
    )
    payload = build_payload(
        rows.metrics,
        local_today=rows.local_today,
        live_backlog=rows.live_backlog,
        days=days,
        causes=store_review.backlog_causes(conninfo),
    )
    return payload, rows.time_zone
