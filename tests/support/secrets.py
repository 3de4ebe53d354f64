"""A leak detector for tests: collect every text a secret could escape into, then check.

``SecretWatch(secrets)`` gathers log output, answer bodies, exceptions and object reprs and
``check()`` fails naming WHERE a secret showed up (never the secret itself, which would put
it in the test report). It looks for each secret as sent, percent-encoded and JSON-escaped.

Log capture goes through the real handler chain: ``capture_logs()`` runs
``common.logs.configure`` and points its handler (with the redacting filter) at a buffer, so
what is checked is what a deployment would print; every logger is opened to DEBUG for the
duration (werkzeug, urllib3 and requests included), so a line that only shows up at DEBUG
is checked too. It also records each record's raw message before any handler sees it
(``raw=True``): code must not hand a secret to the logger in the first place; the redactor
is the second line of defence, not the first.

Apply it to any scenario, e.g. the lead's fault cases of other backends::

    watch = SecretWatch([token, client_secret])
    with watch.capture_logs(), watch.capture_problems():
        resp = client.get(...); watch.add_response(resp)
    watch.add_text("router stderr", router.log())
    watch.check()
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, quote_plus

from common import http as common_http
from common.logs import configure


class _RawRecords(logging.Handler):
    """Sees each record before the redacting handler rewrites it in place."""

    def __init__(self, sink: list[tuple[str, str]]) -> None:
        super().__init__(logging.NOTSET)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.sink.append((f"log record {record.name}:{record.levelname}", text))


class SecretWatch:
    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = [s for s in secrets if s]
        if any(len(s) < 6 for s in self.secrets):
            raise ValueError("use secrets of 6+ characters: short ones match by chance")
        self.texts: list[tuple[str, str]] = []

    # -- collecting --------------------------------------------------------------------
    def add_text(self, where: str, text: str | bytes | None) -> None:
        if text is None:
            return
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        self.texts.append((where, text))

    def add_response(self, resp: Any, where: str | None = None) -> None:
        """An answer's body and headers (Flask test response or requests.Response)."""
        label = where or f"answer {getattr(resp, 'status_code', '?')}"
        body = resp.get_data() if hasattr(resp, "get_data") else resp.content
        self.add_text(label + " body", body)
        self.add_text(label + " headers", "\n".join(f"{k}: {v}" for k, v in resp.headers.items()))

    def add_exception(self, exc: BaseException, where: str = "exception") -> None:
        """str, repr, args and problem fields of ``exc`` and of its whole cause chain."""
        seen: set[int] = set()
        current: BaseException | None = exc
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            name = f"{where} {type(current).__name__}"
            self.add_text(name + " str", str(current))
            self.add_text(name + " repr", repr(current))
            self.add_text(name + " args", repr(current.args))
            for attr in ("detail", "extra", "headers", "field"):
                if hasattr(current, attr):
                    self.add_text(f"{name} .{attr}", repr(getattr(current, attr)))
            current = current.__cause__ or current.__context__

    def add_object(self, obj: Any, where: str | None = None) -> None:
        label = where or type(obj).__name__
        self.add_text(label + " repr", repr(obj))
        self.add_text(label + " str", str(obj))

    @contextmanager
    def capture_logs(self, level: str = "DEBUG", *, raw: bool = True) -> Iterator[None]:
        """Every log line of every logger, through the connector's real handler chain."""
        configure("INFO")
        root = logging.getLogger()
        handler = next(h for h in root.handlers if getattr(h, "_rds", False))
        buffer = io.StringIO()
        old_stream = handler.setStream(buffer)
        records: list[tuple[str, str]] = []
        raw_handler = _RawRecords(records)
        if raw:
            root.handlers.insert(0, raw_handler)
        levels = {
            name: logging.getLogger(name).level
            for name in ["", *logging.root.manager.loggerDict]
            if isinstance(logging.getLogger(name), logging.Logger)
        }
        for name in levels:
            logging.getLogger(name).setLevel(level)
        try:
            yield
        finally:
            for name, old in levels.items():
                logging.getLogger(name).setLevel(old)
            if raw:
                root.removeHandler(raw_handler)
            handler.setStream(old_stream)
            self.add_text("log output", buffer.getvalue())
            self.texts.extend(records)
            self.log_output = buffer.getvalue()

    @contextmanager
    def capture_problems(self) -> Iterator[None]:
        """Every ``ConnectorError`` the in-process functions answer with (and its causes)."""
        original = common_http.problem_response

        def recording(err: Any, request: Any, request_id: Any) -> Any:
            self.add_exception(err, "answered error")
            return original(err, request, request_id)

        common_http.problem_response = recording
        try:
            yield
        finally:
            common_http.problem_response = original

    # -- checking ----------------------------------------------------------------------
    def _forms(self, secret: str) -> set[str]:
        return {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}

    def leaks(self) -> list[str]:
        """Where any secret appears, as 'secret #i in <where>' (the secret is not shown)."""
        found = []
        for i, secret in enumerate(self.secrets):
            forms = self._forms(secret)
            for where, text in self.texts:
                if any(form in text for form in forms):
                    found.append(f"secret #{i} in {where}")
        return found

    def check(self) -> None:
        assert self.texts, "nothing was collected: the watch saw no text at all"
        leaks = self.leaks()
        assert not leaks, "secrets leaked: " + "; ".join(sorted(set(leaks)))
