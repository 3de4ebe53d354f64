"""RO-Crate documents for tests: the 1.1 descriptor around a root dataset and its entities."""

from __future__ import annotations

from typing import Any


def crate(root: dict[str, Any], *entities: dict[str, Any]) -> dict[str, Any]:
    """An RO-Crate 1.1 with ``root`` (``@id`` ``./``, type Dataset added) and ``entities``."""
    return {
        "@context": "https://w3id.org/ro/crate/1.1/context",
        "@graph": [
            {
                "@id": "ro-crate-metadata.json",
                "@type": "CreativeWork",
                "about": {"@id": "./"},
                "conformsTo": {"@id": "https://w3id.org/ro/crate/1.1"},
            },
            {"@id": "./", "@type": "Dataset", **root},
            *entities,
        ],
    }
