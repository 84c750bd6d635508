"""``mobilekit verify BUNDLE``: re-check every artifact the manifest lists (present, same size, same SHA-256), and
flag files in the bundle the manifest does not list. A release pipeline runs it before it ships what it kept."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mobilekit.bundle.manifest import MANIFEST_SCHEMA
from mobilekit.bundle.writer import digest
from mobilekit.errors import OutputError


@dataclass
class Finding:
    path: str
    kind: str
    status: str  # ok | missing | size | sha256 | unlisted

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def verify_bundle(bundle: Path) -> list[Finding]:
    manifest_path = bundle / "manifest.json"
    if not manifest_path.is_file():
        raise OutputError("no manifest.json here", path=bundle, fix="point verify at a bundle mobilekit built")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise OutputError("manifest.json is not valid JSON", path=manifest_path,
                          fix="rebuild the bundle; the manifest was damaged") from None
    if manifest.get("schema_version") != MANIFEST_SCHEMA:
        raise OutputError(f"manifest schema {manifest.get('schema_version')} is not {MANIFEST_SCHEMA}",
                          path=manifest_path, fix="verify with the mobilekit version that built the bundle")
    findings = []
    listed = set()
    for a in manifest["artifacts"]:
        p = bundle / a["path"]
        listed.add(a["path"])
        if not p.exists():
            findings.append(Finding(a["path"], a["kind"], "missing"))
            continue
        size, sha = digest(p)
        status = "ok" if sha == a["sha256"] and size == a["size"] else ("size" if size != a["size"] else "sha256")
        findings.append(Finding(a["path"], a["kind"], status))
    directories = [a for a in listed if (bundle / a).is_dir()]
    for f in sorted(bundle.rglob("*")):
        rel = f.relative_to(bundle).as_posix()
        if f.is_file() and rel != "manifest.json" and rel not in listed and \
                not any(rel.startswith(d + "/") for d in directories):
            findings.append(Finding(rel, "?", "unlisted"))
    return findings
