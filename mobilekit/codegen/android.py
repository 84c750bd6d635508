"""Android SDK sources from the contract (``templates/android``).

So far the pure-logic core (contract constants, pre-processing, post-processing) that imports no Android or LiteRT
API; it is compiled with kotlinc and checked against the Python reference on the JVM by the tests.
"""

from __future__ import annotations

from mobilekit.codegen.render import package_name, render_tree, type_name
from mobilekit.contract import Contract


def render_core(contract: Contract) -> dict[str, str]:
    """Relative path → source text, deterministic (sorted, no timestamps)."""
    if "tflite-int8" not in contract.artifacts:
        raise ValueError("the Android SDK needs the bundle's int8 TFLite model in the contract")
    return render_tree("android/core", contract)


def names(contract: Contract) -> tuple[str, str]:
    """(package, type name prefix) of the generated code."""
    return package_name(contract.name), type_name(contract.name)
