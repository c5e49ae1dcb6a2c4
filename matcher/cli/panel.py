"""``kpi-red metrics`` and ``kpi-red serve``: the recovery panel, in a terminal and on the
web."""

from __future__ import annotations

from collections.abc import Callable

import click

from matcher.cli.common import Context, connection_options, echo_json, handle_errors, json_option


@click.command()
@connection_options
@json_option
@click.option(
    "--watch",
    type=click.IntRange(min=1),
    metavar="SECONDS",
    help="Redraw every SECONDS until Ctrl-C (with --json: one JSON line each time).",
)
@click.option(
    "--days",
    type=click.IntRange(1, 366),
    default=7,
    show_default=True,
    help="Days in the trend (--json adds last_<N>_days when N is not 7).",
)
@click.option(
    "--live",
    is_flag=True,
    help="Count the backlog view now (reads every lead) instead of the last build's figure.",
)
@click.pass_obj
@handle_errors
def metrics(ctx: Context, as_json: bool, watch: int | None, days: int, live: bool) -> None:
    """Is the red backlog draining? Today's numbers, the trend and the alerts.

    Reads only the dbt models ops.v_cabinet_kpi_red_recovery_metrics_daily and (--live)
    ops.v_cabinet_kpi_red_backlog (a read-only role suffices): run `dbt build` first.
    "Today" is the newest day the metrics model holds; the current backlog is its
    backlog_end, the backlog at the last dbt build, unless --live counts the backlog view
    now. --json prints {"today", "yesterday", "last_7_days", "current_backlog",
    "current_backlog_is_live"}; a day without a row in the model has null numbers.

    Example: kpi-red metrics --watch 60
    """
    import json as json_module

    from matcher import panel

    conninfo = ctx.connection.conninfo

    def show() -> None:
        # the days are in the zone the last dbt build used (read with the rows)
        payload, time_zone = panel.load_panel(conninfo, days=days, live=live)
        if as_json and watch:
            click.echo(json_module.dumps(payload, ensure_ascii=False))
        elif as_json:
            echo_json(payload)
        else:
            click.echo(panel.render(payload, days=days, time_zone=time_zone))

    if watch is None:
        show()
    else:
        _watch(show, seconds=watch, clear=not as_json)


def _watch(show: Callable[[], None], *, seconds: int, clear: bool) -> None:
    """Call ``show`` every ``seconds`` until Ctrl-C (exit 0). The first failure is fatal;
    later database errors are shown and retried, so a restart of PostgreSQL is survived."""
    import time
    from datetime import datetime

    from matcher.store.base import DatabaseError

    first = True
    try:
        while True:
            if clear:
                click.clear()
            try:
                show()
            except DatabaseError as exc:
                if first:
                    raise
                click.echo(click.style(f"error: {exc} (retrying)", fg="red"), err=True)
            first = False
            if clear:
                stamp = datetime.now().strftime("%H:%M:%S")
                click.echo(
                    click.style(f"\nupdated {stamp}; every {seconds}s; Ctrl-C to stop", dim=True)
                )
            time.sleep(seconds)
    except KeyboardInterrupt:
        return


@click.command()
@connection_options
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="TCP port."
)
@click.pass_obj
@handle_errors
def serve(ctx: Context, host: str, port: int) -> None:
    """Serve the panel: a web page and its JSON API (read-only; no authentication).

    \b
    GET /   the panel and a 14-day chart, refreshing every 60 s
    GET /api/v1/ops/payments/cabinet-financial-14d/kpi-red-recovery-metrics
            the same JSON as `kpi-red metrics --json` (?days=14, ?live=true as --live);
            503 when the database is not ready

    Example: kpi-red serve --port 8000
    """
    try:
        import uvicorn

        from matcher import web
    except ImportError:
        raise click.ClickException(
            "kpi-red serve needs the serve extra: pip install 'kpi-red-recovery[serve]'"
        ) from None
    app = web.create_app(conninfo=ctx.connection.conninfo)
    click.echo(f"the recovery panel: http://{host}:{port}/  (Ctrl-C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="info")
