"""The ``rds-connector`` command: serve the router, check a deployment, or push a folder
through a connector.

click, because Flask already brings it (no new dependency) and it gives subcommands,
typed options, and a progress bar that draws only on a terminal.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click
import requests

from common.push import ConnectorClient, Entry, PushError, iter_report, plan, push


@click.group()
def main() -> None:
    """RDS connector kit: run a connector, check one, or send a folder through one."""


@main.command()
def serve() -> None:
    """Run the router (all functions in one app; init before the port opens)."""
    import local_router

    sys.exit(local_router.main())


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable list.")
def check(as_json: bool) -> None:
    """Check this deployment: settings, Token Storage, registration, backend login.

    Reads the same configuration as `serve`; prints every problem at once, one line each
    naming the setting or service; exits 0 when all is well, 1 otherwise."""
    import json

    from common.check import as_json as findings_json
    from common.check import run_checks

    findings = run_checks()
    if as_json:
        click.echo(json.dumps(findings_json(findings), indent=2))
    else:
        for finding in findings:
            click.echo(finding.line())
        problems = sum(not f.ok for f in findings)
        click.echo(f"{problems} problem{'s' if problems != 1 else ''}" if problems else "all well")
    sys.exit(0 if all(f.ok for f in findings) else 1)


@main.command(name="push")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--to", "url", required=True, help="The connector's base URL (http://host:8080).")
@click.option(
    "--user", "user_id", required=True, help="The userId, e.g. port-zenodo://alice@x.org:TOKEN."
)
@click.option("--project", "project_id", help="Add to this project instead of creating one.")
@click.option("--publish", is_flag=True, help="Publish when every file made it; prints the DOI.")
@click.option(
    "--metadata",
    "crate",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The RO-Crate to send (default: the folder's ro-crate-metadata.json).",
)
def push_command(
    folder: Path, url: str, user_id: str, project_id: str | None, publish: bool, crate: Path | None
) -> None:
    """Send FOLDER as RDS does: project, crate, every file with its path; resumable."""
    entries = plan(folder)
    total = sum(e.size for e in entries)
    display = _Progress(len(entries), total)
    try:
        result = push(
            ConnectorClient(url, user_id),
            folder,
            project_id=project_id,
            crate_path=crate,
            publish=publish,
            on_file=display.file_done,
            on_bytes=display.advance,
        )
    except PushError as exc:
        display.close()
        raise click.ClickException(str(exc)) from None
    except requests.RequestException as exc:  # the connector cannot be reached at all
        display.close()
        raise click.ClickException(
            f"{url} cannot be reached ({exc.__class__.__name__}); is --to right?"
        ) from None
    display.close()
    for line in iter_report(result):
        click.echo(line)
    sys.exit(0 if result.ok else 1)


class _Progress:
    """A bar (files, bytes, rate, time left) on a terminal; a plain line per file elsewhere."""

    def __init__(self, files: int, total: int) -> None:
        self.files, self.done = files, 0
        self.started = time.monotonic()
        self.sent = 0
        self.tty = sys.stderr.isatty()
        self.bar: Any = None  # click's ProgressBar, on a terminal only
        if self.tty:
            self.bar = click.progressbar(
                length=max(total, 1),
                label="pushing",
                file=sys.stderr,
                show_eta=True,
                show_percent=True,
                item_show_func=lambda _: self._status(),
            )
            self.bar.__enter__()

    def _status(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        return f"{self.done}/{self.files} files, {self.sent / elapsed / 2**20:.1f} MiB/s"

    def advance(self, n: int) -> None:
        self.sent += n
        if self.bar is not None:
            self.bar.update(n)

    def file_done(self, entry: Entry) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.render_progress()  # update(0) would not redraw the file count
            return
        click.echo(f"[{self.done}/{self.files}] {entry.status} {entry.name}", err=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None
