"""The sample apps (``sample_apps/``), rendered for one bundle: wired to its generated SDKs by relative paths, so
``mobilekit build --with-sample-app`` leaves an app that opens and runs as it is.

Versions of the libraries the Android app adds (CameraX, AndroidX, the Android Gradle plugin and Kotlin) are pinned
here, in one place, and the tests check the Gradle files against them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mobilekit.codegen import android, ios
from mobilekit.codegen.render import SAMPLE_APPS, render_tree
from mobilekit.config import AndroidSettings
from mobilekit.contract import Contract

#: CameraX 1.6.2 is the stable release; the Android Gradle plugin and Gradle come from ``codegen.android.AGP``.
ANDROID_VERSIONS = {"camerax_version": "1.6.2", "activity_version": "1.9.3", "core_version": "1.13.1"}


#: Where the repository's own sample apps (``sample_apps/`` at the top of a checkout) find the example bundle's SDKs:
#: ``mobilekit example`` writes it to ``build/example``.
CHECKOUT_BUNDLE = "build/example"


def render_android(contract: Contract, settings: AndroidSettings | None = None, bundle: str = ".") -> dict[str, str]:
    """``sample_apps/android`` of the bundle, for the AGP major the module is for; the SDK module is included from
    ``../../<bundle>/sdk/android/<module>`` (``bundle``: the bundle's folder relative to ``sample_apps``' parent)."""
    module = android.module_name(contract)
    ctx = {**android.template_context(contract, settings), **ANDROID_VERSIONS,
           "sdk_path": _join("../..", bundle, f"sdk/android/{module}")}
    return render_tree("android", contract, ctx, base=SAMPLE_APPS)


def ios_app(contract: Contract) -> str:
    """The iOS sample's App Playground folder in ``sample_apps/ios``: ``<Name>Sample.swiftpm``, the suffix that makes
    Xcode (and Finder) treat the folder as an app package rather than a plain Swift package."""
    return f"{ios.swift_name(contract)}Sample.swiftpm"


def render_ios(contract: Contract, deployment_target: str, bundle: str = ".") -> dict[str, str]:
    """``sample_apps/ios`` of the bundle: the README and the App Playground ``<Name>Sample.swiftpm``, whose Swift
    package dependency is the bundle's, by the relative path ``../../../sdk/ios/<Name>Kit`` (Xcode takes a local path
    dependency in an App Playground; the Swift Playgrounds app takes none, and the README says to use Xcode)."""
    ctx = {**ios.template_context(contract, deployment_target), "app": ios_app(contract),
           "sdk_path": _join("../../..", bundle, f"sdk/ios/{ios.kit_name(contract)}")}
    return render_tree("ios", contract, ctx, base=SAMPLE_APPS)


def _join(up: str, bundle: str, rest: str) -> str:
    return "/".join(part for part in (up, "" if bundle == "." else bundle, rest) if part)


def render_checkout(bundle: Path) -> dict[str, bytes]:
    """The repository's ``sample_apps/``: the apps ``mobilekit example`` renders into its bundle, wired to that
    bundle at :data:`CHECKOUT_BUNDLE` instead of beside them, so a newcomer opens them from the checkout. The same
    templates and contract as ``--with-sample-app``; only the SDK paths differ (the tests hold the two together)."""
    contract = Contract.load(bundle / "contract.json")
    manifest = json.loads((bundle / "manifest.json").read_text())
    settings = AndroidSettings(**manifest.get("android", {})) if manifest.get("android") else None
    files: dict[str, bytes] = {f"android/{rel}": text.encode()
                               for rel, text in render_android(contract, settings, CHECKOUT_BUNDLE).items()}
    shipped = bundle / "sample_apps"
    if (shipped / "ios").is_dir():
        target = (manifest.get("coreml") or {})["deployment_target"]
        files |= {f"ios/{rel}": text.encode() for rel, text in render_ios(contract, target, CHECKOUT_BUNDLE).items()}
    for picture in sorted(shipped.rglob("sample.jpg")):
        files[picture.relative_to(shipped).as_posix()] = picture.read_bytes()
    return files


if __name__ == "__main__":  # python -m mobilekit.codegen.sample_apps build/example: refresh the checkout's apps
    out = Path("sample_apps")
    for rel, data in render_checkout(Path(sys.argv[1])).items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
