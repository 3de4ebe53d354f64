"""Schemathesis fuzzes the running router (local backend) against its own OpenAPI document.

The router runs as a real process (``python local_router.py``); the document is fetched
from its ``GET /openapi.yaml``, so what is fuzzed is what a deployment serves. Every
operation gets a bounded number of generated requests; each answer must be no 5xx and must
conform to the document (status code, content type, body schema, headers). Generated
``userId``s are mostly garbage (401s teach little), so part of the cases get a valid one,
an existing project or file, to reach the backend.

Each operation runs in schemathesis' positive mode (valid per the document) and, when it
takes input, in negative mode (invalid bodies and ids: still no 5xx, still documented).
Bounded for CI: ``FUZZ_EXAMPLES`` per operation (default 20; half for negative), no deadline, no example
database, derandomized (the same cases every run) unless ``FUZZ_RANDOM=1`` asks for fresh
ones -- use that to hunt, then pin what it finds as a test of its own.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.servers import free_port, router_process

USER = "fuzz@cloud.example.org"
UID = f"port-local://{USER}:fuzz-token"
FORM = "application/x-www-form-urlencoded"


def no_server_error(ctx, response, case):
    """Schemathesis' 5xx check, except the passive-mode form of the upload route: pulling
    from a storage service that does not answer (here: a dead loopback port) is a designed
    502/503/504 problem listing the files."""
    passive = case.operation.label.startswith("POST /metadata/project/{project_id}/files")
    if passive and case.media_type == FORM and response.status_code in (502, 503, 504):
        return None
    return not_a_server_error(ctx, response, case)


CHECKS = [
    no_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))


def _put_seed_file(s: requests.Session, url: str, field: str, name: str) -> None:
    s.post(
        url, data={"userId": UID, field: name}, files={"file": ("seed.txt", b"seed")}, timeout=30
    ).raise_for_status()


def _draft(base: str, s: requests.Session) -> str:
    """A new draft project holding ``dir/seed.txt``."""
    pid = s.post(f"{base}/metadata/project", json={"userId": UID}, timeout=30).json()["projectId"]
    _put_seed_file(s, f"{base}/metadata/project/{pid}/files", "filename", "dir/seed.txt")
    return pid


def _seed(base: str) -> dict[str, str]:
    """A draft project with a file in a folder, a published one, a storage file."""
    s = requests.Session()
    pid = _draft(base, s)
    published = s.post(f"{base}/metadata/project", json={"userId": UID}, timeout=30).json()
    s.put(
        f"{base}/metadata/project/{published['projectId']}", json={"userId": UID}, timeout=30
    ).raise_for_status()
    _put_seed_file(s, f"{base}/storage/file", "filepath", "/dir/seed.txt")
    return {
        "project": pid,
        "published": published["projectId"],
        "file": "dir/seed.txt",
        "base": base,
    }


def _steer(case, seed: dict[str, str], choice: int) -> None:
    """Give some cases real identities and ids so they get past the 401/404 gates."""
    if choice == 0:
        return  # as generated
    if isinstance(case.body, dict) and "userId" in case.body:
        case.body["userId"] = UID
    params = case.path_parameters or {}
    if "project_id" in params:
        params["project_id"] = seed["published"] if choice == 3 else seed["project"]
        if case.method == "DELETE" and choice != 3:  # keep the seed for the other operations
            params["project_id"] = _draft(seed["base"], requests.Session())
    if "file_id" in params and choice == 2:
        params["file_id"] = seed["file"]
    if isinstance(case.body, dict) and choice == 2:
        for key in ("filepath", "newfilepath"):
            if key in case.body and isinstance(case.body[key], str):
                case.body[key] = "/" + case.body[key].lstrip("/")
        if "filepath" in case.body and case.method in ("GET", "PATCH"):
            case.body["filepath"] = "/" + seed["file"]


def _fuzz(operation, mode, examples: int, base: str, seed: dict, session: requests.Session) -> None:
    @given(case=operation.as_strategy(mode), choice=st.integers(0, 3))
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=os.environ.get("FUZZ_RANDOM") != "1",
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    def run(case, choice: int) -> None:
        _steer(case, seed, choice)
        case.call_and_validate(
            base_url=base,
            session=session,
            headers={"X-Request-ID": uuid.uuid4().hex},
            checks=CHECKS,
            timeout=30,
        )

    run()


@pytest.mark.slow
def test_every_operation_answers_within_the_document(tmp_path) -> None:
    set_hypothesis_home_dir(tmp_path / "hypothesis")  # not .hypothesis/ in the work tree
    env = {
        "CONNECTOR_DATA_DIR": str(tmp_path / "data"),
        "CONNECTOR_CONFIG": "",
        # passive mode pulls from http://layer1-{service} by default: never leave loopback
        "PASSIVE_STORAGE_URL_TEMPLATE": f"http://127.0.0.1:{free_port()}/{{service}}",
    }
    with router_process(env) as router:
        schema = schemathesis.openapi.from_url(router.url + "/openapi.yaml", timeout=30)
        seed = _seed(router.url)
        session = requests.Session()
        failures: dict[str, str] = {}
        tested: list[str] = []
        statuses: dict[str, Counter] = {}
        session.hooks["response"].append(
            lambda r, *a, **k: statuses.setdefault(r.request.method, Counter()).update(
                [r.status_code]
            )
        )
        for result in schema.get_all_operations():
            operation = result.ok()
            tested.append(operation.label)
            runs = [(GenerationMode.POSITIVE, EXAMPLES)]
            if "requestBody" in operation.definition.raw or operation.path_parameters:
                # invalid bodies and ids too: they must be answered within the document as well
                runs.append((GenerationMode.NEGATIVE, max(1, EXAMPLES // 2)))
            for mode, examples in runs:
                try:
                    _fuzz(operation, mode, examples, router.url, seed, session)
                except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect all
                    failures[f"{operation.label} ({mode.value})"] = str(exc)[:3000]
        # every documented operation but the document itself (schemathesis skips its own URL)
        assert len(tested) == 20
        # the steering works: every method got past the gates some of the time
        assert all(sum(v for k, v in c.items() if k < 300) for c in statuses.values()), statuses
        assert not failures, "\n\n".join(f"== {k}\n{v}" for k, v in failures.items())
        assert "Traceback" not in router.log(), router.log()[-5000:]
