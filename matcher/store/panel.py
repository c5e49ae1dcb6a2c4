"""What ``kpi-red metrics`` and ``kpi-red serve`` read: two dbt models, nothing else, in
a read-only transaction (a role with SELECT on them suffices).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from matcher.secrets import first_line
from matcher.store import relations
from matcher.store.base import DatabaseError, composed, connect, qualified, through_rebuilds


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
    metrics = qualified(relations.METRICS)
    backlog = qualified(relations.BACKLOG)

    def read(conn: psycopg.Connection) -> tuple[list[dict[str, Any]], int | None, date, str]:
        live_backlog: int | None = None
        with conn.cursor(row_factory=dict_row) as cursor:
            cursor.execute("set local statement_timeout = '30s'")
            cursor.execute(composed("panel.sql", "metrics", metrics=metrics), {"days": days})
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
                conn, lambda: read(conn), built=relations.METRICS
            )
        except psycopg.errors.UndefinedTable as exc:
            missing = exc.diag.message_primary or "a model is missing"
            raise MetricsNotBuiltError(
                f"the metrics are not built yet: {missing} (run `dbt build` first)"
            ) from None
        except psycopg.errors.OperationalError:
            raise
        except psycopg.Error as exc:
            raise DatabaseError(f"cannot read the metrics: {first_line(exc, conninfo)}") from None
    return PanelRows(
        metrics=rows, live_backlog=live_backlog, local_today=local_today, time_zone=zone
    )


def _built_setting(cursor: psycopg.Cursor[Any], name: str) -> Any:
    """One var as the last ``dbt build`` used it (``ops.kpi_red_settings``)."""
    cursor.execute(
        sql.SQL("select setting_value from {} where setting_name = %s").format(
            qualified(relations.SETTINGS)
        ),
        (name,),
    )
    row = cursor.fetchone()
    if row is None:
        return None
    return row["setting_value"] if isinstance(row, dict) else row[0]
