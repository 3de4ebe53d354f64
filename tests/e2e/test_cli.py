"""The ``rds-connector`` console script, run as a process against running routers."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.crates import crate
from tests.support.fake_zenodo import FakeZenodo
from tests.support.servers import RouterProcess, ServerThread, router_process

SCRIPT = str(Path(sys.executable).parent / "rds-connector")
USER = "alice@cloud.example.org"
LOCAL_UID = f"port-local://{USER}:tok-cli"
FILES = {
    "raw/2026/a.csv": b"depth,ph\n1,7\n",
    "raw/b b.bin": os.urandom(2 * 1024 * 1024 + 3),
    "Übersicht/naïve 文件.txt": "grüße".encode(),
    "top.txt": b"top",
}
CRATE = crate(
    {
        "name": "Pushed by hand",
        "description": "A folder sent with rds-connector push.",
        "creator": {"@id": "#p"},
        "license": {"@id": "https://spdx.org/licenses/CC-BY-4.0"},
    },
    {"@id": "#p", "@type": "Person", "familyName": "Muster", "givenName": "Erika"},
)


def make_folder(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / "ro-crate-metadata.json").write_text(json.dumps(CRATE))
    return root


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def local_router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RouterProcess, Path]]:
    data = tmp_path_factory.mktemp("cli-router")
    with router_process({"CONNECTOR_CONFIG": "", "CONNECTOR_DATA_DIR": str(data)}) as router:
        yield router, data


def stored(data: Path, pid: str, name: str) -> bytes:
    return next((data / "projects").glob("u-*")).joinpath(pid, name).read_bytes()


def test_push_sends_every_file_then_a_rerun_skips_them_all(local_router, tmp_path) -> None:
    router, data = local_router
    folder = make_folder(tmp_path / "research", FILES)

    first = run("push", str(folder), "--to", router.url, "--user", LOCAL_UID)
    assert first.returncode == 0, first.stdout + first.stderr
    summary = first.stdout.strip().splitlines()[-1]
    pid = summary.split()[1].rstrip(":")
    # the crate went in by PATCH; the local archive keeps it as the metadata, not a file
    assert summary.endswith(f"{len(FILES)} stored, 1 skipped, 0 failed")
    for name, content in FILES.items():
        assert stored(data, pid, name) == content
    assert f"[{len(FILES) + 1}/{len(FILES) + 1}] stored" in first.stderr  # plain lines, no tty
    crate_back = json.loads(stored(data, pid, "ro-crate-metadata.json"))
    assert crate_back["@graph"][1]["name"] == "Pushed by hand"

    again = run("push", str(folder), "--to", router.url, "--user", LOCAL_UID, "--project", pid)
    assert again.returncode == 0, again.stdout + again.stderr
    assert (
        again.stdout.strip()
        .splitlines()[-1]
        .endswith(f"0 stored, {len(FILES) + 1} skipped, 0 failed")
    )

    (folder / "top.txt").write_bytes(b"changed")
    published = run(
        "push", str(folder), "--to", router.url, "--user", LOCAL_UID, "--project", pid, "--publish"
    )
    assert published.returncode == 0, published.stdout + published.stderr
    lines = published.stdout.strip().splitlines()
    assert "stored   top.txt" in published.stdout
    assert lines[-1].startswith("DOI 10.5072/")
    assert stored(data, pid, "top.txt") == b"changed"


def test_a_refused_file_is_reported_and_the_exit_code_is_1(tmp_path) -> None:
    fake = FakeZenodo(tmp_path / "zenodo")
    fake.add_token("tok-cli-zen")
    server = ServerThread(fake.app).start()
    env = {
        "CONNECTOR_CONFIG": "",
        "CONNECTOR_DATA_DIR": str(tmp_path / "z"),
        "CONNECTOR_METADATA": "zenodo",
        "CONNECTOR_STORAGE": "none",
        "ZENODO_ADDRESS": server.url,
        "ZENODO_OAUTH_CLIENT_ID": "cid",
        "ZENODO_OAUTH_CLIENT_SECRET": "csecret-cli",
        "RDS_OAUTH_REDIRECT_URI": "https://rds.example/redirect",
    }
    try:
        with router_process(env) as router:
            folder = make_folder(tmp_path / "f", {**FILES, "empty.dat": b""})
            user = f"port-zenodo://{USER}:tok-cli-zen"
            result = run("push", str(folder), "--to", router.url, "--user", user, "--publish")
    finally:
        server.stop()
        fake.close()
    assert result.returncode == 1, result.stdout + result.stderr
    failed = [line for line in result.stdout.splitlines() if line.startswith("failed")]
    assert len(failed) == 1 and "empty.dat" in failed[0] and "422" in failed[0]
    assert "DOI" not in result.stdout  # not published: a file did not make it
    (dep,) = fake.depositions.values()
    assert len(dep.files) == len(FILES) + 1 and not dep.submitted


def test_a_project_that_is_not_there_stops_the_push_with_a_message(local_router, tmp_path) -> None:
    router, _ = local_router
    folder = make_folder(tmp_path / "f", FILES)
    result = run(
        "push", str(folder), "--to", router.url, "--user", LOCAL_UID, "--project", "0" * 16
    )
    assert result.returncode == 1
    assert "404" in result.stderr and "Traceback" not in result.stderr


def test_push_draws_a_progress_bar_on_a_terminal(local_router, tmp_path) -> None:
    router, _ = local_router
    folder = make_folder(tmp_path / "f", FILES)
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            [SCRIPT, "push", str(folder), "--to", router.url, "--user", LOCAL_UID],
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=120,
            check=False,
        )
        os.close(follower)
        follower = -1
        screen = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
    finally:
        if follower != -1:
            os.close(follower)
        os.close(leader)
    assert proc.returncode == 0
    text = screen.decode("utf-8", "replace")
    assert "pushing" in text and "100%" in text
    assert f"{len(FILES) + 1}/{len(FILES) + 1} files" in text and "MiB/s" in text
    assert "[1/" not in text  # the bar, not the plain lines


def test_a_connector_that_is_not_there_is_one_line_not_a_traceback(tmp_path) -> None:
    from tests.support.servers import free_port

    folder = make_folder(tmp_path / "f", FILES)
    result = run(
        "push", str(folder), "--to", f"http://127.0.0.1:{free_port()}", "--user", LOCAL_UID
    )
    assert result.returncode == 1
    assert "cannot be reached" in result.stderr and "Traceback" not in result.stderr


def test_the_upload_names_the_user_as_layer_2_does() -> None:
    from common.push import ConnectorClient

    assert ConnectorClient("http://x", "port-z://alice@cloud.example.org:tok").username == (
        "alice@cloud.example.org"
    )
    assert ConnectorClient("http://x", "alice@host.example.org:8443").username == (
        "alice@host.example.org:8443"
    )
