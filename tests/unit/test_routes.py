"""The route table is the single source of truth: functions, router and table agree."""

from __future__ import annotations

import ast

import pytest

from common.routes import FILE_STORAGE, METADATA, ROUTES, route, routes_for
from local_router import FUNCTIONS, build_app, function_names, load_function


def test_every_function_folder_is_routed_and_every_route_has_a_function() -> None:
    assert sorted(r.name for r in ROUTES) == function_names()


def test_each_main_defines_its_function_with_functions_framework_http() -> None:
    for r in ROUTES:
        tree = ast.parse((FUNCTIONS / r.name / "main.py").read_text())
        funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
        assert [f.name for f in funcs] == [r.name]
        decorators = [ast.unparse(d) for d in funcs[0].decorator_list]
        assert decorators == ["functions_framework.http", f"endpoint({r.name!r})"]
        assert callable(load_function(r.name))


def test_the_rds_routes_are_all_there() -> None:
    pairs = {(r.method, r.path) for r in ROUTES}
    p = "/metadata/project"
    expected_metadata = {
        ("GET", p),
        ("POST", p),
        ("GET", p + "/{project_id}"),
        ("PATCH", p + "/{project_id}"),
        ("PUT", p + "/{project_id}"),
        ("DELETE", p + "/{project_id}"),
        ("GET", p + "/{project_id}/files"),
        ("POST", p + "/{project_id}/files"),
        ("DELETE", p + "/{project_id}/files"),
        ("GET", p + "/{project_id}/files/{file_id:path}"),
        ("PATCH", p + "/{project_id}/files/{file_id:path}"),
        ("DELETE", p + "/{project_id}/files/{file_id:path}"),
    }
    expected_storage = {("GET", "/storage/folder")} | {
        (m, "/storage/file") for m in ("GET", "POST", "PATCH", "DELETE")
    }
    assert expected_metadata | expected_storage | {("POST", "/init")} == pairs
    assert len([r for r in ROUTES if r.interface == METADATA]) == 12
    assert len([r for r in ROUTES if r.interface == FILE_STORAGE]) == 5


def test_router_url_map_serves_exactly_the_table(runtime) -> None:
    app = build_app(runtime)
    rules = {(rule.endpoint, rule.rule) for rule in app.url_map.iter_rules()}
    for r in ROUTES:
        assert (r.name, r.flask_path) in rules


def test_routes_left_out_with_their_interface() -> None:
    names = {r.name for r in routes_for({METADATA})}
    assert "project_create" in names and "init" in names
    assert not any(n.startswith("storage_") for n in names)


@pytest.mark.parametrize(
    ("name", "path", "params"),
    [
        ("project_get", "/metadata/project/42", {"project_id": "42"}),
        ("project_get", "/fn/metadata/project/42", {"project_id": "42"}),
        ("project_get", "/metadata/project/42/files", None),
        (
            "file_get",
            "/metadata/project/7/files/a/b c.csv",
            {"project_id": "7", "file_id": "a/b c.csv"},
        ),
        ("projects_list", "/metadata/project/", {}),
        ("projects_list", "/xmetadata/project", None),
        ("storage_file_get", "/storage/file", {}),
    ],
)
def test_match_extracts_parameters_from_the_path_alone(name, path, params) -> None:
    assert route(name).match(path) == params
