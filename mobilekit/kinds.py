"""Artifact kinds: the names every stage, report, manifest and SDK generator uses for a bundle's models.

A ``str`` enum, so a kind is its plain name wherever it is written (JSON, the manifest, dict keys, templates) and
compares equal to it; Core ML compressed variants are ``coreml-<recipe>`` (:func:`coreml_variant`).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum


class Kind(str, Enum):
    TFLITE_INT8 = "tflite-int8"  # full-integer TFLite (CPU/XNNPACK, NNAPI)
    TFLITE_INT8_MIXED = "tflite-int8-mixed"  # int8 with the few ops selective precision left in float
    TFLITE_INT8_QAT = "tflite-int8-qat"  # full-int8 after quantization-aware training on demand
    TFLITE_FP16 = "tflite-fp16"  # fp16 weights, float I/O (GPU delegate)
    TFLITE_FLOAT32 = "tflite-float32"
    COREML_FP16 = "coreml-fp16"  # the fp16 mlprogram every Core ML variant starts from
    COREML_VISION = "coreml-vision"  # decoder + NonMaximumSuppression pipeline

    __str__ = str.__str__  # written as the plain name, in f-strings too
    __format__ = str.__format__


def coreml_variant(recipe: str) -> str:
    """The kind of the Core ML package compressed by ``recipe``."""
    return f"coreml-{recipe}"


def shipped_coreml(kinds: Iterable[str]) -> str | None:
    """The Core ML model the Swift package ships among ``kinds``: the first compressed variant by name (compressed
    weights are what the Neural Engine should load), else the fp16 package, else None. One rule for the SDK and for
    what a recipe search measures as "the iOS model"."""
    kinds = list(kinds)
    variants = sorted(k for k in kinds if k.startswith("coreml-") and k not in (Kind.COREML_FP16, Kind.COREML_VISION))
    if variants:
        return variants[0]
    return Kind.COREML_FP16 if Kind.COREML_FP16 in kinds else None
