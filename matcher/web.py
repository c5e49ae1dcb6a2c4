"""``kpi-red serve``: the recovery panel over HTTP (FastAPI; the ``serve`` extra).

Read-only: two GET routes and the page's static files. The API returns exactly what
``kpi-red metrics --json`` prints (``matcher.panel.load_payload``). Database problems are
a 503 with a JSON body naming the problem in words, never a traceback or a DSN; the
detail goes to the server log (already stripped of passwords by ``matcher.store``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from matcher import panel
from matcher.store.base import DatabaseError
from matcher.store.panel import MetricsNotBuiltError

API_PATH = "/api/v1/ops/payments/cabinet-financial-14d/kpi-red-recovery-metrics"
REVIEW_QUEUE_PATH = "/api/v1/ops/kpi-red/review-queue"
"""One reviewable reason bucket's red leads (the panel links each such cause to it)."""
STATIC_DIR = Path(__file__).resolve().parent / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

log = logging.getLogger("kpi_red.web")


def create_app(*, conninfo: str, time_zone: str | None = None) -> FastAPI:
    """The panel's app, reading the database at ``conninfo`` on every request; days are
    in ``time_zone``, by default the one the last ``dbt build`` used."""
    app = FastAPI(
        title="kpi-red recovery panel",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        if request.url.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.get(API_PATH)
    def recovery_metrics(
        days: int = Query(panel.CONTRACT_DAYS, ge=1, le=366),
        live: bool = Query(False),
    ) -> Any:
        """``{today, yesterday, last_7_days, current_backlog, current_backlog_is_live}``
        (+ ``last_<days>_days``); ``live=true`` counts the backlog view now."""
        try:
            return panel.load_payload(conninfo, days=days, time_zone=time_zone, live=live)
        except MetricsNotBuiltError as exc:
            log.warning("%s", exc)
            return _unavailable("metrics_not_built", "The metrics are not built yet: run dbt.")
        except DatabaseError as exc:
            log.warning("%s", exc)
            return _unavailable("database_unavailable", "The database cannot be read right now.")

    @app.get(REVIEW_QUEUE_PATH)
    def review_queue(
        reason: str = Query(..., pattern="^(conflict|low_confidence|ambiguous|name_mismatch)$"),
        limit: int = Query(200, ge=1, le=5000),
    ) -> Any:
        """The red leads a reviewer settles in one reason bucket, oldest first, and the
        command that reviews them (``kpi-red review list --reason <reason>``)."""
        from matcher.store import review as store_review

        try:
            leads = store_review.bucket_leads(conninfo, reason=reason, limit=limit)
        except DatabaseError as exc:
            log.warning("%s", exc)
            return _unavailable("database_unavailable", "The database cannot be read right now.")
        return {
            "reason": reason,
            "command": f"kpi-red review list --reason {reason}",
            "leads": leads,
        }

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _unavailable(error: str, message: str) -> JSONResponse:
    return JSONResponse(
        status_code=503,
        content={"error": error, "message": message},
        headers={"Retry-After": "60"},
    )
