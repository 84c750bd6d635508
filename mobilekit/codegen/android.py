"""The Android library module, generated from the contract (``templates/android``).

``core`` is pure Kotlin (contract constants, pre- and post-processing) with no Android or LiteRT import, so the tests
run it on the JVM against the Python reference; ``api`` runs it on LiteRT 2.x (CompiledModel on NPU, GPU or
CPU, the Interpreter as the last resort) on one thread it owns; ``module`` holds the Gradle, manifest and README files.
"""

from __future__ import annotations

from mobilekit.codegen.render import api_class, package_name, render_tree, type_name
from mobilekit.config import AndroidSettings
from mobilekit.contract import Contract
from mobilekit.data.yuv import COEFFICIENTS
from mobilekit.kinds import Kind

#: LiteRT 2.x (com.google.ai.edge.litert:litert): CompiledModel with CPU, GPU and NPU, and the CPU-only Interpreter,
#: in one artifact (from 2.3 the GPU accelerator is a second artifact, litert-gpu). The stubs mirror this release.
LITERT_VERSION = "2.1.5"

#: Android API levels of the module (and the sample app): compile and target 36; LiteRT's AAR needs 23, CameraX 23.
SDK_LEVELS = {"compile_sdk": 36, "min_sdk": 24}

#: What each Android Gradle plugin major needs beside it: the Kotlin Gradle plugin that AGP 8 applies as
#: ``org.jetbrains.kotlin.android`` (AGP 9 builds Kotlin itself), and the Gradle release of the wrappers.
#: AGP 9.4 needs Gradle 9.6 (AGP 9.4.0 release notes); AGP 8.13 needs Gradle 8.13 and pairs with Kotlin 2.2.
AGP = {8: {"agp_version": "8.13.0", "kotlin_plugin_version": "2.2.21", "gradle_version": "8.13"},
       9: {"agp_version": "9.4.0", "kotlin_plugin_version": None, "gradle_version": "9.6.0"}}

#: kotlinx.coroutines for the module's suspending API (cancellable load); LiteRT 2.1.5 depends on it as well.
COROUTINES_VERSION = "1.10.2"


def template_context(contract: Contract, settings: AndroidSettings | None = None) -> dict[str, object]:
    base = type_name(contract.name)
    android = settings or AndroidSettings()
    return {"module": f"{base[:1].lower()}{base[1:]}-sdk", "litert_version": LITERT_VERSION,
            "coroutines_version": COROUTINES_VERSION, "cls": api_class(base, contract.task), "android": android,
            "group": android.group or package_name(contract.name), "yuv": COEFFICIENTS, **AGP[android.agp],
            **SDK_LEVELS}


def render_core(contract: Contract, settings: AndroidSettings | None = None) -> dict[str, str]:
    """Relative path → source text, deterministic (sorted, no timestamps)."""
    if Kind.TFLITE_INT8 not in contract.artifacts:
        raise ValueError("the Android SDK needs the bundle's int8 TFLite model in the contract")
    return render_tree("android/core", contract, template_context(contract, settings))


def render_module(contract: Contract, settings: AndroidSettings | None = None) -> dict[str, str]:
    """The whole library module: core + API sources and the Gradle/manifest/README/keep-rule files, for the
    Android Gradle plugin ``settings.agp`` names."""
    ctx = template_context(contract, settings)
    files = {**render_core(contract, settings), **render_tree("android/api", contract, ctx),
             **render_tree("android/module", contract, ctx)}
    return dict(sorted(files.items()))


def module_name(contract: Contract) -> str:
    return str(template_context(contract)["module"])


def names(contract: Contract) -> tuple[str, str]:
    """(package, type name prefix) of the generated code."""
    return package_name(contract.name), type_name(contract.name)
