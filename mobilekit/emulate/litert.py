"""Run a converted .tflite on LiteRT's interpreter, fed exactly as the generated SDK feeds it.

Two kernel sets: ``xnnpack`` (the default CPU path on phones) and ``reference`` (LiteRT's reference kernels,
``OpResolverType.BUILTIN_REF``): when they disagree, the optimized kernels — not the quantization — are at fault.
Inputs are quantized with the contract's lookup table, outputs dequantized with the contract's scales.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from mobilekit.contract import ArtifactSpec, Contract
from mobilekit.data.preprocess import dequantize, normalize, quantize_canvas, quantize_table
from mobilekit.errors import ConversionError

RESOLVERS = ("xnnpack", "reference")


class LiteRTRunner:
    def __init__(self, model: bytes, artifact: ArtifactSpec, contract: Contract, resolver: str = "xnnpack",
                 threads: int = 2) -> None:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        kind = {"xnnpack": OpResolverType.AUTO, "reference": OpResolverType.BUILTIN_REF}[resolver]
        self.interpreter = Interpreter(model_content=model, num_threads=threads, experimental_op_resolver_type=kind)
        self.interpreter.allocate_tensors()
        self.artifact = artifact
        self.contract = contract
        self.resolver = resolver
        self._in = self.interpreter.get_input_details()[0]
        self._outs = self.interpreter.get_output_details()
        b = artifact.inputs[0]
        inp = contract.input
        self._table = (quantize_table(inp.scale, inp.offset, b.scale, b.zero_point, b.dtype)
                       if b.scale is not None else None)

    def input_tensor(self, canvas: np.ndarray) -> np.ndarray:
        """The exact tensor the device feeds for a letterboxed uint8 RGB canvas."""
        inp = self.contract.input
        if self._table is not None:
            return quantize_canvas(canvas, self._table, inp.color, inp.layout)
        return normalize(canvas, inp.scale, inp.offset, inp.color, inp.layout)

    def run_raw(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        """Raw output tensors (quantized if the model's outputs are), keyed by role. A kernel that refuses its
        inputs (an int8 divisor rounded to 0) means the model as converted cannot run on this kernel set."""
        self.interpreter.set_tensor(self._in["index"], tensor)
        try:
            self.interpreter.invoke()
        except RuntimeError as e:
            line = " ".join(str(e).split())[:240]
            raise ConversionError(f"the {self.artifact.kind} model fails on LiteRT's {self.resolver} kernels: {line}",
                                  fix="find the op in report/delegates.json; an int8 divide or log needs inputs "
                                      "that stay away from 0 after quantization: move it out of the graph or "
                                      "keep it in float") from None
        return {b.role: self.interpreter.get_tensor(self._outs[b.position]["index"]).copy()
                for b in self.artifact.outputs}

    def dequantize(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {}
        for b in self.artifact.outputs:
            v = raw[b.role]
            out[b.role] = dequantize(v, b.scale, b.zero_point) if b.scale is not None else v.astype(np.float32)
        return out

    def run(self, canvas: np.ndarray) -> dict[str, np.ndarray]:
        return self.dequantize(self.run_raw(self.input_tensor(canvas)))

    def latency_ms(self, canvas: np.ndarray, runs: int = 30, warmup: int = 5) -> float:
        """Median wall time of ``invoke`` alone, in milliseconds."""
        t = self.input_tensor(canvas)
        self.interpreter.set_tensor(self._in["index"], t)
        for _ in range(warmup):
            self.interpreter.invoke()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            self.interpreter.invoke()
            times.append(time.perf_counter() - start)
        return float(np.median(times) * 1000)


def delegated_ops(model: bytes) -> set[int]:
    """Indices of the model's ops that LiteRT's default XNNPACK delegate runs.

    Read from the interpreter's node list: after the delegate is applied, each DELEGATE node stands for the
    original ops that produce its outputs, found by walking back from those outputs to its inputs."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model, num_threads=1)
    it.allocate_tensors()
    ops = it._get_ops_details()  # the public API lists no delegate partitions
    original = [o for o in ops if o["op_name"] != "DELEGATE"]
    producer = {int(t): o["index"] for o in original for t in o["outputs"]}
    by_index = {o["index"]: o for o in original}
    delegated: set[int] = set()
    for node in (o for o in ops if o["op_name"] == "DELEGATE"):
        stop, stack = {int(t) for t in node["inputs"]}, [int(t) for t in node["outputs"]]
        while stack:
            t = stack.pop()
            if t in stop or t not in producer or producer[t] in delegated:
                continue
            delegated.add(producer[t])
            stack += [int(x) for x in by_index[producer[t]]["inputs"] if x >= 0]
    return delegated


def outside_xnnpack(model: bytes) -> dict[str, int]:
    """Op name → how many of the model's ops LiteRT's default XNNPACK delegate leaves to the built-in kernels.

    XNNPACK is why a CPU runs int8 fast; an int8 op it has no kernel for (PReLU, say) runs in LiteRT's slower
    built-in code and is often why an int8 model is slower than its float twin."""
    from ai_edge_litert.interpreter import Interpreter

    delegated = delegated_ops(model)
    out: dict[str, int] = {}
    for o in Interpreter(model_content=model)._get_ops_details():
        if o["index"] not in delegated:
            out[o["op_name"]] = out.get(o["op_name"], 0) + 1
    return dict(sorted(out.items()))


def random_inputs(it: Any, float_range: tuple[float, float] = (0.0, 1.0)) -> None:
    """Every input of an allocated interpreter set to values drawn at random (integers over their type's range):
    for measurements whose outcome does not depend on the values (time, memory)."""
    rng = np.random.default_rng(0)
    for d in it.get_input_details():
        dt = np.dtype(d["dtype"])
        lo, hi = (np.iinfo(dt).min, np.iinfo(dt).max) if dt.kind in "iu" else float_range
        it.set_tensor(d["index"], rng.uniform(lo, hi, d["shape"]).astype(dt))


def model_latency_ms(model: bytes, threads: int = 2, runs: int = 30, warmup: int = 5) -> float:
    """Median wall time of one ``invoke`` on XNNPACK for inputs drawn at random (an int8 model's time does not
    depend on the values): how two forms of one model are compared before either is bound to a contract."""
    from ai_edge_litert.interpreter import Interpreter

    return median_invoke_ms(Interpreter(model_content=model, num_threads=threads), runs, warmup)


def median_invoke_ms(it: Any, runs: int, warmup: int, float_range: tuple[float, float] = (0.0, 1.0)) -> float:
    """Median wall time of ``it.invoke()`` over ``runs`` after ``warmup``, on random inputs (:func:`random_inputs`)."""
    it.allocate_tensors()
    random_inputs(it, float_range)
    for _ in range(warmup):
        it.invoke()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        it.invoke()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def interleaved_latency_ms(models: dict[str, bytes], rounds: int = 3, threads: int = 2) -> dict[str, float]:
    """Each model's :func:`model_latency_ms`, the models interleaved over ``rounds`` and the lowest median kept:
    other work on the machine slows a round, never speeds one, and interleaving spreads it over every model alike
    instead of handing it to whichever was timed while it ran."""
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, m in models.items():
            best[name] = min(best.get(name, float("inf")), model_latency_ms(m, threads))
    return best
