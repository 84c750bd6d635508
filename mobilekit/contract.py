"""The model contract: the one description of what goes in and comes out of the model.

Derived once from the model and the config (:func:`mobilekit.derive.derive_contract`: the types here import no
head plugin), completed with each converted artifact's
tensor bindings and quantization parameters as the exporters run, and serialized as ``contract.json``. Exporters,
emulators, parity checks and code templates read this object and nothing else, so Python, Kotlin and Swift cannot
disagree on normalization, output order, anchors or NMS settings.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: 2: the SSD head's anchors, anchor settings, variances and delta order moved from the head into its params
SCHEMA_VERSION = 2
#: head keys schema 1 kept at the head's top level, read into its params
_V1_HEAD_KEYS = ("anchors", "anchor_settings", "variances", "delta_order")


@dataclass
class InputSpec:
    """The image input. ``x = pixel * scale[c] + offset[c]`` on RGB (or BGR) pixels 0..255."""

    name: str
    height: int
    width: int
    channels: int
    layout: str  # NHWC | NCHW
    color: str  # RGB | BGR
    resize: str  # letterbox | stretch
    pad_value: int
    scale: list[float]
    offset: list[float]

    @property
    def shape(self) -> list[int]:
        if self.layout == "NCHW":
            return [1, self.channels, self.height, self.width]
        return [1, self.height, self.width, self.channels]


@dataclass
class OutputSpec:
    """One float output of the serving graph, named by its role (``boxes``, ``scores``, ``predictions``...)."""

    role: str
    shape: list[int]
    source: str  # the tensor of the user's model it comes from


@dataclass
class HeadSpec:
    format: str  # the head plugin's name (``mobilekit.heads``): yolo, dfl, grid, ssd, ..., classifier
    num_classes: int
    box_format: str = "cxcywh"
    box_units: str = "pixels"
    box_order: str = "xy"  # xy | yx: the order of the 4 box channels as the model emits them
    score_activation: str = "none"
    background_class: bool = False
    top_k: int = 5
    split: dict[str, Any] = field(default_factory=dict)  # whether a concatenated output was split, and why (not)
    params: dict[str, Any] = field(default_factory=dict)  # what the head's ``complete`` adds for its decoding
    outputs: dict[str, str] = field(default_factory=dict)  # roles the config maps to the model's output names


@dataclass
class NmsSpec:
    score_threshold: float
    iou_threshold: float
    max_detections: int
    class_agnostic: bool


@dataclass
class TensorBinding:
    """How a role maps onto one artifact's tensor: position in the I/O list, dtype and quantization."""

    role: str
    position: int
    name: str
    dtype: str
    shape: list[int]
    scale: float | None = None
    zero_point: int | None = None


@dataclass
class ArtifactSpec:
    kind: str
    path: str
    inputs: list[TensorBinding]
    outputs: list[TensorBinding]
    #: hex SHA-256 of the shipped file (a Core ML package: the bundle writer's tree digest, as the manifest lists
    #: it), filled when the bundle is written, so an SDK can name a model version without hashing it on the device
    sha256: str = ""

    def output(self, role: str) -> TensorBinding:
        return next(b for b in self.outputs if b.role == role)


@dataclass
class Identity:
    """Which model a bundle was built from, as the SDKs report it (``modelInfo``): a crash report or an A/B test
    names the exact model without the app hashing megabytes on the device."""

    name: str
    version: str  # the config's ``version``: the release the app team ships (also the Maven version)
    source_sha256: str  # SHA-256 of the Keras model file (or SavedModel directory) it was built from
    mobilekit: str  # the mobilekit version that built it


@dataclass
class Contract:
    name: str
    task: str
    input: InputSpec
    outputs: list[OutputSpec]
    head: HeadSpec
    labels: list[str]
    nms: NmsSpec | None = None
    artifacts: dict[str, ArtifactSpec] = field(default_factory=dict)
    identity: Identity | None = None  # set when the bundle is written
    schema_version: int = SCHEMA_VERSION

    @property
    def roles(self) -> list[str]:
        return [o.role for o in self.outputs]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if not d["head"]["params"]:
            del d["head"]["params"]  # heads without params write the contract they always wrote
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Contract:
        return cls(
            name=d["name"],
            task=d["task"],
            input=InputSpec(**d["input"]),
            outputs=[OutputSpec(**o) for o in d["outputs"]],
            head=_head(d["head"]),
            labels=list(d["labels"]),
            nms=NmsSpec(**d["nms"]) if d.get("nms") else None,
            artifacts={k: ArtifactSpec(kind=a["kind"], path=a["path"],
                                       inputs=[TensorBinding(**b) for b in a["inputs"]],
                                       outputs=[TensorBinding(**b) for b in a["outputs"]],
                                       sha256=a.get("sha256", ""))
                       for k, a in d.get("artifacts", {}).items()},
            identity=Identity(**d["identity"]) if d.get("identity") else None,
            schema_version=SCHEMA_VERSION,  # read into the current layout (``_head`` moves schema 1's SSD fields)
        )

    @classmethod
    def load(cls, path: str | Path) -> Contract:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def _head(d: dict[str, Any]) -> HeadSpec:
    """A head as any schema wrote it (a schema 1 bundle's SSD fields sit beside the others)."""
    d = dict(d)
    moved = {k: d.pop(k) for k in _V1_HEAD_KEYS if k in d}
    if any(v is not None for k, v in moved.items() if k != "delta_order"):
        d["params"] = {**moved, **d.get("params", {})}
    return HeadSpec(**d)
