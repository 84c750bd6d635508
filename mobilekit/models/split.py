"""Split a detector's final ``concat([boxes, scores])`` into two outputs before int8 conversion.

Boxes (0..640 pixels) and class scores (0..1) quantized with one int8 scale lose either the scores (a step of
~2.5 against a range of 1) or the boxes. Rewiring the Keras graph to output the concatenation's inputs gives
each its own scale. Walks through a final ``Permute((2, 1))`` (``[1, 4+C, N]`` exports) and regroups any
number of concat inputs whose channel sizes add up to 4 box channels and C score channels.
"""

from __future__ import annotations

from typing import Any


def _producer(tensor: Any) -> tuple[Any, list[Any]]:
    hist = tensor._keras_history
    op = getattr(hist, "operation", None) or getattr(hist, "layer", None)
    node = op._inbound_nodes[hist.node_index]
    inputs = node.input_tensors
    return op, list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]


def float32(t: Any, keras_mod: Any, name: str) -> Any:
    """``t`` as float32: a mixed-precision model's outputs behind its final cast are float16, and the served
    outputs (the float reference of every parity check) must stay float32."""
    if str(getattr(t, "dtype", "float32")).endswith("float32"):
        return t
    return keras_mod.layers.Activation("linear", dtype="float32", name=name)(t)


def _passthrough(op: Any) -> bool:
    """A layer that leaves values as they are: ``Identity``, or ``Activation('linear')`` (the float32 output cast
    of mixed-precision models); the concatenation behind it can be split just the same."""
    kind = type(op).__name__
    if kind == "Identity":
        return True
    fn = getattr(op, "activation", None)
    return kind == "Activation" and getattr(fn, "__name__", fn) == "linear"


def split_concat(model: Any, keras_mod: Any, channel_axis: int) -> tuple[Any | None, dict[str, Any]]:
    """Return ``(model with [boxes, scores] outputs, info)`` or ``(None, info with the reason)``."""
    if len(model.outputs) != 1:
        return None, {"applied": False, "reason": f"the model has {len(model.outputs)} outputs"}
    op, inputs = _producer(model.outputs[0])
    while _passthrough(op) and len(inputs) == 1:  # a float32 cast (mixed precision), an identity
        op, inputs = _producer(inputs[0])
    permute = None
    if type(op).__name__ == "Permute" and tuple(op.dims) == (2, 1):
        permute = op
        op, inputs = _producer(inputs[0])
        channel_axis = 2 if channel_axis == 1 else 1
    kind = type(op).__name__
    if kind != "Concatenate":
        return None, {"applied": False,
                      "reason": f"the output comes from a {kind} layer, not a concatenation, so boxes and scores "
                                "share one int8 scale; export the model with separate boxes and scores outputs "
                                "(head: decoded) to give each its own"}
    rank = len(model.outputs[0].shape)
    axis = op.axis % rank
    if axis != channel_axis:
        return None, {"applied": False, "reason": f"the final concatenation joins axis {axis}, not the box/class "
                                                  f"axis {channel_axis}"}
    sizes = [int(t.shape[channel_axis]) for t in inputs]
    total, cut = 0, None
    for i, s in enumerate(sizes):
        total += s
        if total == 4:
            cut = i + 1
            break
    if cut is None or cut == len(inputs):
        return None, {"applied": False, "reason": f"the concatenation's parts {sizes} do not separate 4 box "
                                                  "channels from the class channels"}
    groups = []
    # explicit names: auto-named layers get per-process counters, which would leak into the converted graphs'
    # tensor names and make two identical builds differ
    for role, part in (("boxes", inputs[:cut]), ("scores", inputs[cut:])):
        t = part[0] if len(part) == 1 else keras_mod.layers.Concatenate(axis=channel_axis,
                                                                        name=f"{op.name}_{role}")(part)
        if permute is not None:
            t = keras_mod.layers.Permute((2, 1), name=f"{op.name}_{role}_transposed")(t)
        groups.append(float32(t, keras_mod, f"{op.name}_{role}_float32"))
    new = keras_mod.Model(model.inputs, groups, name=f"{model.name}_split")
    return new, {"applied": True, "layer": op.name, "parts": sizes,
                 "reason": "boxes and scores are separate int8 outputs with their own scales"}
