"""Logging set-up: one line per event, and a filter that scrubs secrets from every record.

Code never logs tokens on purpose; the filter is the second line of defence for what a
library might print (a URL with credentials, an ``Authorization`` header, a session-form
``userId``). ``LOG_FORMAT=json`` writes each record as one JSON object per line (time,
level, logger, message), for log collectors; gunicorn's own lines, when it runs us, get
the same format and the same filter.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

_PATTERNS = (
    (re.compile(r"(port-[a-z0-9._-]+://[^\s\"',]*?):[^\s\"',@/]+"), r"\1:***"),
    (re.compile(r"(?i)(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 ***"),
    (
        re.compile(
            r"(?i)((?:access|refresh)_token|client_secret|password|apikey|api_key|token)"
            r"([\"']?\s*[:=]\s*[\"']?)[^\s\"'&,}]+"
        ),
        r"\1\2***",
    ),
    (re.compile(r"(https?://)[^/\s:@]+:[^/\s@]+@"), r"\1***:***@"),
)


def redact(text: str) -> str:
    """Replace anything that looks like a credential in ``text`` with ``***``."""
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


class RedactingFilter(logging.Filter):
    """Render each record once, redacted, so no handler ever sees the raw secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = redact(record.getMessage())
        record.msg, record.args = message, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class SendTimeoutFilter(logging.Filter):
    """gunicorn's "Socket error processing request." for a send that timed out becomes one
    INFO line without a traceback.

    The timeout is ours (``CONNECTOR_SEND_IDLE_TIMEOUT``, common/http.py), it ends the
    connection as intended, and the app has logged the cut answer (``answer.unfinished``);
    gunicorn's worker (the image's gevent one, functions-framework's on Cloud Functions)
    would log it at ERROR with a traceback. Any other socket error is left as it is."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if record.name == "gunicorn.error" and isinstance(exc, TimeoutError):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args = "Closing connection after a send timed out: %s", (exc,)
            record.exc_info, record.exc_text = None, None
        return True


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
GUNICORN_LOGGERS = ("gunicorn.error", "gunicorn.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``pid``
    (which gunicorn worker), ``message`` and, for a failure, ``exception``."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def formatter(fmt: str) -> logging.Formatter:
    """The formatter of ``LOG_FORMAT`` (``text`` or ``json``)."""
    return JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT)


def configure(level: str = "INFO", fmt: str = "text") -> None:
    """Send the connector's records to stderr, one line each (text or JSON), through the
    redactor; give gunicorn's handlers, when it runs us, the same format and filter."""
    root = logging.getLogger()
    ours: list[logging.Handler] = [h for h in root.handlers if getattr(h, "_rds", False)]
    if not ours:
        handler = logging.StreamHandler()
        handler._rds = True  # type: ignore[attr-defined]
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)
        ours = [handler]
    # gunicorn (with --preload) has set up its loggers before it builds the app: same format
    gunicorn = [h for name in GUNICORN_LOGGERS for h in logging.getLogger(name).handlers]
    for each in ours + gunicorn:
        each.setFormatter(formatter(fmt))
        if not any(isinstance(f, RedactingFilter) for f in each.filters):
            each.addFilter(RedactingFilter())
    for each in gunicorn:
        if not any(isinstance(f, SendTimeoutFilter) for f in each.filters):
            each.filters.insert(0, SendTimeoutFilter())  # before the redactor formats it
    root.setLevel(level)
    # werkzeug's access line would repeat ours and print query strings: keep its warnings only
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.INFO if level == "DEBUG" else logging.WARNING)
