"""Summaries of the fp16 watch: which ops overflow, underflow or go non-finite, worst first."""

from __future__ import annotations

from typing import Any

from mobilekit.emulate.coreml.runtime import Fp16Event


def summarize_fp16(events: list[Fp16Event], top: int = 10) -> dict[str, Any]:
    per_op: dict[str, dict[str, Any]] = {}
    for e in events:
        row = per_op.setdefault(e.op, {"op": e.op, "op_type": e.op_type, "layer": e.layer, "overflow": 0,
                                       "underflow": 0,
                                       "nonfinite": 0, "max_abs": 0.0})
        row["overflow"] += e.overflow
        row["underflow"] += e.underflow
        row["nonfinite"] += e.nonfinite
        row["max_abs"] = max(row["max_abs"], e.max_abs)
    rows = sorted(per_op.values(), key=lambda r: (-(r["overflow"] + r["nonfinite"]), -r["underflow"], r["op"]))
    return {
        "overflow_values": sum(r["overflow"] for r in rows),
        "nonfinite_values": sum(r["nonfinite"] for r in rows),
        "underflow_values": sum(r["underflow"] for r in rows),
        "ops": rows[:top],
        "note": "overflow: |x| > 65504 in fp16; underflow: a non-zero float result rounds to 0 in fp16 (reported, "
                "not gated: sigmoid tails underflow harmlessly); non-finite: NaN/Inf from finite inputs",
    }
