"""An emulated Core ML runtime: executes a saved ML Program op by op, as Core ML would, on any machine.

Core ML itself runs only on Apple systems; a release pipeline must not ship a model nobody has executed. The
program is read back from the ``.mlpackage`` with coremltools, then each MIL op runs as one small registered function
(``ops_*.py``), results rounded to each value's declared dtype so fp16 error is reproduced, and an fp16 watch
reports overflow, underflow and NaN/Inf per op.
"""

from mobilekit.emulate.coreml import (  # noqa: F401 (registration)
    ops_constexpr,
    ops_elementwise,
    ops_nn,
    ops_resize,
    ops_tensor,
)
from mobilekit.emulate.coreml.registry import OPS, EmulatorError
from mobilekit.emulate.coreml.runtime import CoreMLEmulator, Fp16Event

__all__ = ["OPS", "CoreMLEmulator", "EmulatorError", "Fp16Event"]
