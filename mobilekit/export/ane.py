"""Neural Engine readiness: what in an ML Program is known to keep work off the ANE.

Static checks on the program, from Apple's published guidance (coremltools' "Typed Execution" and "Deploying
Transformers on the Apple Neural Engine" notes): the ANE computes fp16 only, on tensors of rank <= 5 with fixed
shapes; very large dimensions and some ops (gathers with dynamic indices, NMS, top-k, sorting) run on the CPU. It is
a heuristic report, not Core ML's compute plan (which needs macOS 14.4+), so it says "likely", not "will".
"""

from __future__ import annotations

from typing import Any

CPU_ONLY_OPS = {"non_maximum_suppression", "topk", "argsort", "gather_nd", "scatter", "scatter_nd", "cumsum",
                "while_loop", "cond", "random_uniform", "random_normal", "band_part"}
MAX_DIM = 16384
MAX_RANK = 5


def ane_report(function: Any) -> dict[str, Any]:
    from coremltools.converters.mil.mil import types

    findings: list[dict[str, str]] = []
    compute = 0
    for o in function.operations:
        if o.op_type == "const" or o.op_type.startswith("constexpr_"):
            continue
        compute += 1
        for v in o.outputs:
            if not types.is_tensor(v.sym_type):
                continue
            dtype = types.builtin_to_string(v.dtype)
            if dtype == "fp32" and o.op_type != "cast":
                findings.append({"op": o.name, "op_type": o.op_type, "why": "computes in fp32; the ANE runs fp16 only"})
            shape = v.shape
            if any(not isinstance(d, int) for d in shape):
                findings.append({"op": o.name, "op_type": o.op_type, "why": f"dynamic shape {shape}"})
            elif len(shape) > MAX_RANK:
                findings.append({"op": o.name, "op_type": o.op_type, "why": f"rank {len(shape)} > {MAX_RANK}"})
            elif shape and max(shape) > MAX_DIM:
                findings.append({"op": o.name, "op_type": o.op_type, "why": f"a dimension of {max(shape)} > {MAX_DIM}"})
        if o.op_type in CPU_ONLY_OPS:
            findings.append({"op": o.name, "op_type": o.op_type, "why": "op type runs on the CPU"})
    return {"compute_ops": compute, "findings": findings, "likely_all_on_ane": not findings,
            "note": "heuristic from Apple's published guidance; Core ML decides per device at load time"}
