"""Logging set-up: one line per event, and a filter that scrubs secrets from every record.

Code never logs tokens on purpose; the filter is the second line of defence for what a
library might print (a URL with credentials, an ``Authorization`` header, a session-form
``userId``).
"""

from __future__ import annotations

import logging
import re

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


def configure(level: str = "INFO") -> None:
    """Send the connector's records to stderr, one line each, through the redactor."""
    root = logging.getLogger()
    if not any(getattr(h, "_rds", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler._rds = True  # type: ignore[attr-defined]
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)
    root.setLevel(level)
    # werkzeug's access line would repeat ours and print query strings: keep its warnings only
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.INFO if level == "DEBUG" else logging.WARNING)
