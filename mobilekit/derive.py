"""The contract derived from what the serving graph exposes and what the config says about it.

The types are in :mod:`mobilekit.contract` (core); deriving one asks the configured head plugin to complete and
check it, so it lives here, above the plugins.
"""

from __future__ import annotations

from typing import Any

from mobilekit.config import Config, DetectionSettings, normalization_of
from mobilekit.contract import Contract, HeadSpec, InputSpec, NmsSpec, OutputSpec
from mobilekit.errors import ConfigError, ModelError
from mobilekit.heads import get_head
from mobilekit.models.loader import LoadedModel


def read_labels(cfg: Config, num_classes: int) -> list[str]:
    if not cfg.labels:
        return [f"class_{i}" for i in range(num_classes)]
    path = cfg.resolve(cfg.labels)
    if not path.is_file():
        raise ConfigError("labels file not found", path=path, fix="name a text file with one class name per line")
    labels = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if len(labels) != num_classes:
        raise ConfigError(f"has {len(labels)} labels but the model predicts {num_classes} classes", path=path,
                          fix=f"list exactly {num_classes} names, one per line, in the model's class order")
    return labels


def head_spec(det: DetectionSettings, num_classes: int, inp: InputSpec, split: dict[str, Any] | None = None
              ) -> HeadSpec:
    """The head part of the contract from the detection settings: the one place they become a ``HeadSpec`` (the
    build's contract, and every reading ``init`` tries), completed by the head and resolved for the input size."""
    head = HeadSpec(format=det.head, num_classes=num_classes, box_format=det.box_format, box_units=det.box_units,
                    box_order=det.box_order, score_activation=det.score_activation,
                    background_class=det.background_class, split=dict(split or {}), outputs=dict(det.outputs))
    impl = get_head(det.head)
    impl.complete(head, det)
    impl.prepare(head, inp)  # a head whose anchors follow from the input size resolves them once, here
    return head


def serving_shape(cfg: Config, loaded: LoadedModel) -> list[int]:
    """The serving input shape, batch of one: the model's, with ``input.size`` filling the sizes it leaves open."""
    shape = list(loaded.input_shape)
    spatial = (1, 2) if cfg.input.layout == "NHWC" else (2, 3)
    for k, ax in enumerate(spatial):
        if shape[ax] is None:
            if not cfg.input.size:
                raise ConfigError("the model accepts any image size; mobile runtimes need a fixed one",
                                  path=cfg.base_dir, fix="set input.size: [height, width]")
            shape[ax] = cfg.input.size[k]
    shape[0] = 1
    if any(d is None for d in shape):
        raise ModelError(f"input shape {loaded.input_shape} has unknown dimensions", path=loaded.path,
                         fix="export the model with a fixed channel count")
    return [int(d) for d in shape]


def _input(cfg: Config, input_shape: list[int], input_name: str) -> InputSpec:
    layout = cfg.input.layout
    if layout == "NCHW":
        _, c, h, w = input_shape
    else:
        _, h, w, c = input_shape
    if c != 3:
        raise ConfigError(f"the model takes {c} channels; mobilekit handles RGB images (3 channels)",
                          path=cfg.resolve(cfg.model), fix="export a model with a [1, H, W, 3] image input")
    if cfg.input.size and list(cfg.input.size) != [h, w]:
        raise ConfigError(f"input.size {cfg.input.size} differs from the model's input {h}x{w}", path=cfg.base_dir,
                          fix=f"set input.size to [{h}, {w}] or remove it")
    scale, offset = normalization_of(cfg)
    return InputSpec(name=input_name, height=h, width=w, channels=c, layout=layout, color=cfg.input.color,
                     resize=cfg.input.resize, pad_value=cfg.input.pad_value, scale=scale, offset=offset)


def _head(cfg: Config, num_classes: int, inp: InputSpec, split: dict[str, Any]) -> HeadSpec:
    if cfg.task == "classification":
        # a final softmax/sigmoid cut out of the graph (models/activation_cut) runs in post-processing instead
        return HeadSpec(format="classifier", num_classes=num_classes,
                        score_activation=split.get("activation", cfg.classification.score_activation),
                        top_k=cfg.classification.top_k, split=split)
    return head_spec(cfg.detection, num_classes, inp, split)


def _nms(cfg: Config) -> NmsSpec | None:
    if cfg.task == "classification":
        return None
    det = cfg.detection
    return NmsSpec(det.score_threshold, det.iou_threshold, det.max_detections, det.class_agnostic_nms)


def plan(cfg: Config, loaded: LoadedModel) -> Contract:
    """The contract as far as the config and the model's input tell it, before the serving graph exists (no
    outputs, labels or class count yet): what the first serving graph of a model is built from. Every later graph
    of the build is built from the derived contract, so the input layout and the head have one source."""
    inp = _input(cfg, serving_shape(cfg, loaded), "image")
    return Contract(cfg.model_name, cfg.task, inp, [], _head(cfg, 0, inp, {}), [], _nms(cfg))


def derive_contract(cfg: Config, input_shape: list[int], input_name: str, outputs: list[OutputSpec],
                    num_classes: int, split: dict[str, Any]) -> Contract:
    """Build the contract from what the serving graph exposes and what the config says about it."""
    inp = _input(cfg, input_shape, input_name)
    contract = Contract(cfg.model_name, cfg.task, inp, outputs, _head(cfg, num_classes, inp, split),
                        read_labels(cfg, num_classes), _nms(cfg))
    if cfg.task != "classification":
        get_head(cfg.detection.head).check(contract)  # a head whose candidates follow from the input size checks them
    return contract
