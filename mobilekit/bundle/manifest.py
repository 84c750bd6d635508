"""``manifest.json``: every artifact with kind, path, size and SHA-256, the tool versions, and the results.

Schema version 1. Keys: ``schema_version``, ``mobilekit``, ``versions`` (package → version), ``model``
(path, sha256), ``config_sha256``, ``artifacts`` (sorted by path), ``parity`` (summary and checks),
``verification`` (full-integer proof). No timestamps: two identical builds give identical manifests.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

import mobilekit

MANIFEST_SCHEMA = 1
PACKAGES = ["tensorflow", "tf-keras", "keras", "tensorflow-model-optimization", "coremltools", "ai-edge-litert",
            "numpy"]


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = None
    return out


def build_manifest(artifacts: list[dict[str, Any]], model: dict[str, str], config_sha256: str,
                   **sections: Any) -> dict[str, Any]:
    return {
        "schema_version": MANIFEST_SCHEMA,
        "mobilekit": mobilekit.__version__,
        "versions": package_versions(),
        "model": model,
        "config_sha256": config_sha256,
        "artifacts": sorted(artifacts, key=lambda a: a["path"]),
        **sections,
    }
