"""The local emulator and the Kubernetes container: every function in one Flask app.

It only composes: the route table (``common/routes.py``) says which function answers
which method and path; each function is loaded from ``functions/<name>/main.py`` exactly
as functions-framework would load it alone. Init (login, then Token Storage registration)
runs before the port is bound -- by ``main()`` here, and under gunicorn through
``--preload``, which builds the app in the master before it opens its socket.

    python local_router.py                          # the emulator (werkzeug, threaded)
    gunicorn --preload 'local_router:create_app()'  # as deployed (see Dockerfile)
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from common import metrics
from common.backends.base import LoginFailed
from common.errors import PROBLEM_CONTENT_TYPE, ConfigError, problem_body
from common.http import json_response
from common.init import run_init
from common.openapi import render as render_openapi
from common.registry import RegistrationFailed
from common.routes import ROUTES, Route, routes_for
from common.runtime import Runtime, set_runtime

ROOT = Path(__file__).resolve().parent
FUNCTIONS = ROOT / "functions"
log = logging.getLogger("rds.router")


def function_names() -> list[str]:
    """Every function folder (one ``main.py`` each)."""
    return sorted(p.parent.name for p in FUNCTIONS.glob("*/main.py"))


def load_function(name: str) -> Callable[..., Response]:
    """Import ``functions/<name>/main.py`` under a unique module name; return ``<name>``."""
    module_name = f"rds_functions.{name}"
    module: ModuleType | None = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, FUNCTIONS / name / "main.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return getattr(module, name)


def _problem(err: HTTPException) -> Response:
    code = err.code or 500
    request_id = uuid.uuid4().hex
    resp = json_response(
        problem_body(
            code,
            err.name,
            err.description or err.name,
            instance=request.path,
            request_id=request_id,
        ),
        code,
        PROBLEM_CONTENT_TYPE,
    )
    resp.headers["X-Request-ID"] = request_id
    if code == 405 and err.get_headers():
        allow = dict(err.get_headers()).get("Allow")
        if allow:
            resp.headers["Allow"] = allow
    return resp


def build_app(runtime: Runtime) -> Flask:
    """One Flask app serving the routes of the configured interfaces, plus probes and the
    OpenAPI document of exactly those interfaces."""
    set_runtime(runtime)
    metrics.enable()  # kept where served: here, not in a function deployed on its own
    app = Flask("rds_connector")
    app.url_map.strict_slashes = False
    served: list[Route] = routes_for(runtime.settings.interfaces)
    for r in served:
        view = load_function(r.name)
        app.add_url_rule(
            r.flask_path,
            endpoint=r.name,
            methods=[r.method],
            # the function gets the request object itself, not Flask's proxy to it
            view_func=lambda _view=view, **_: _view(request._get_current_object()),  # type: ignore[attr-defined]
        )

    @app.get("/metrics")
    def _metrics() -> Response:
        text, content_type = metrics.render()
        return Response(text, content_type=content_type)

    document = render_openapi(runtime.settings.interfaces)

    @app.get("/openapi.yaml")
    def _openapi() -> Response:
        return Response(document, content_type="application/yaml; charset=utf-8")

    @app.get("/healthz")
    def _healthz() -> Response:
        return json_response(
            {
                "status": "ok",
                "servicename": runtime.settings.servicename,
                "implements": sorted(runtime.settings.interfaces),
            }
        )

    app.register_error_handler(HTTPException, _problem)
    return app


def create_app(runtime: Runtime | None = None, *, init: bool = True) -> Flask:
    """Build the runtime, run init (unless told not to), return the app. Gunicorn's entry."""
    runtime = runtime or Runtime.build()
    metrics.enable()  # before init, so its logins and registration are counted too
    if init:
        run_init(runtime)
    return build_app(runtime)


def main() -> int:
    """Run init, then serve on HOST:PORT; exit non-zero with a message when init fails."""
    try:
        runtime = Runtime.build()
        app = create_app(runtime)
    except ConfigError as exc:
        lines = "".join(f"\n  {problem}" for problem in exc.problems)
        print(f"configuration error ({len(exc.problems)}):{lines}", file=sys.stderr)
        return 2
    except (LoginFailed, RegistrationFailed) as exc:
        print(f"init failed: {exc}", file=sys.stderr)
        return 1
    from werkzeug.serving import make_server

    settings = runtime.settings
    try:
        server = make_server(settings.host, settings.port, app, threaded=True)
    except OSError as exc:  # a busy port, an address not ours: said before anything listens
        log.error("router.bind_failed host=%s port=%d error=%s", settings.host, settings.port, exc)
        return 1
    log.info(  # only now: the socket is bound and listening
        "router.listening host=%s port=%d servicename=%s routes=%d",
        settings.host,
        server.server_port,
        settings.servicename,
        len(routes_for(settings.interfaces)),
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


__all__ = ["ROUTES", "build_app", "create_app", "function_names", "load_function", "main"]

if __name__ == "__main__":
    sys.exit(main())
