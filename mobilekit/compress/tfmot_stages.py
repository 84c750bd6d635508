"""The tensorflow-model-optimization stages: magnitude sparsity (unstructured or 2:4), weight clustering, QAT.

Each wraps only the layers tfmot supports (conv, depthwise, dense; for QAT the standard layers around them), so a
graph holding other layers (the op layers of a bridged Keras 3 model, a detector's output concatenation) still
trains; the wrappers are stripped after fine-tuning so the export sees an ordinary model. A later stage preserves
what an earlier one made: clustering keeps zeros, QAT keeps zeros and clusters (tfmot's collaborative schemes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mobilekit.config import ClusterSettings, SparsitySettings

WEIGHTED = ("Conv2D", "DepthwiseConv2D", "Dense")
#: layers QAT annotates; the rest (output concatenation, reshapes, bridged ops) stay float and are quantized by the
#: converter's calibration, which keeps a detector's boxes/scores split possible.
QAT_LAYERS = (*WEIGHTED, "BatchNormalization", "ReLU", "Activation", "Add", "Multiply", "GlobalAveragePooling2D",
              "MaxPooling2D", "AveragePooling2D", "ZeroPadding2D")

Finetune = Callable[[Any, list], Any]  # (student model, extra callbacks) -> DistillReport


def _tfmot() -> Any:
    import tensorflow_model_optimization as tfmot

    return tfmot


def _clone(model: Any, wrap: Callable[[Any], Any]) -> Any:
    import tf_keras

    return tf_keras.models.clone_model(model, clone_function=wrap)


def kernel_stats(model: Any) -> dict[str, float]:
    """Zero fraction and the largest number of distinct values among the weighted layers' kernels."""
    zeros = total = 0
    distinct = 0
    for layer in model.layers:
        if type(layer).__name__ in WEIGHTED and layer.get_weights():
            k = layer.get_weights()[0]
            zeros += int(np.sum(k == 0))
            total += k.size
            distinct = max(distinct, int(np.unique(k).size))
    return {"zero_fraction": zeros / max(total, 1), "max_distinct_values": distinct}


def sparsity(model: Any, settings: SparsitySettings, finetune: Finetune, steps: int) -> tuple[Any, dict[str, Any]]:
    tfmot = _tfmot()
    sp = tfmot.sparsity.keras
    if settings.pattern == "2:4":
        kw: dict[str, Any] = {"pruning_schedule": sp.ConstantSparsity(0.5, begin_step=0, frequency=1),
                              "sparsity_m_by_n": (2, 4)}
    else:
        kw = {"pruning_schedule": sp.PolynomialDecay(0.0, settings.sparsity, begin_step=0,
                                                     end_step=max(1, int(steps * 0.7)), frequency=max(1, steps // 20))}

    def wrap(layer):
        # 2:4 applies to conv and dense; depthwise kernels have no input-channel blocks to pair
        kinds = ("Conv2D", "Dense") if settings.pattern == "2:4" else WEIGHTED
        if type(layer).__name__ in kinds:
            return sp.prune_low_magnitude(layer, **kw)
        return layer.__class__.from_config(layer.get_config())

    wrapped = _clone(model, wrap)
    _copy_into_wrapped(model, wrapped)
    report = finetune(wrapped, [sp.UpdatePruningStep()])
    stripped = sp.strip_pruning(wrapped)
    return stripped, {"pattern": settings.pattern, **kernel_stats(stripped), "distill": report.to_dict()}


def cluster(model: Any, settings: ClusterSettings, finetune: Finetune, preserve_sparsity: bool
            ) -> tuple[Any, dict[str, Any]]:
    from tensorflow_model_optimization.python.core.clustering.keras import cluster_wrapper

    tfmot = _tfmot()
    cl = tfmot.clustering.keras
    init = cl.CentroidInitialization.KMEANS_PLUS_PLUS

    def clusterer(layer):
        return cluster_wrapper.ClusterWeights(layer, settings.clusters, init, preserve_sparsity)

    def wrap(layer):
        # the wrapper takes the built layer itself: its k-means centroids start from the trained weights
        if type(layer).__name__ in WEIGHTED:
            return clusterer(layer)
        return layer.__class__.from_config(layer.get_config())

    wrapped = _clone(model, wrap)
    _copy_into_wrapped(model, wrapped)
    report = finetune(wrapped, [])
    stripped = cl.strip_clustering(wrapped)
    return stripped, {"clusters": settings.clusters, "preserve_sparsity": preserve_sparsity,
                      **kernel_stats(stripped), "distill": report.to_dict()}


def _leaf(v: Any) -> str:
    return v.name.split("/")[-1].split(":")[0]


def _weights_by_leaf(wrapper: Any, layer: Any) -> list[np.ndarray] | None:
    """The wrapped layer's weights (which a QuantizeWrapper holds itself) in ``layer``'s order, by variable name."""
    have = {_leaf(v): v for v in wrapper.weights}
    out = []
    for v in layer.weights:
        if _leaf(v) not in have:
            return None
        out.append(np.asarray(have[_leaf(v)]))
    return out


def _weight_range(wrapper: Any, inner: Any, lo_var: Any, weight: str) -> None:
    """A weight quantizer's range from the weights themselves (tfmot sets it only at the first training step)."""
    hi_var = next(v for v in wrapper.non_trainable_variables if v.name.split("/")[-1].split(":")[0] == f"{weight}_max")
    w = next((v for v in wrapper.weights if _leaf(v) == weight), None)
    if w is None:
        return
    w = np.asarray(w)
    size = int(np.prod(lo_var.shape)) if lo_var.shape.rank else 1
    if size == 1:
        lo, hi = w.min(), w.max()
    else:
        axis = max(a for a in range(w.ndim) if w.shape[a] == size)
        rest = tuple(a for a in range(w.ndim) if a != axis)
        lo, hi = w.min(axis=rest), w.max(axis=rest)
    lo_var.assign(np.minimum(lo, 0.0).reshape(lo_var.shape))
    hi_var.assign(np.maximum(hi, 0.0).reshape(hi_var.shape))


def init_ranges(qmodel: Any, model: Any, images: np.ndarray) -> int:
    """Start every activation range of the QAT model at what the float model really produces on the images.

    tfmot starts them at [-6, 6] and moves them by an exponential moving average (decay 0.999): a fine-tune of a
    few hundred steps would export ranges that are still mostly the initial guess. Returns how many were set.
    """
    import tensorflow as tf
    import tf_keras

    wanted: dict[str, list[tuple[Any, Any, str]]] = {}
    for layer in qmodel.layers:
        inner = getattr(layer, "layer", None)
        for var in layer.non_trainable_variables:
            leaf = var.name.split("/")[-1].split(":")[0]
            for kind in ("output", "post_activation", "pre_activation"):
                if leaf == f"{kind}_min":
                    mx = next(v for v in layer.non_trainable_variables if v.name.split("/")[-1].split(":")[0]
                              == f"{kind}_max")
                    if inner is not None:
                        wanted.setdefault(inner.name, []).append((var, mx, kind))
            if leaf.endswith("kernel_min") and inner is not None:
                _weight_range(layer, inner, var, leaf.removesuffix("_min"))
            if leaf == "quantize_layer_min":
                mx = next(v for v in layer.non_trainable_variables if v.name.endswith("quantize_layer_max:0"))
                lo, hi = float(images.min()), float(images.max())
                var.assign(min(lo, 0.0))
                mx.assign(max(hi, lo + 1e-3))
    names = [n for n in wanted if n in {lyr.name for lyr in model.layers}]
    if not names:
        return 0
    probe = tf_keras.Model(model.inputs, [t for n in names for t in (model.get_layer(n).input,
                                                                      model.get_layer(n).output)])
    outs = probe(images[:64], training=False)
    done = 0
    for k, n in enumerate(names):
        x_in, y = outs[2 * k], outs[2 * k + 1]
        layer = model.get_layer(n)
        for lo_var, hi_var, kind in wanted[n]:
            t = y
            if kind == "pre_activation" and "activation" in layer.get_config():
                linear = layer.__class__.from_config({**layer.get_config(), "activation": "linear",
                                                      "name": f"{n}_linear_probe"})
                linear.build(x_in.shape)
                linear.set_weights(layer.get_weights())
                t = linear(x_in)
            lo, hi = float(tf.reduce_min(t)), float(tf.reduce_max(t))
            lo_var.assign(min(lo, 0.0))
            hi_var.assign(max(hi, 0.0, lo + 1e-3))
            done += 1
    return done


def qat(model: Any, finetune: Finetune, preserve: str | None, images: np.ndarray) -> tuple[Any, Any, dict[str, Any]]:
    """Returns (float model with the QAT-trained weights, the QAT model for the int8 converter, details)."""
    tfmot = _tfmot()
    q = tfmot.quantization.keras

    def annotate(layer):
        if type(layer).__name__ in QAT_LAYERS:
            return q.quantize_annotate_layer(layer)
        return layer.__class__.from_config(layer.get_config())

    annotated = _clone(model, annotate)
    _copy_into_wrapped(model, annotated)
    scheme = None
    if preserve:
        from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.cluster_preserve import (
            default_8bit_cluster_preserve_quantize_scheme as cqat,
        )
        from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.prune_preserve import (
            default_8bit_prune_preserve_quantize_scheme as pqat,
        )

        scheme = (cqat.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity="sparsity" in preserve)
                  if "cluster" in preserve else pqat.Default8BitPrunePreserveQuantizeScheme())
    # tfmot rebuilds the model from its config: layers defined outside tf_keras (a bridged model's op layers)
    # must be known by name
    custom = {type(layer).__name__: type(layer) for layer in model.layers
              if not type(layer).__module__.startswith(("tf_keras", "keras"))}
    with q.quantize_scope(custom):
        qmodel = q.quantize_apply(annotated, scheme) if scheme else q.quantize_apply(annotated)
    qmodel = named_like(qmodel, model)
    init_ranges(qmodel, model, images)
    # BatchNorm runs in inference mode during QAT: batch statistics of fake-quantized activations from small
    # batches would drift the moving averages the converter folds into the int8 weights
    for layer in qmodel.layers:
        inner = getattr(layer, "layer", layer)
        if type(inner).__name__ == "BatchNormalization":
            inner.trainable = False
    report = finetune(qmodel, [])
    for layer in qmodel.layers:
        inner = getattr(layer, "layer", None)
        if inner is None:
            continue
        try:
            target = model.get_layer(inner.name)
        except ValueError:
            continue
        weights = _weights_by_leaf(layer, target)
        if weights:
            target.set_weights(weights)
    return model, qmodel, {"scheme": type(scheme).__name__ if scheme else "Default8BitQuantizeScheme",
                           "distill": report.to_dict()}


def _copy_into_wrapped(model: Any, wrapped: Any) -> None:
    """Copy each layer's weights into its (possibly wrapped) twin of the cloned model."""
    for layer in wrapped.layers:
        inner = getattr(layer, "layer", layer)
        try:
            src = model.get_layer(inner.name)
        except ValueError:
            continue
        w = src.get_weights()
        if w:
            inner.set_weights(w)


def named_like(qmodel: Any, model: Any) -> Any:
    """The QAT model with the float model's output names (wrappers are named ``quant_<layer>``), so the serving
    graph binds its outputs to the same roles."""
    import tf_keras

    names = [str(n) for n in model.output_names]
    if [str(n) for n in qmodel.output_names] == names:
        return qmodel
    renamed = [t if str(q) == n else tf_keras.layers.Activation("linear", name=n)(t)
               for n, q, t in zip(names, qmodel.output_names, qmodel.outputs, strict=True)]
    return tf_keras.Model(qmodel.inputs, renamed if len(renamed) > 1 else renamed[0])
