"""An HTTP double of RDS's Token Storage (and the Port service's token lookup).

It behaves like the real services where a connector can tell: registrations are parsed
with RDS's own ``RDS.Util.getServiceObject`` (what it cannot parse is a 400 BadRequest),
flat and wrapped payloads are accepted, an existing name answers 200 with
``ServiceExistsAlreadyError`` and keeps the old entry, ``GET``/``DELETE /service/{name}``
read and remove entries, and ``/user/{user}/service/{service}`` answers stored tokens in
the ``{"type": "OAuth2Token", "data": {...}}`` shape.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from flask import Flask, jsonify, request
from RDS import Util


class TokenStorageDouble:
    def __init__(self) -> None:
        self.services: dict[str, dict[str, Any]] = {}
        self.tokens: dict[tuple[str, str], str] = {}
        self.requests: list[tuple[float, str, str]] = []
        self.fail_next = 0  # answer this many requests with 503 first
        self.lock = threading.Lock()
        self.app = self._build()

    def registered_at(self, name: str) -> float | None:
        for at, method, path in self.requests:
            if method == "POST" and path == "/service" and name in self.services:
                return at
        return None

    def _build(self) -> Flask:
        app = Flask("token_storage_double")

        @app.before_request
        def _record() -> Any:
            with self.lock:
                self.requests.append((time.time(), request.method, request.path))
                if self.fail_next > 0:
                    self.fail_next -= 1
                    return jsonify({"error": "unavailable"}), 503
            return None

        @app.post("/service")
        def add_service() -> Any:
            body = request.get_json(force=True, silent=True)
            try:
                service = Util.getServiceObject(body)
            except Exception:  # noqa: BLE001 - the real one answers BadRequest to anything it cannot parse
                return jsonify({"success": False, "message": "BadRequest"}), 400
            with self.lock:
                if service.servicename in self.services:
                    return jsonify({"success": False, "message": "ServiceExistsAlreadyError"})
                self.services[service.servicename] = service.to_json()
            return jsonify({"success": True})

        @app.get("/service")
        def list_services() -> Any:
            items = list(self.services.values())
            return jsonify({"length": len(items), "list": items})

        @app.get("/service/<name>")
        def get_service(name: str) -> Any:
            if name not in self.services:
                return jsonify({"error": "ServiceNotFoundError", "http_code": 404}), 404
            return jsonify(self.services[name])

        @app.delete("/service/<name>")
        def delete_service(name: str) -> Any:
            with self.lock:
                if self.services.pop(name, None) is None:
                    return jsonify({"error": "ServiceNotFoundError", "http_code": 404}), 404
            return jsonify({"success": True})

        @app.get("/user/<user>/service/<service>")
        def user_token(user: str, service: str) -> Any:
            token = self.tokens.get((user, service))
            if token is None:
                return jsonify({"error": "TokenNotFoundError", "http_code": 404}), 404
            return jsonify(
                {
                    "type": "OAuth2Token",
                    "data": {
                        "user": {"type": "User", "data": {"username": user}},
                        "service": self.services.get(service),
                        "access_token": token,
                        "refresh_token": "r-" + token,
                        "expiration_date": 0,
                    },
                }
            )

        return app
