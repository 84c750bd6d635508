"""LiteRT kernels that can abort, run in a child process: a crash costs that kernel set's parity, not the build.

LiteRT's reference kernels (``BUILTIN_REF``) abort the process on some int8 inputs (``reference_ops::Softmax<int8>``
on MobileNetV3 and EfficientNet with a real photo: SIGABRT, nothing printed). They are a second opinion (they tell
kernel bugs from quantization error), not what phones run, so they run contained: all evaluation images in one
child process that hands back the outputs. When the child dies from a signal, the op at fault is found by
bisection on the crashing image: prefixes of the model's operator list (a TFLite subgraph is stored in execution
order, so every prefix is a valid model) run in a child each, and the shortest one that crashes ends in that op.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mobilekit.contract import Contract

CHILD = "import sys; from mobilekit.emulate.litert_contained import child; child(sys.argv[1])"


@dataclass
class KernelCrash:
    """A kernel set that aborted (``signal``: where, by image and op) or could not run the model (``error``: the
    interpreter's own line, e.g. an op version its kernels lack)."""

    artifact: str
    kernels: str
    signal: str | None
    image: int | None  # the evaluation image it died on; None when it died loading the model
    op: str | None  # "#57 SOFTMAX (output 'model/softmax')", or None when bisection could not tell
    error: str | None = None

    def line(self) -> str:
        if self.error:
            what = f"cannot run {self.artifact}: {self.error}"
        else:
            where = f"in op {self.op}" if self.op else "in an op bisection could not isolate"
            when = f"evaluation image {self.image}" if self.image is not None else "loading the model"
            how = "hung (no answer in time)" if self.signal == "hung" else f"crashed ({self.signal})"
            what = f"{how} on {self.artifact} {where}, {when}"
        return f"LiteRT {self.kernels} kernels {what}: parity on those kernels is not measured"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


#: LiteRT's own words when a kernel set lacks an op (or an op version): the one child error that is about kernels
REFUSED = re.compile(r"Didn't find op for builtin opcode|Registration failed|is not supported by this interpreter|"
                     r"Node number \d+ \(\w+\) failed to (invoke|prepare)")
#: Seconds a child may take per image (reference kernels are slow, not this slow) before it counts as hung.
SECONDS_PER_IMAGE = 120


def _child_run(work: Path, job: dict[str, object], images: int = 1) -> tuple[int, str]:
    """Run a child on ``work`` (``job`` says what); its return code (negative: the signal; ``-SIGALRM`` after the
    timeout) and its error message, if it raised one."""
    (work / "job.json").write_text(json.dumps({**job, "parent": os.getpid()}))
    try:
        res = subprocess.run([sys.executable, "-c", CHILD, str(work)], capture_output=True, text=True, check=False,
                             timeout=60 + SECONDS_PER_IMAGE * images)
    except subprocess.TimeoutExpired:
        return -signal.SIGALRM, ""
    lines = res.stderr.strip().splitlines()
    # an exception's message starts on its "SomethingError: " line and may go on (LiteRT adds "Registration failed.")
    start = max((i for i, ln in enumerate(lines) if re.match(r"^[\w.]+(Error|Exception): ", ln)), default=None)
    text = " ".join(ln.strip() for ln in lines[start:]) if start is not None else (lines or [""])[-1]
    return res.returncode, re.sub(r"^[\w.]+(Error|Exception): ", "", text)[:300]


def run_contained(model: bytes, kind: str, contract: Contract, kernels: str, canvases: list[np.ndarray],
                  work: Path) -> list[dict[str, np.ndarray]] | KernelCrash:
    """Outputs of every canvas (dequantized, keyed by role), or the kernels' crash. Anything else that ends the
    child (an error of its own, the OOM killer) is raised: it says nothing about the kernels."""
    work.mkdir(parents=True, exist_ok=True)
    progress = work / "progress"
    progress.unlink(missing_ok=True)
    (work / "model.tflite").write_bytes(model)
    np.save(work / "canvases.npy", np.stack(canvases))
    code, last = _child_run(work, {"mode": "run", "kind": kind, "kernels": kernels, "contract": contract.to_dict()},
                            len(canvases))
    if code == 0:
        with np.load(work / "out.npz") as z:
            return [{r: z[f"{i}/{r}"] for r in contract.roles} for i in range(len(canvases))]
    if code > 0 and REFUSED.search(last):  # the interpreter refused the model, or one of its kernels failed
        missing = re.search(r"builtin opcode '(\w+)' version '(\d+)'", last)
        node = re.search(r"Node number (\d+) \((\w+)\) failed", last)
        op = (f"{missing.group(1)} version {missing.group(2)}" if missing
              else f"#{node.group(1)} {node.group(2)}" if node else None)
        return KernelCrash(kind, kernels, None, None, op, error=last)
    if code > 0 or code == -signal.SIGKILL:
        why = last or ("killed (often the OOM killer)" if code < 0 else f"exit status {code}")
        raise RuntimeError(f"the contained LiteRT {kernels} child failed: {why}")
    image = int(progress.read_text()) if progress.is_file() else None
    # a crash while loading (an op's Prepare) shows on any input: bisect on the first image then
    op = None if code == -signal.SIGALRM else _bisect(model, kind, contract, kernels, canvases[image or 0], work)
    return KernelCrash(kind, kernels, "hung" if code == -signal.SIGALRM else signal.Signals(-code).name, image, op)


def _bisect(model: bytes, kind: str, contract: Contract, kernels: str, canvas: np.ndarray, work: Path) -> str | None:
    """The first operator whose execution crashes on this canvas, by bisection over model prefixes."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils as fb

    from mobilekit.emulate.litert import LiteRTRunner

    # the input tensor is the same for every kernel set: XNNPACK prepares it here (the suspect set may abort)
    tensor = LiteRTRunner(model, contract.artifacts[kind], contract, "xnnpack").input_tensor(canvas)
    np.save(work / "tensor.npy", tensor)
    full = fb.convert_bytearray_to_object(bytearray(model))
    ops = full.subgraphs[0].operators

    def crashes(k: int) -> bool:
        m = copy.deepcopy(full)
        sg = m.subgraphs[0]
        sg.operators = sg.operators[:k]
        sg.outputs = list(ops[k - 1].outputs[:1])
        m.signatureDefs = []
        (work / "prefix.tflite").write_bytes(bytes(fb.convert_object_to_bytearray(m)))
        return _child_run(work, {"mode": "probe", "kernels": kernels})[0] < 0

    if not crashes(len(ops)):
        return None  # the crash needs state of earlier images, or the full model's outputs
    lo, hi = 1, len(ops)  # invariant: prefix hi crashes; find the smallest such
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if crashes(mid) else (mid + 1, hi)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    op = ops[hi - 1]
    code = full.operatorCodes[op.opcodeIndex]
    name = names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM")
    tensor_name = full.subgraphs[0].tensors[op.outputs[0]].name
    tensor_name = tensor_name.decode() if isinstance(tensor_name, bytes) else str(tensor_name)
    return f"#{hi - 1} {name} (output '{tensor_name.split(';')[0]}')"


def child(folder: str) -> None:
    """The child's side: run every canvas (writing the image index before each, so a crash says which), or
    probe one prefix model on one input tensor."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from mobilekit.emulate.litert import LiteRTRunner
    from mobilekit.process import fault

    work = Path(folder)
    job = json.loads((work / "job.json").read_text())
    with contextlib.suppress(OSError, AttributeError):  # die with the worker (PR_SET_PDEATHSIG), on Linux
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    if os.getppid() != job["parent"]:
        return  # the worker is already gone
    if job["mode"] == "probe":
        kind = {"xnnpack": OpResolverType.AUTO, "reference": OpResolverType.BUILTIN_REF}[job["kernels"]]
        it = Interpreter(str(work / "prefix.tflite"), experimental_op_resolver_type=kind)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], np.load(work / "tensor.npy"))
        it.invoke()
        return
    contract = Contract.from_dict(job["contract"])
    runner = LiteRTRunner((work / "model.tflite").read_bytes(), contract.artifacts[job["kind"]], contract,
                          job["kernels"])
    out = {}
    progress = work / "progress"
    for i, canvas in enumerate(np.load(work / "canvases.npy")):
        progress.write_text(str(i))
        if i == 0:  # MOBILEKIT_FAULT=abort:"<artifact> with LiteRT <kernels> kernels" aborts here, in the child
            fault(f"{job['kind']} with LiteRT {job['kernels']} kernels")
        for role, v in runner.run(canvas).items():
            out[f"{i}/{role}"] = v
    np.savez(work / "out.npz", **out)
