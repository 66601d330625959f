"""The read-only web application: Starlette routes, Jinja2 pages, JSON twins.

Every page has a twin under /api with the same data (pages.py builds one
dict; the page renders it, the twin serialises it). No JavaScript: the queue
page refreshes itself with <meta http-equiv="refresh">, the plots are SVG
drawn on the server, and the Content-Security-Policy forbids scripts
altogether, so an eval.py's stderr or a model's title can never run in an
operator's browser.
"""
from __future__ import annotations

import json
import math
import queue as queue_module
import threading
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import psycopg
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from .. import db
from . import pages, plot

TEMPLATES = Path(__file__).resolve().parent / "templates"
DEFAULT_REFRESH_SECONDS = 5
POOL_SIZE = 4
APPLICATION_NAME = "model-eval-gate-web"
SECURITY_HEADERS = {
    # No script, no frame, no form, no remote anything: the pages are documents.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class Connections:
    """A few autocommit connections reused across requests (each request borrows one)."""

    def __init__(self, dsn: str, size: int = POOL_SIZE):
        self.dsn = dsn
        self._idle: queue_module.LifoQueue = queue_module.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)

    @contextmanager
    def borrow(self):
        with self._slots:
            try:
                conn = self._idle.get_nowait()
            except queue_module.Empty:
                conn = None
            if conn is None or conn.closed or conn.broken:
                conn = db.connect(self.dsn, autocommit=True, application_name=APPLICATION_NAME)
            try:
                yield conn
            except psycopg.OperationalError:
                conn.close()
                raise
            else:
                self._idle.put(conn)

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue_module.Empty:
                return


# ------------------------------------------------------------- formatting --

def _number(value: Any, digits: int = 4) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return "\u2013"
    return f"{value:.{digits}f}"


def _signed(value: Any, digits: int = 4) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return "\u2013"
    return f"{value:+.{digits}f}"


def _when(value: Any) -> str:
    if not value:
        return "\u2013"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def _seconds(value: Any) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "\u2013"
    if abs(value) < 1:
        return f"{value * 1000:.0f} ms"
    if abs(value) < 120:
        return f"{value:.2f} s"
    if abs(value) < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def _bytes(value: Any) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "\u2013"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(value)  # pragma: no cover


def _short(value: Any, length: int = 16) -> str:
    return str(value)[:length] if value else "\u2013"


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _templates() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(number=_number, signed=_signed, when=_when, seconds=_seconds, bytes=_bytes, short=_short,
                       tojson_pretty=lambda v: json.dumps(v, indent=2, sort_keys=True, default=_json_default))
    return env


# ------------------------------------------------------------------ views --

class WebApp:
    def __init__(self, dsn: str, *, refresh_seconds: int = DEFAULT_REFRESH_SECONDS):
        self.connections = Connections(dsn)
        self.refresh_seconds = refresh_seconds
        self.templates = _templates()

    def _page(self, request: Request, template: str, data: dict, *, title: str, status: int = 200,
              **extra) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        path = request.url.path[len(root):] if request.url.path.startswith(root) else request.url.path
        twin = f"{root}/api{path if path != '/' else ''}" + (f"?{request.url.query}" if request.url.query else "")
        html = self.templates.get_template(template).render(
            data=data, title=title, href=lambda target: f"{root}{target}", twin=twin, **extra)
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    def _json(self, data: Any, status: int = 200) -> Response:
        body = json.dumps(data, indent=2, sort_keys=True, default=_json_default, allow_nan=False)
        return Response(body + "\n", status_code=status, media_type="application/json", headers=SECURITY_HEADERS)

    def _serve(self, build: Callable[[psycopg.Connection], dict], render: Callable[[Request, dict], HTMLResponse]):
        """A route pair: HTML at the path, the same data as JSON under /api."""
        def handler(request: Request, *, as_json: bool) -> Response:
            try:
                with self.connections.borrow() as conn:
                    data = build(conn, request)
            except pages.NotFound as exc:
                if as_json:
                    return self._json({"error": str(exc)}, status=404)
                return self._page(request, "error.html", {"error": str(exc)}, title="Not found", status=404)
            except (psycopg.OperationalError, psycopg.errors.UndefinedTable, psycopg.errors.InsufficientPrivilege) as exc:
                detail = " ".join(str(exc).split())
                if isinstance(exc, psycopg.errors.UndefinedTable):
                    message = f"the database has no gate schema ({detail}); apply it with: model-eval-gate migrate"
                elif isinstance(exc, psycopg.errors.InsufficientPrivilege):
                    message = f"the web's database role may not read this ({detail}); see docs/web.md for the GRANTs"
                else:
                    message = f"the database is not reachable: {detail}"
                if as_json:
                    return self._json({"error": message}, status=503)
                return self._page(request, "error.html", {"error": message}, title="Database unavailable",
                                  status=503)
            return self._json(data) if as_json else render(request, data)
        return (lambda request: handler(request, as_json=False)), (lambda request: handler(request, as_json=True))

    # builders take (conn, request) so that path parameters reach pages.py
    def _verdict_data(self, conn, request: Request) -> dict:
        job = request.query_params.get("job")
        if job is not None and not job.isdigit():
            raise pages.NotFound(f"job {job!r} is not a job number")
        return pages.verdict(conn, request.path_params["artifact_id"], job_id=int(job) if job else None)

    def _render_verdict(self, request: Request, data: dict) -> HTMLResponse:
        rows = [plot.ForestRow(**row) for row in data["forest_plot"]]
        svg = Markup(plot.forest_plot_svg(rows))
        return self._page(request, "verdict.html", data, title=f"Verdict: {data['version']['id']}", forest_svg=svg)

    def _render_lineage(self, request: Request, data: dict) -> HTMLResponse:
        over_time = data["primary_metric_over_time"]
        svg = Markup(plot.timeline_svg(over_time["points"], metric=over_time["metric"] or "",
                                       higher_is_better=over_time["higher_is_better"]))
        return self._page(request, "lineage.html", data, title=f"Lineage: {data['lineage_id']}", timeline_svg=svg)

    def routes(self) -> list[Route]:
        pairs = [
            ("/", lambda conn, r: pages.index(conn), lambda r, d: self._page(r, "index.html", d, title="Overview")),
            ("/verdicts/{artifact_id}", self._verdict_data, self._render_verdict),
            ("/lineages/{lineage_id}", lambda conn, r: pages.lineage(conn, r.path_params["lineage_id"]),
             self._render_lineage),
            ("/queue", lambda conn, r: pages.queue(conn),
             lambda r, d: self._page(r, "queue.html", d, title="Queue", refresh_seconds=self.refresh_seconds)),
            ("/benchmarks", lambda conn, r: pages.benchmarks(conn),
             lambda r, d: self._page(r, "benchmarks.html", d, title="Benchmarks")),
        ]
        routes = []
        for path, build, render in pairs:
            page, twin = self._serve(build, render)
            routes.append(Route(path, page, methods=["GET", "HEAD"]))
            routes.append(Route("/api" + (path if path != "/" else ""), twin, methods=["GET", "HEAD"]))
        routes.append(Route("/api/", lambda r: RedirectResponse(f"{r.scope.get('root_path', '')}/api"),
                            methods=["GET", "HEAD"]))
        routes.append(Route("/healthz", self._health, methods=["GET", "HEAD"]))
        return routes

    def _health(self, request: Request) -> Response:
        try:
            with self.connections.borrow() as conn:
                db.fetch_one(conn, "round_trip")
        except psycopg.Error as exc:
            return PlainTextResponse(f"database unreachable: {' '.join(str(exc).split())}\n", status_code=503)
        return PlainTextResponse("ok\n")


def create_app(dsn: str, *, refresh_seconds: int = DEFAULT_REFRESH_SECONDS) -> Starlette:
    web = WebApp(dsn, refresh_seconds=refresh_seconds)

    @asynccontextmanager
    async def lifespan(app):
        yield
        web.connections.close()

    app = Starlette(routes=web.routes(), lifespan=lifespan)
    app.state.web = web
    return app
