"""A backend registered in ``common/backends`` but missing from its contract suite cannot
land: this test fails until the suite's ``BACKENDS`` names it (and its case builder runs)."""

from __future__ import annotations

from common.backends import ARCHIVES, STORAGES
from common.config import METADATA_BACKENDS, STORAGE_BACKENDS
from tests.contract import test_archive_contract, test_storage_contract


def test_every_archive_backend_runs_the_archive_contract() -> None:
    assert sorted(test_archive_contract.BACKENDS) == sorted(ARCHIVES)
    assert sorted(ARCHIVES) == sorted(set(METADATA_BACKENDS) - {"none"})


def test_every_storage_backend_runs_the_storage_contract() -> None:
    assert sorted(test_storage_contract.BACKENDS) == sorted(STORAGES)
    assert sorted(STORAGES) == sorted(set(STORAGE_BACKENDS) - {"none"})
