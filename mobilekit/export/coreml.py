"""Core ML export: an ``mlprogram`` package for the Neural Engine (fp16 compute), plus compressed variants.

Converted from the same frozen serving function as the TFLite models, with outputs renamed to the contract's
roles, the labels and contract in the user-defined metadata, and no conversion date (two builds of the same model
give the same package).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mobilekit.config import CoreMLSettings
from mobilekit.contract import ArtifactSpec, Contract, TensorBinding
from mobilekit.errors import ConversionError
from mobilekit.export.coreml_compress import RECIPES, required_target
from mobilekit.export.tflite import output_position
from mobilekit.kinds import Kind
from mobilekit.models.serving import Serving

#: TensorFlow ops coremltools 9 cannot convert that Keras models emit, and what to do (the coverage catalogue,
#: ``tests/test_coreml_catalogue.py``, finds them).
KNOWN_GAPS = {
    "StatefulPartitionedCall": "a grouped Conv2D (ConvNeXt, ResNeXt: Keras runs it through an XLA-compiled function "
                               "on CPU, which the converter cannot inline) has no Core ML conversion; use "
                               "DepthwiseConv2D where groups equal the channels, or set coreml.enabled: false",
    "Erfc": "exact GELU has no Core ML conversion; use gelu(approximate=True), or set coreml.enabled: false",
    "Expm1": "expm1 (the CELU activation) has no Core ML conversion; use ELU, or set coreml.enabled: false",
}


def deployment_target(settings: CoreMLSettings) -> str:
    return settings.deployment_target or required_target(settings.compression)


def convert(serving: Serving, contract: Contract, settings: CoreMLSettings, fp32: bool = False) -> Any:
    """fp16 (or, for faithfulness checks, fp32) ML Program with role-named float32 outputs."""
    import coremltools as ct

    target = getattr(ct.target, deployment_target(settings))
    inp = contract.input
    if settings.input == "image":
        # Core ML computes scale * pixel + bias on the decoded image: the model's own normalization, on device.
        model_input = ct.ImageType(name=serving.input_name, shape=tuple(serving.input_shape), scale=inp.scale[0],
                                   bias=list(inp.offset), color_layout=getattr(ct.colorlayout, inp.color))
    else:
        model_input = ct.TensorType(name=serving.input_name, shape=tuple(serving.input_shape), dtype=np.float32)
    try:
        model = ct.convert(
            [serving.fn], source="tensorflow", convert_to="mlprogram", minimum_deployment_target=target,
            inputs=[model_input],
            # float32 outputs: apps and Vision read them without conversion
            outputs=[ct.TensorType(name="Identity" if i == 0 else f"Identity_{i}", dtype=np.float32)
                     for i in range(len(serving.roles))],
            compute_precision=ct.precision.FLOAT32 if fp32 else ct.precision.FLOAT16,
            compute_units=getattr(ct.ComputeUnit, settings.compute_units),
        )
    except Exception as e:
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else e.__class__.__name__
        fix = next((f for op, f in KNOWN_GAPS.items() if f"'{op}'" in first),
                   "check the ops against coremltools' TensorFlow support, or disable coreml")
        raise ConversionError(f"Core ML conversion failed: {first}", fix=fix) from None
    spec = model.get_spec()
    for out in list(spec.description.output):
        role = serving.roles[output_position(out.name)]
        ct.utils.rename_feature(spec, out.name, role, rename_inputs=False)
    model = ct.models.MLModel(spec, weights_dir=model.weights_dir)
    _metadata(model, contract, settings)
    return model


def _metadata(model: Any, contract: Contract, settings: CoreMLSettings) -> None:
    model.author = settings.author
    model.version = settings.version
    model.short_description = f"{contract.name}: {contract.task} ({contract.head.format}), made by mobilekit"
    meta = model.user_defined_metadata
    meta.pop("com.github.apple.coremltools.conversion_date", None)
    meta["labels"] = json.dumps(contract.labels)
    slim = {k: v for k, v in contract.to_dict().items() if k != "artifacts"}
    meta["mobilekit.contract"] = json.dumps(slim, sort_keys=True)


def compress(model: Any, recipe: str, contract: Contract, settings: CoreMLSettings) -> Any:
    out = RECIPES[recipe].apply(model)
    _metadata(out, contract, settings)
    return out


def save(model: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(str(path))
    pin(path)
    return path


def pin(package: Path) -> None:
    """Make a saved ``.mlpackage`` byte-identical across builds: its Manifest.json names items by random UUIDs and
    the spec's protobuf maps serialize in hash order. Items get UUIDs derived from their paths, and every
    ``.mlmodel`` inside is re-serialized deterministically (same message, same bytes)."""
    import uuid

    from coremltools.proto import Model_pb2

    manifest_path = package / "Manifest.json"
    manifest = json.loads(manifest_path.read_text())
    renamed = {old: str(uuid.uuid5(uuid.NAMESPACE_URL, f"mobilekit:{entry['path']}"))
               for old, entry in manifest["itemInfoEntries"].items()}
    manifest["itemInfoEntries"] = {renamed[k]: v for k, v in sorted(manifest["itemInfoEntries"].items(),
                                                                    key=lambda kv: renamed[kv[0]])}
    manifest["rootModelIdentifier"] = renamed[manifest["rootModelIdentifier"]]
    manifest_path.write_text(json.dumps(manifest, indent=4, sort_keys=True) + "\n")
    for spec_path in (package / "Data").rglob("*.mlmodel"):
        spec = Model_pb2.Model()
        spec.ParseFromString(spec_path.read_bytes())
        spec_path.write_bytes(spec.SerializeToString(deterministic=True))


def artifact(kind: str, rel: str, serving: Serving, settings: CoreMLSettings) -> ArtifactSpec:
    """Bindings of a Core ML package; an ``image`` input is fed pixels (0..255), a ``float32`` one the normalized
    tensor."""
    dtype = "image" if settings.input == "image" else "float32"
    ins = [TensorBinding("image", 0, serving.input_name, dtype, list(serving.input_shape))]
    outs = [TensorBinding(o.role, i, o.role, "float32", list(o.shape)) for i, o in enumerate(serving.outputs)]
    return ArtifactSpec(kind=kind, path=rel, inputs=ins, outputs=outs)


def weight_bytes(path: Path) -> int:
    """Size of the package's weight blob (what compression shrinks)."""
    return sum(f.stat().st_size for f in (path / "Data" / "com.apple.CoreML" / "weights").rglob("*") if f.is_file())


def vision_artifact(rel: str, serving: Serving, contract: Contract) -> ArtifactSpec:
    """The Vision pipeline: image in; kept rows of class confidences and normalized cxcywh boxes out."""
    from mobilekit.export.vision import CONFIDENCE, COORDINATES

    ins = [TensorBinding("image", 0, serving.input_name, "image", list(serving.input_shape))]
    outs = [TensorBinding(CONFIDENCE, 0, CONFIDENCE, "float32", [-1, contract.head.num_classes]),
            TensorBinding(COORDINATES, 1, COORDINATES, "float32", [-1, 4])]
    return ArtifactSpec(kind=Kind.COREML_VISION, path=rel, inputs=ins, outputs=outs)
