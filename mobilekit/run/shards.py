"""Parity over one shard of evaluation images, the same wherever it runs: in the build, a local worker, a Ray actor.

A :class:`ParityJob` is everything a shard needs, as plain data: the contract, the float model as a frozen graph,
every artifact's bytes or package folder. A :class:`ShardEvaluator` builds its runners from the job once (an
interpreter per artifact, a Core ML emulator per package) and then evaluates shard after shard: read, letterbox,
run, reduce to accumulators (:func:`mobilekit.parity.run.measure_shard`). The build evaluates through the same
class even without workers, so one worker or many run the very same code on the very same graph; the shards merge
in image order, so the metrics do not depend on the worker count.
"""

from __future__ import annotations

import atexit
import io
import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from mobilekit.contract import Contract
from mobilekit.data.datasets import ImageRecord, load_image
from mobilekit.data.preprocess import ResizePlan, letterbox, normalize
from mobilekit.emulate.coreml import CoreMLEmulator, Fp16Event
from mobilekit.emulate.coreml.vision import VisionPipelineEmulator
from mobilekit.emulate.litert import LiteRTRunner
from mobilekit.emulate.litert_contained import KernelCrash, run_contained
from mobilekit.kinds import Kind
from mobilekit.parity.run import ParityAcc, measure_shard, sampled
from mobilekit.process import EVENTS_FD, at, wrap

Truth = list[tuple[np.ndarray, np.ndarray]]
#: A shard of the parity images: the index of its first image, its records and their labels.
Shard = tuple[int, list[ImageRecord], Truth | None]


@dataclass
class ParityJob:
    """What evaluating a shard needs, picklable: sent once to each worker."""

    contract: Contract
    graph: bytes  # the float model: its frozen GraphDef, serialized
    input_name: str
    output_names: list[str]  # in role order
    models: dict[str, bytes] = field(default_factory=dict)  # TFLite artifact kind -> flatbuffer
    coreml_dirs: dict[str, str] = field(default_factory=dict)  # Core ML artifact kind -> .mlpackage folder
    threads: int = 2  # LiteRT threads per interpreter
    packages: dict[str, bytes] = field(default_factory=dict)  # Core ML packages as zip archives, for remote nodes

    @classmethod
    def of(cls, contract: Contract, fn: Any, models: dict[str, bytes], coreml_dirs: dict[str, Path],
           threads: int = 2) -> ParityJob:
        """From the build: the float serving function ``fn`` (a frozen ConcreteFunction) and the artifacts."""
        return cls(contract, fn.graph.as_graph_def().SerializeToString(), fn.inputs[0].name,
                   [t.name for t in fn.outputs], dict(models), {k: str(v) for k, v in coreml_dirs.items()}, threads)

    def packed(self) -> ParityJob:
        """This job with its Core ML packages inside it as archives (another machine cannot read their folders)."""
        packages = {}
        for kind, folder in self.coreml_dirs.items():
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
                for f in sorted(Path(folder).rglob("*")):
                    if f.is_file():
                        z.write(f, f.relative_to(folder).as_posix())
            packages[kind] = buf.getvalue()
        return replace(self, coreml_dirs={}, packages=packages)

    def unpacked(self) -> ParityJob:
        """A packed job's packages extracted under a temporary folder of this process, removed at its exit (or, if
        it is killed, by the next build's sweep on that machine: the folder is named as a run of this process)."""
        from mobilekit.process import RUN_PREFIX

        if not self.packages:
            return self
        root = tempfile.mkdtemp(prefix=f"{RUN_PREFIX}{os.getpid()}-parity-")
        atexit.register(shutil.rmtree, root, True)
        dirs = {}
        for kind, data in self.packages.items():
            dirs[kind] = str(Path(root) / f"{kind}.mlpackage")
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                z.extractall(dirs[kind])
        return replace(self, coreml_dirs=dirs, packages={})


@dataclass
class ShardResult:
    """One shard's accumulators, and what happened on the way: kernel crashes, Core ML fp16 events, its time."""

    first: int
    acc: ParityAcc
    crashes: list[KernelCrash] = field(default_factory=list)
    fp16_events: dict[str, list[Fp16Event]] = field(default_factory=dict)
    seconds: float = 0.0


def float_runner(job: ParityJob) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """The float model, rebuilt from its frozen graph (no Keras, no weights files): tensors keyed by role."""
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(job.graph)
    wrapped = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph_def, name=""), [])
    g = wrapped.graph
    fn = wrapped.prune(g.get_tensor_by_name(job.input_name), [g.get_tensor_by_name(n) for n in job.output_names])
    roles = job.contract.roles

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        return {r: np.asarray(t) for r, t in zip(roles, fn(tf.constant(x, dtype=tf.float32)), strict=True)}

    return run


class ShardEvaluator:
    """Runners built once from a :class:`ParityJob`, then any number of shards."""

    def __init__(self, job: ParityJob) -> None:
        self.job = job
        self.contract = job.contract
        self.reference = wrap("keras-float", "TensorFlow", float_runner(job))
        self.events: dict[str, list[Fp16Event]] = {}
        self.runners: dict[str, dict[str, Callable]] = {}
        for kind, m in job.models.items():
            run = LiteRTRunner(m, self.contract.artifacts[kind], self.contract, threads=job.threads).run
            self.runners[kind] = {"xnnpack": wrap(kind, "LiteRT xnnpack kernels", run)}
        for kind, path in job.coreml_dirs.items():
            events = self.events.setdefault(kind, [])
            run = (_vision_runner(VisionPipelineEmulator(Path(path)), self.contract, events)
                   if kind == Kind.COREML_VISION else coreml_runner(CoreMLEmulator(Path(path)), self.contract, events))
            self.runners[kind] = {"emulator": wrap(kind, "the Core ML emulator", run)}
        self.crashed = False  # the int8 model's reference kernels crashed on an earlier shard

    def __call__(self, first: int, records: list[ImageRecord], truth: Truth | None) -> ShardResult:
        """Parity over ``records``, the evaluation images from index ``first`` (``truth``: their labels)."""
        start = time.monotonic()
        for events in self.events.values():
            events.clear()
        canvases, plans = letterboxed(records, self.contract)
        contained, crashes = self._contained(canvases, first)
        runners = {kind: {**by, **contained.get(kind, {})} for kind, by in self.runners.items()}
        acc = measure_shard(self.contract, canvases, plans, self.reference, runners, truth,
                            sampled(self.contract, first))
        return ShardResult(first, acc, crashes, {k: list(v) for k, v in self.events.items()},
                           time.monotonic() - start)

    def _contained(self, canvases: list[np.ndarray], first: int
                   ) -> tuple[dict[str, dict[str, Callable]], list[KernelCrash]]:
        """LiteRT's reference kernels on the shard (the int8 model only), in a child process: they abort on some
        int8 models. Runners replaying their outputs; after a crash, which is returned, none (a kernel set that
        crashed is not measured on a subset of the images)."""
        kind = Kind.TFLITE_INT8
        if kind not in self.job.models or self.crashed:
            return {}, []
        with tempfile.TemporaryDirectory(prefix="litert-") as tmp, \
                at(kind, "a contained child running LiteRT reference kernels"):
            got = run_contained(self.job.models[kind], kind, self.contract, "reference", canvases, Path(tmp))
        if isinstance(got, KernelCrash):
            if got.image is not None:
                got.image += first
            self.crashed = True
            return {}, [got]
        outputs = {id(c): o for c, o in zip(canvases, got, strict=True)}
        return {kind: {"reference": lambda canvas: outputs[id(canvas)]}}, []


def letterboxed(records: list[ImageRecord], contract: Contract) -> tuple[list[np.ndarray], list[ResizePlan]]:
    """The images read and letterboxed to the model input (canvases), with their plans."""
    inp = contract.input
    canvases, plans = [], []
    for r in records:
        c, p = letterbox(load_image(r.path), inp.height, inp.width, inp.resize, inp.pad_value)
        canvases.append(c)
        plans.append(p)
    return canvases, plans


def coreml_runner(emulator: CoreMLEmulator, contract: Contract, events: list[Fp16Event],
                  kind: str = Kind.COREML_FP16) -> Callable:
    """A letterboxed canvas → a Core ML package's float outputs by role, fed as the Swift SDK feeds it."""
    inp = contract.input
    binding = contract.artifacts[kind].inputs[0]

    def run(canvas: np.ndarray) -> dict[str, np.ndarray]:
        if binding.dtype == "image":  # the program applies the model's scale and bias itself
            x = pixels(canvas, inp.color)
        else:
            x = normalize(canvas, inp.scale, inp.offset, inp.color, inp.layout)
        out = emulator.run({binding.name: x}, events)
        return {role: out[role].astype(np.float32) for role in contract.roles}

    return run


def pixels(canvas: np.ndarray, color: str) -> np.ndarray:
    """A canvas as a Core ML image input sees it: [1, 3, H, W] float pixels in the image's channel order."""
    px = canvas[..., ::-1] if color == "BGR" else canvas
    return np.transpose(px, (2, 0, 1))[None].astype(np.float32)


def _vision_runner(emulator: VisionPipelineEmulator, contract: Contract, events: list[Fp16Event]) -> Callable:
    return lambda canvas: emulator.run(pixels(canvas, contract.input.color), watch=events)


def quiet_worker(job: ParityJob) -> None:
    """A worker process's start: TensorFlow's share of the cores, and no line to the build's supervisor (that pipe
    is the build's own)."""
    os.environ.pop(EVENTS_FD, None)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(job.threads)
    tf.config.threading.set_inter_op_parallelism_threads(job.threads)
