"""Load a saved ``.mlpackage`` and execute its ML Program, with an fp16 watch.

Each op's result is computed in float32 from its (already rounded) inputs and rounded to the output's declared
dtype, so a program compiled for fp16 carries fp16 error from op to op as on the device. This models fp16 storage
between ops; accumulation inside one op is float32 here, which is what Core ML's GPU does and slightly kinder than
the Neural Engine.

The watch records, per fp16 op, values that overflow fp16's ±65504, non-zero float results that round to zero, and
NaN/Inf that appear from finite inputs, naming the op and the layer it came from.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mobilekit.emulate.coreml.registry import LAYOUT_FREE, NHWC, OPS, EmulatorError

FP16_MAX = 65504.0


def round_fp16(x: np.ndarray) -> np.ndarray:
    """Round float32 values to the nearest fp16 value (ties to even, overflow to ±inf, fp16 subnormals kept),
    returned in float32 storage so every op computes on float32 arrays.

    TensorFlow's vectorized cast does it several times faster than numpy's float16 round trip, bit for bit the same
    (tests/test_coreml_ops.py checks).
    """
    import tensorflow as tf

    return tf.cast(tf.cast(np.asarray(x, dtype=np.float32), tf.float16), tf.float32).numpy()


@dataclass
class Fp16Event:
    op: str
    op_type: str
    layer: str  # the op the value came from (for a cast, its input's producer): names the Keras layer
    overflow: int
    underflow: int
    nonfinite: int
    max_abs: float  # largest |float result| of the op (eager path; 0 when the traced graph ran)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _source_layer(o: Any) -> str:
    """The op a value came from: for a cast, its input's producer, whose name carries the Keras layer's."""
    if o.op_type == "cast" and getattr(o.inputs["x"], "op", None) is not None:
        return o.inputs["x"].op.name
    return o.name


def _plain(v: Any) -> Any:
    """Constant values as numpy arrays; string attributes (pad modes, dtypes) as plain ``str``."""
    a = np.asarray(v)
    return str(a.item()) if a.dtype.kind in "USO" and a.ndim == 0 else a


def _nptype(var: Any) -> Any:
    from coremltools.converters.mil.mil import types

    return types.nptype_from_builtin(var.dtype)


def require_supported(path: str | Path, model: str | Path | None = None) -> None:
    """Fail at once, naming every MIL op of the package the emulator lacks (checked right after conversion, before
    compressed variants and parity spend minutes on a package that cannot be proven)."""
    function, _ = load_program(path)
    missing = sorted({o.op_type for o in function.operations if o.op_type != "const"
                      and not o.op_type.startswith("constexpr_") and o.op_type not in OPS})
    if missing:
        raise EmulatorError(f"the Core ML program uses MIL op(s) the emulator does not implement: {', '.join(missing)}",
                            path=model, fix="set coreml.enabled: false to build the Android bundle alone, or report "
                                            "the model so the op is added (parity cannot be proven without it)")


def load_program(path: str | Path) -> tuple[Any, Any]:
    """The MIL ``main`` function of a saved package, and its spec."""
    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto.load import load as milproto_load

    model = ct.models.MLModel(str(path), skip_model_load=True)
    spec = model.get_spec()
    if spec.WhichOneof("Type") != "mlProgram":
        raise EmulatorError(f"{path} is not an ML Program (type {spec.WhichOneof('Type')})")
    prog = milproto_load(spec, spec.specificationVersion, model.weights_dir)
    return prog.functions["main"], spec


class CoreMLEmulator:
    def __init__(self, path: str | Path | None = None, function: Any = None) -> None:
        """Emulate the package at ``path``, or an already loaded MIL ``function`` (a pipeline's sub-model)."""
        if function is None:
            function, self.spec = load_program(path)
        self.path = Path(path) if path is not None else None
        self.function = function
        self.outputs = [v.name for v in self.function.outputs]
        self.consts: dict[str, np.ndarray] = {}
        self.ops: list[Any] = []
        for o in self.function.operations:
            if o.op_type == "const":
                v = _plain(o.outputs[0].val)
                # fp16 weights are exactly representable in float32: convert once, not at every call
                self.consts[o.outputs[0].name] = v.astype(np.float32) if isinstance(v, np.ndarray) and \
                    v.dtype == np.float16 else v
            elif o.op_type.startswith("constexpr_"):
                self._execute(o, self.consts, watch=None)  # compile-time: decompress once
            else:
                if o.op_type not in OPS:
                    raise EmulatorError(f"MIL op '{o.op_type}' (op '{o.name}') is not implemented by the emulator",
                                        fix="report the model to mobilekit; parity cannot be proven without it")
                self.ops.append(o)
        from mobilekit.emulate.coreml.graph import compile_program

        self._graph = compile_program(self.ops, self.consts, dict(self.function.inputs), self.outputs, _nptype)
        self._graph_nowatch = None  # traced on first use without a watch

    def _value(self, var: Any, env: dict[str, np.ndarray]) -> Any:
        if var.name in env:
            return env[var.name]
        if var.name in self.consts:
            return self.consts[var.name]
        if var.val is not None:
            return _plain(var.val)
        raise EmulatorError(f"value '{var.name}' is used before it is computed")

    def _execute(self, o: Any, env: dict[str, np.ndarray], watch: list[Fp16Event] | None) -> None:
        args: dict[str, Any] = {}
        for k, v in o.inputs.items():
            args[k] = [self._value(x, env) for x in v] if isinstance(v, (list, tuple)) else self._value(v, env)
        fn = OPS.get(o.op_type)
        if fn is None:
            raise EmulatorError(f"MIL op '{o.op_type}' (op '{o.name}') is not implemented by the emulator")
        channels_last = self._layout(o.op_type, args)
        res = fn(args)
        res = res if isinstance(res, tuple) else (res,)
        if channels_last:
            res = tuple(NHWC(r) for r in res)
        if len(res) != len(o.outputs):
            raise EmulatorError(f"op '{o.name}' ({o.op_type}) gave {len(res)} results for {len(o.outputs)} outputs")
        for var, r in zip(o.outputs, res, strict=True):
            dtype = _nptype(var)
            if isinstance(r, NHWC):
                out = round_fp16(r.data) if dtype == np.float16 else r.data.astype(np.float32, copy=False)
                if watch is not None and dtype == np.float16:
                    self._watch(o, {}, r.data, out, watch)
                env[var.name] = NHWC(out)
                continue
            r = np.asarray(r)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                if dtype == np.float16 and r.dtype.kind == "f":
                    out = round_fp16(r)  # fp16 values, float32 storage
                elif dtype == np.float16 or dtype == np.float32:
                    out = r.astype(np.float32, copy=False)
                else:
                    out = r.astype(dtype) if r.dtype != dtype else r
            if watch is not None and dtype == np.float16 and r.dtype.kind == "f":
                self._watch(o, args, r, out, watch)
            env[var.name] = out

    @staticmethod
    def _layout(op_type: str, args: dict[str, Any]) -> bool:
        """Prepare args in place: keep channels-last values for conv and layout-free ops (converting same-rank
        operands to match), materialize them as NCHW for everything else. True when the result is channels-last."""
        lazy = [k for k, v in args.items() if isinstance(v, NHWC)]
        if op_type == "conv":
            return False  # conv takes either layout and returns NHWC itself
        if lazy and op_type in LAYOUT_FREE and all(
                isinstance(v, NHWC) or not isinstance(v, np.ndarray) or v.size == 1 or v.ndim == 4
                for v in args.values()):
            for k, v in args.items():
                if isinstance(v, NHWC):
                    args[k] = v.data
                elif isinstance(v, np.ndarray) and v.ndim == 4:
                    args[k] = np.transpose(v, (0, 2, 3, 1))
            return True
        for k, v in args.items():
            if isinstance(v, NHWC):
                args[k] = v.nchw()
            elif isinstance(v, list):
                args[k] = [x.nchw() if isinstance(x, NHWC) else x for x in v]
        return False

    @staticmethod
    def _watch(o: Any, args: dict[str, Any], r: np.ndarray, out: np.ndarray, watch: list[Fp16Event]) -> None:
        finite_in = all(np.all(np.isfinite(v)) for v in args.values()
                        if isinstance(v, np.ndarray) and v.dtype.kind == "f")
        r32 = r.astype(np.float32)
        overflow = int(np.count_nonzero(np.isfinite(r32) & (np.abs(r32) > FP16_MAX)))
        underflow = int(np.count_nonzero((r32 != 0) & (out == 0)))
        nonfinite = int(np.count_nonzero(~np.isfinite(out))) if finite_in else 0
        if overflow or nonfinite or underflow:
            watch.append(Fp16Event(o.name, o.op_type, _source_layer(o), overflow, underflow, nonfinite,
                                   float(np.nanmax(np.abs(r32))) if r32.size else 0.0))

    def run(self, feeds: dict[str, np.ndarray], watch: list[Fp16Event] | None = None,
            eager: bool = False) -> dict[str, np.ndarray]:
        """Execute once. The traced graph is used when every op has a TensorFlow twin (``eager=True`` forces the
        op-by-op reference path); both round every fp16 result the same way."""
        if self._graph is not None and not eager:
            try:
                return self._run_graph(feeds, watch)
            except NotImplementedError:
                self._graph = None  # an op variant the fast path lacks: the reference path handles everything
        return self._run_eager(feeds, watch)

    def _run_graph(self, feeds: dict[str, np.ndarray], watch: list[Fp16Event] | None) -> dict[str, np.ndarray]:
        for var in self.function.inputs.values():
            if var.name not in feeds:
                raise EmulatorError(f"missing input '{var.name}'")
        graph = self._graph
        if watch is None:
            if self._graph_nowatch is None:
                from mobilekit.emulate.coreml.graph import compile_program

                self._graph_nowatch = compile_program(self.ops, self.consts, dict(self.function.inputs),
                                                      self.outputs, _nptype, watch=False)
            graph = self._graph_nowatch
        outs, counts = graph({k: np.asarray(feeds[k], np.float32) for k in self.function.inputs})
        if watch is not None:
            bad: set[str] = set()  # ops whose results were non-finite: their consumers only inherit it
            for o, (over, under, nonfinite) in zip(self._graph.fp16_ops, counts.numpy(), strict=True):
                inherited = any(getattr(getattr(v, "op", None), "name", None) in bad
                                for vs in o.inputs.values() for v in (vs if isinstance(vs, (list, tuple)) else [vs]))
                if nonfinite:
                    bad.add(o.name)
                nonfinite = 0 if inherited else nonfinite
                if over or under or nonfinite:
                    watch.append(Fp16Event(o.name, o.op_type, _source_layer(o), int(over), int(under),
                                           int(nonfinite), 0.0))
        return {k: v.numpy() for k, v in outs.items()}

    def _run_eager(self, feeds: dict[str, np.ndarray], watch: list[Fp16Event] | None) -> dict[str, np.ndarray]:
        env: dict[str, np.ndarray] = {}
        for var in self.function.inputs.values():
            if var.name not in feeds:
                raise EmulatorError(f"missing input '{var.name}'")
            dtype = _nptype(var)
            v = np.asarray(feeds[var.name])
            env[var.name] = round_fp16(v) if dtype == np.float16 else v.astype(
                np.float32 if dtype == np.float32 else dtype)
        for o in self.ops:
            self._execute(o, env, watch)
        out = {name: env[name] if name in env else self.consts[name] for name in self.outputs}
        return {k: v.nchw() if isinstance(v, NHWC) else v for k, v in out.items()}
