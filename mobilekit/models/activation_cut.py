"""Cut a classifier's final softmax (or sigmoid) out of the int8 graph: the model outputs logits.

A 1000-way softmax puts nearly every probability far below one int8 step (1/256 of its range): quantized, the
output is mostly zeros and its cosine to the float probabilities collapses (0.5 on a keras.applications model with
random weights), while the logits keep their shape under a scale of their own. The activation then runs in
post-processing (Python, Kotlin and Swift read it from the contract, as they already do for models that output
logits), and parity compares probabilities.
"""

from __future__ import annotations

from typing import Any

from mobilekit.models.split import _producer, float32

#: final activations that squash values far below one int8 step, by name
CUT = ("softmax", "sigmoid")


def _activation_name(layer: Any) -> str | None:
    """The activation a layer applies last, when it is one the cut handles."""
    kind = type(layer).__name__
    if kind == "Softmax":
        return "softmax" if getattr(layer, "axis", -1) in (-1, None) else None
    fn = getattr(layer, "activation", None)
    name = getattr(fn, "__name__", None) or (fn if isinstance(fn, str) else None)
    return name if name in CUT else None


def cut_activation(model: Any, keras_mod: Any) -> tuple[Any | None, dict[str, Any]]:
    """``(model outputting logits, info)`` or ``(None, {})`` when the output is not a final softmax/sigmoid."""
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        return None, {}
    layer, inputs = _producer(model.outputs[0])
    activation = _activation_name(layer)
    if activation is None or len(inputs) != 1:
        return None, {}
    if type(layer).__name__ in ("Softmax", "Activation"):
        logits = inputs[0]  # the activation is a layer of its own: its input is the logits
    else:  # a Dense/Conv with the activation built in: the same layer without it, same weights
        config = {**layer.get_config(), "activation": "linear", "name": f"{layer.name}_logits"}
        twin = type(layer).from_config(config)
        logits = twin(inputs[0])
        twin.set_weights(layer.get_weights())
    new = keras_mod.Model(model.inputs, float32(logits, keras_mod, f"{layer.name}_logits_float32"),
                          name=f"{model.name}_logits")
    return new, {"applied": True, "layer": layer.name, "activation": activation,
                 "reason": f"the final {activation} runs in post-processing: the int8 model outputs logits with a "
                           "scale of their own (probabilities far below one int8 step would quantize to zero)"}
