"""Shared fixtures: a runtime on the local backend in a temp folder, its app and client."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from common.config import load_settings
from common.runtime import Runtime, set_runtime
from local_router import build_app

USER = "alice@cloud.example.org"

# schemathesis brings jsonschema-rs, which openapi-spec-validator then prefers; it checks
# formats more strictly (Google's gateway documents' `authorizationUrl: ""` fails as a
# "uri"). Keep the pure-Python backend every OpenAPI check was written against.
os.environ.setdefault("OPENAPI_SPEC_VALIDATOR_SCHEMA_VALIDATOR_BACKEND", "jsonschema")


def uid(user: str = USER, token: str = "tok-alice", service: str = "port-local") -> str:
    """A session-form userId, as RDS Layer 2 builds it."""
    return f"{service}://{user}:{token}"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def make_runtime(data_dir: Path) -> Iterator[Callable[..., Runtime]]:
    def make(**env: str) -> Runtime:
        base = {"CONNECTOR_DATA_DIR": str(data_dir), "CONNECTOR_CONFIG": ""}
        runtime = Runtime.build(load_settings({**base, **env}))
        set_runtime(runtime)
        return runtime

    yield make
    set_runtime(None)


@pytest.fixture
def runtime(make_runtime: Callable[..., Runtime]) -> Runtime:
    return make_runtime()


@pytest.fixture
def client(runtime: Runtime) -> FlaskClient:
    return build_app(runtime).test_client()
