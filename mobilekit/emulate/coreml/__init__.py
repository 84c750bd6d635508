"""An emulated Core ML runtime: executes a saved ML Program op by op, as Core ML would, on any machine.

Core ML itself runs only on Apple systems; a release pipeline must not ship a model nobody has executed. The
program is read back from the ``.mlpackage`` with coremltools, then each MIL op runs as one small registered function
(``ops_*.py``), results rounded to each value's declared dtype so fp16 error is reproduced, and an fp16 watch
reports overflow, underflow and NaN/Inf per op.
"""

import importlib
import pkgutil

from mobilekit.emulate.coreml.registry import OPS, EmulatorError
from mobilekit.emulate.coreml.runtime import CoreMLEmulator, Fp16Event

# Every ``ops_*.py`` registers its ops on import: adding an op family is adding a file.
for _module in pkgutil.iter_modules(__path__):
    if _module.name.startswith("ops_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["OPS", "CoreMLEmulator", "EmulatorError", "Fp16Event"]
