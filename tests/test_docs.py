"""The docs a user reads: a short README that links pages that exist, and a config reference that names and
explains every field the config dataclasses have (generated from them, so it cannot drift)."""

from __future__ import annotations

import re
from pathlib import Path

from mobilekit import config_doc

ROOT = Path(__file__).resolve().parents[1]


def test_the_config_reference_is_generated_from_the_dataclasses():
    page = (ROOT / "docs" / "config.md").read_text()
    assert config_doc.BEGIN in page, "docs/config.md lost its generated reference"
    assert page[page.index(config_doc.BEGIN):] == config_doc.reference(), \
        "docs/config.md is stale: run python -m mobilekit.config_doc docs/config.md"


def test_every_config_field_is_named_and_explained():
    rows = dict(re.findall(r"^\| `([\w.]+)` \|[^|]*(?:\\\|[^|]*)*\|[^|]*(?:\\\|[^|]*)*\| (.*) \|$",
                           (ROOT / "docs" / "config.md").read_text(), re.M))
    keys = config_doc.fields()
    assert len(keys) > 100
    missing = [k for k in keys if k not in rows]
    assert not missing, missing
    unexplained = [k for k in keys if not rows[k].strip()]
    assert not unexplained, unexplained


def test_readme_is_short_and_every_link_resolves():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 150
    pages = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            assert (page.parent / target).exists(), (page.name, target)
