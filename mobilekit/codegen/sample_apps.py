"""The sample apps (``sample_apps/``), rendered for one bundle: wired to its generated SDKs by relative paths, so
``mobilekit build --with-sample-app`` leaves an app that opens and runs as it is.

Versions of the libraries the Android app adds (CameraX, AndroidX, the Android Gradle plugin and Kotlin) are pinned
here, in one place, and the tests check the Gradle files against them.
"""

from __future__ import annotations

from mobilekit.codegen import android, ios
from mobilekit.codegen.render import SAMPLE_APPS, render_tree
from mobilekit.config import AndroidSettings
from mobilekit.contract import Contract

#: CameraX 1.6.2 is the stable release; the Android Gradle plugin and Gradle come from ``codegen.android.AGP``.
ANDROID_VERSIONS = {"camerax_version": "1.6.2", "activity_version": "1.9.3", "core_version": "1.13.1"}


def render_android(contract: Contract, settings: AndroidSettings | None = None) -> dict[str, str]:
    """``sample_apps/android`` of the bundle, for the AGP major the module is for; the SDK module is included from
    ``../../sdk/android/<module>``."""
    module = android.module_name(contract)
    ctx = {**android.template_context(contract, settings), **ANDROID_VERSIONS,
           "sdk_path": f"../../sdk/android/{module}"}
    return render_tree("android", contract, ctx, base=SAMPLE_APPS)


def ios_app(contract: Contract) -> str:
    """The iOS sample's App Playground folder in ``sample_apps/ios``: ``<Name>Sample.swiftpm``, the suffix that makes
    Xcode (and Finder) treat the folder as an app package rather than a plain Swift package."""
    return f"{ios.swift_name(contract)}Sample.swiftpm"


def render_ios(contract: Contract, deployment_target: str) -> dict[str, str]:
    """``sample_apps/ios`` of the bundle: the README and the App Playground ``<Name>Sample.swiftpm``, whose Swift
    package dependency is the bundle's, by the relative path ``../../../sdk/ios/<Name>Kit`` (Xcode takes a local path
    dependency in an App Playground; the Swift Playgrounds app takes none, and the README says to use Xcode)."""
    ctx = {**ios.template_context(contract, deployment_target), "app": ios_app(contract),
           "sdk_path": f"../../../sdk/ios/{ios.kit_name(contract)}"}
    return render_tree("ios", contract, ctx, base=SAMPLE_APPS)
