"""Activations rewritten, for the int8 model only, into exact equivalents that XNNPACK's int8 kernels run.

XNNPACK is why a phone's CPU runs int8 fast; an int8 op it has no kernel for runs in LiteRT's built-in code, and
the graph is cut around it (each cut costs a hand-over between the delegate and the interpreter). Measured on
LiteRT 2.x (``tests/test_xnnpack_rewrite.py`` converts each entry and asks the delegate): an int8 ``HARD_SWISH``,
``PRELU`` and ``MINIMUM`` run outside XNNPACK (so does a ``RELU`` or ``RELU6`` the converter cannot fuse into the op
before it, which no Keras layer shows and no rewrite here targets), so MobileNetV3 and PReLU nets (face detectors)
come out *slower* in int8 than in float. Each :class:`Rewrite` below computes the same function as the activation
from ops XNNPACK takes in int8 (ADD/SUB/MUL with a fused RELU or RELU6, a 1x1 DEPTHWISE_CONV_2D, LEAKY_RELU), in a
form the TFLite converter does not fuse back (``x * relu6(x + 3) / 6`` is matched back into ``HARD_SWISH``).

Only the int8 graph is rewritten: the float reference, the fp16/float32 TFLite models and Core ML keep the user's
graph. Layers are shared with the original model (same weights), so a rewritten layer's output can be held to the
original layer's output, layer by layer. Activations with no exact form in XNNPACK's int8 ops (GELU's erf, exp- and
log-based ones, discontinuous ones) are listed with the op they become (:data:`NO_FORM`), so ``mobilekit inspect``
and the manifest name them and the op profile says what they cost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mobilekit.registry import Registry


@dataclass(frozen=True)
class Rewrite:
    """An activation XNNPACK's int8 kernels do not take, and its exact equivalent made of ops they do take.

    ``match(layer)`` returns the parameters the form needs (truthy), or None; ``apply(x, params, ops)`` computes
    the form on the activation's input ``x`` with ``keras.ops``."""

    name: str
    op: str  # what the activation becomes in an int8 TFLite model (outside XNNPACK)
    form: str  # the equivalent, as the manifest says it
    match: Callable[[Any], Any]
    apply: Callable[[Any, Any, Any], Any]


@dataclass(frozen=True)
class NoForm:
    """An activation whose int8 op XNNPACK does not take and that no exact XNNPACK form serves (why says so)."""

    name: str
    op: str
    why: str


REWRITES: Registry[Rewrite] = Registry("XNNPACK int8 rewrite")


def _activation(layer: Any) -> str | None:
    """The name of the activation function a layer applies (an ``Activation`` layer, or one built into a Conv or
    Dense), or None."""
    fn = getattr(layer, "activation", None)
    if fn is None or isinstance(fn, str):
        return fn
    return getattr(fn, "__name__", None)


def _hard_swish_match(layer: Any) -> Any:
    return _activation(layer) in ("hard_swish", "hard_silu") or None


def _hard_swish(x: Any, _: Any, ops: Any) -> Any:
    """hard_swish(x) = x6 * relu6(6 * x6 + 3) with x6 = x / 6, the inner ``6 * x6 + 3`` a 1x1 depthwise
    convolution (weight 6, bias 3) with a fused RELU6. x then has one consumer, the MUL by 1/6, which the converter
    folds into the convolution that makes x: two int8 ops per activation (DEPTHWISE_CONV_2D, MUL), both on XNNPACK.

    Not ``x * relu6(x + 3) / 6``, which the converter fuses back into HARD_SWISH. Measured against the others on
    MobileNetV3Small: ``(x / 6) * relu6(x + 3)`` (three ops: MUL, ADD with RELU6, MUL) is about 5% slower in int8,
    and its ADD of 3 to an x that spans under about 1e-2 (a random-weight net's deep layers) needs an int8 scale
    ratio XNNPACK's ADD refuses (below 2^-10), so it falls outside; the convolution's requantization takes it.
    Tensors that are not NHWC feature maps (a Dense layer's output) get the three-op form."""
    if len(x.shape) != 4 or x.shape[-1] is None:
        return ops.multiply(ops.multiply(x, 1.0 / 6.0), ops.relu6(ops.add(x, 3.0)))
    x6 = ops.multiply(x, 1.0 / 6.0)
    six = np.full((1, 1, int(x.shape[-1]), 1), 6.0, np.float32)
    return ops.multiply(x6, ops.relu6(ops.add(ops.depthwise_conv(x6, six, strides=1, padding="valid"), 3.0)))


REWRITES.register("hard_swish")(Rewrite("hard_swish", "HARD_SWISH", "x6 * relu6(dwconv1x1(x6; 6) + 3), x6 = x / 6",
                                        _hard_swish_match, _hard_swish))


def _prelu_match(layer: Any) -> Any:
    if type(layer).__name__ != "PReLU":
        return None
    alpha = np.asarray(layer.get_weights()[0], np.float32)
    return {"alpha": alpha}


def _prelu(x: Any, p: dict[str, np.ndarray], ops: Any) -> Any:
    """prelu(x) = x + (alpha - 1) * min(x, 0): the second term is relu(x * c) where c = alpha - 1 <= 0 and
    -relu(-x * c) where c > 0, each one MUL with a fused RELU; no NEG, no standalone RELU."""
    c = p["alpha"] - 1.0
    y = x
    if (neg := np.minimum(c, 0.0)).any():
        y = ops.add(y, ops.relu(ops.multiply(x, neg[None])))
    if (pos := np.maximum(c, 0.0)).any():
        y = ops.subtract(y, ops.relu(ops.multiply(x, -pos[None])))
    return y


REWRITES.register("prelu")(Rewrite("prelu", "PRELU", "x + relu((alpha - 1) * x) per channel (alpha <= 1; "
                                   "x - relu((1 - alpha) * x) where alpha > 1)", _prelu_match, _prelu))


def _capped_match(layer: Any) -> Any:
    """A ``ReLU(max_value=m)`` other than ReLU6, with or without a negative slope: MINIMUM + RELU in int8. A
    threshold makes it discontinuous: no sum of ADD/MUL/RELU computes it (:data:`NO_FORM`)."""
    if type(layer).__name__ != "ReLU" or getattr(layer, "max_value", None) is None:
        return None
    m, s = float(layer.max_value), float(getattr(layer, "negative_slope", 0.0) or 0.0)
    if float(getattr(layer, "threshold", 0.0) or 0.0) != 0.0 or (m == 6.0 and s == 0.0):
        return None
    return {"max": m, "slope": s}


def _capped(x: Any, p: dict[str, float], ops: Any) -> Any:
    m, s = p["max"], p["slope"]
    if s == 0.0:  # clip(x, 0, m) = relu6(x * 6/m) * m/6: a MUL with a fused RELU6 (folded into the conv before)
        return ops.multiply(ops.relu6(ops.multiply(x, 6.0 / m)), m / 6.0)
    # min(leaky(x), m) = m - relu(m - leaky(x)): LEAKY_RELU, then SUBs with a fused RELU
    return ops.subtract(m, ops.relu(ops.subtract(m, ops.leaky_relu(x, negative_slope=s))))


REWRITES.register("capped_relu")(Rewrite("capped_relu", "MINIMUM, RELU", "relu6(x * 6/m) * m/6, or "
                                         "m - relu(m - leaky_relu(x)) with a negative slope", _capped_match,
                                         _capped))

def _named(*names: str) -> Callable[[Any], Any]:
    return lambda layer: _activation(layer) in names or None


def _sparse_sigmoid(x: Any, _: Any, ops: Any) -> Any:
    """sparse_sigmoid(x) = clip((x + 1) / 2, 0, 1) = relu6(3x + 3) / 6: no comparison, no select."""
    return ops.multiply(ops.relu6(ops.add(ops.multiply(x, 3.0), 3.0)), 1.0 / 6.0)


def _sparse_plus(x: Any, _: Any, ops: Any) -> Any:
    """sparse_plus(x) = u * u / 4 + relu(x - 1) with u = clip(x + 1, 0, 2) = relu6(3x + 3) / 3: 0 below -1,
    (x + 1)^2 / 4 between, x above 1, in MUL and ADD with fused RELU/RELU6."""
    u = ops.multiply(ops.relu6(ops.add(ops.multiply(x, 3.0), 3.0)), 1.0 / 3.0)
    return ops.add(ops.multiply(ops.multiply(u, u), 0.25), ops.relu(ops.subtract(x, 1.0)))


def _soft_shrink(x: Any, _: Any, ops: Any) -> Any:
    """soft_shrink(x) = relu(x - 0.5) - relu(-x - 0.5) (Keras' threshold 0.5 for the named activation)."""
    return ops.subtract(ops.relu(ops.subtract(x, 0.5)), ops.relu(ops.subtract(ops.multiply(x, -1.0), 0.5)))


for _name, _op, _form, _fn in (
        ("sparse_sigmoid", "GREATER_EQUAL, LESS_EQUAL, SELECT_V2", "relu6(3x + 3) / 6", _sparse_sigmoid),
        ("sparse_plus", "LESS, LESS_EQUAL, SELECT, SELECT_V2", "u * u / 4 + relu(x - 1), u = relu6(3x + 3) / 3",
         _sparse_plus),
        ("soft_shrink", "GREATER, LESS, SELECT, SELECT_V2", "relu(x - 0.5) - relu(-x - 0.5)", _soft_shrink)):
    REWRITES.register(_name)(Rewrite(_name, _op, _form, _named(_name), _fn))

#: Keras' activations whose int8 ops XNNPACK does not take and for which no exact form in its int8 ops exists
#: (measured by converting each: ``tests/test_xnnpack_rewrite.py``); the op profile says what each costs
NO_FORM: dict[str, NoForm] = {n.name: n for n in (
    NoForm("gelu", "GELU", "erf has no form in ADD/MUL/RELU/LOGISTIC/TANH"),
    NoForm("mish", "EXP, LOG", "softplus needs exp and log"),
    NoForm("softplus", "EXP, LOG", "needs exp and log"),
    NoForm("celu", "EXP, MINIMUM, RELU", "needs exp"),
    NoForm("selu", "EXP, GREATER, SELECT", "needs exp"),
    NoForm("exponential", "EXP", "needs exp"),
    NoForm("log_sigmoid", "EXP, LOG", "needs exp and log"),
    NoForm("softsign", "ABS, DIV", "needs a division by a tensor"),
    NoForm("squareplus", "SQRT", "needs a square root"),
    NoForm("hard_shrink", "ABS, GREATER, SELECT_V2", "discontinuous"),
    NoForm("relu_threshold", "GREATER, SELECT_V2, MINIMUM, RELU", "a ReLU threshold makes it discontinuous"),
    NoForm("softmax", "SOFTMAX", "needs exp and a division by a tensor"),
    NoForm("log_softmax", "LOG_SOFTMAX", "needs exp and log"),
    NoForm("sparsemax", "TOPK_V2, CUMSUM, DIV, GREATER, SELECT_V2, CAST", "needs a sort and a division"),
)}

#: activations that, making a model output, are the classifier's or the head's own (not listed by ``find``)
OUTPUT_ACTIVATIONS = ("softmax", "log_softmax")


@dataclass
class Hit:
    """One layer whose int8 op falls outside XNNPACK: the rewrite that serves it, or why none does."""

    layer: str
    activation: str
    op: str
    rewrite: str | None = None  # the REWRITES entry, when one serves it
    form: str | None = None
    why: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def _no_form(layer: Any) -> NoForm | None:
    if type(layer).__name__ == "ReLU" and float(getattr(layer, "threshold", 0.0) or 0.0) != 0.0:
        return NO_FORM["relu_threshold"]
    return NO_FORM.get(_activation(layer) or "")


def _match(layer: Any) -> tuple[Rewrite, Any] | None:
    for rw in REWRITES.values():
        if (params := rw.match(layer)) is not None:
            return rw, params
    return None


def _layers(model: Any, seen: set[int] | None = None) -> list[Any]:
    """Every layer once, nested models' layers included (a backbone inside a detector; a subclassed model's
    tracked sublayers, such as a PyPI package's network class wrapped in a functional model). A layer tracked in
    two places (an attribute and a block, or reused across blocks) is listed once."""
    seen = set() if seen is None else seen
    out = []
    for layer in model.layers:
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        nested = isinstance(getattr(layer, "layers", None), list) and layer.layers
        out += _layers(layer, seen) if nested else [layer]
    return out


def _graph(model: Any) -> bool:
    """Whether ``model`` is a graph of layers (functional or Sequential) that can be cloned call by call."""
    try:
        return bool(model.outputs)
    except (AttributeError, ValueError):
        return False


def _output_layers(model: Any) -> set[int]:
    """The ids of the layers that make ``model``'s outputs (none for a model without a graph of layers)."""
    try:
        outputs = model.outputs or []
    except (AttributeError, ValueError):
        return set()
    return {id(t._keras_history[0]) for t in outputs if hasattr(t, "_keras_history")}


def find(model: Any) -> list[Hit]:
    """The layers of ``model`` whose activation falls outside XNNPACK in int8, with what serves each (no build:
    read from the layers, what ``mobilekit inspect`` lists). A softmax that makes a model output is left out: a
    classifier's is cut from the graph (post-processing applies it), a detector's is its score activation, and the
    build's measured op profile names whatever stays."""
    hits = []
    ends = _output_layers(model)
    for layer in _layers(model):
        if found := _match(layer):
            rw, _ = found
            hits.append(Hit(layer.name, rw.name, rw.op, rw.name, rw.form))
        elif (nf := _no_form(layer)) and not (nf.name in OUTPUT_ACTIVATIONS and id(layer) in ends):
            hits.append(Hit(layer.name, nf.name, nf.op, why=f"no exact form in XNNPACK's int8 ops: {nf.why}"))
    return hits


@dataclass
class Rewritten:
    """The int8 graph's model and what was rewritten: per layer, the rewritten output tensor (in ``model``'s
    graph) to hold against the original layer's output."""

    model: Any | None
    hits: list[Hit] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)  # layer name -> rewritten output tensor (None: inside
    # a subclassed model's Python call, where the whole model's output is what can be held to the original)
    skipped: str | None = None


def _twin_linear(layer: Any) -> Any:
    """The same layer without its built-in activation, sharing nothing but copied weights (as activation_cut)."""
    twin = type(layer).from_config({**layer.get_config(), "activation": "linear", "name": f"{layer.name}_linear"})
    return twin


#: the Keras layer classes the rewrite makes, defined on first use (Keras is imported only when a rewrite runs)
_CLASSES: dict[str, Any] = {}


def _form_layer() -> Any:
    """One Keras layer per rewritten activation, named after it: the form's ops inside it get no names of their
    own, which could clash with a loaded model's (``multiply_1``)."""
    if "form" not in _CLASSES:
        import keras

        class XnnpackForm(keras.layers.Layer):
            def __init__(self, rewrite: Rewrite, params: Any, **kwargs: Any) -> None:
                super().__init__(**kwargs)
                self.rewrite, self.params = rewrite, params

            def call(self, x: Any) -> Any:
                return self.rewrite.apply(x, self.params, keras.ops)

        _CLASSES["form"] = XnnpackForm
    return _CLASSES["form"]


def _form_fn(rw: Rewrite, params: Any, ops: Any) -> Callable:
    return lambda x, *args, **kwargs: rw.apply(x, params, ops)


#: an attribute the layer did not hold as its own before a swap (``call`` comes from its class)
_ABSENT = object()


def _patched_layer() -> Any:
    """A layer that runs a subclassed model (whose ``call`` is Python, not a graph to clone) with each rewritten
    activation inside it swapped for its form for the duration of the call: the activation layer's ``call``, or
    the ``activation`` built into a layer. The sublayers, and so the weights, stay the user's."""
    if "patched" not in _CLASSES:
        import keras

        class XnnpackPatched(keras.layers.Layer):
            def __init__(self, inner: Any, swaps: list[tuple[Any, str, Any]], **kwargs: Any) -> None:
                super().__init__(**kwargs)
                self.inner = inner
                object.__setattr__(self, "swaps", swaps)  # untracked: the swapped layers stay the network's

            def call(self, *args: Any, **kwargs: Any) -> Any:
                saved = [(layer, attr, layer.__dict__.get(attr, _ABSENT)) for layer, attr, _ in self.swaps]
                try:
                    for layer, attr, fn in self.swaps:
                        object.__setattr__(layer, attr, fn)
                    return self.inner(*args, **kwargs)
                finally:
                    for layer, attr, old in saved:
                        if old is _ABSENT:
                            layer.__dict__.pop(attr, None)
                        else:
                            object.__setattr__(layer, attr, old)

        _CLASSES["patched"] = XnnpackPatched
    return _CLASSES["patched"]


@dataclass
class _Run:
    """One rewrite: the layers to rewrite, what became of each, and each replacement made once (a network, a
    shared activation or a convolution called on several inputs reuses it: Keras names must stay unique)."""

    rewrites: dict[int, tuple[Rewrite, Any]]
    ops: Any
    done: dict[str, Any] = field(default_factory=dict)  # layer name -> rewritten output (None: inside a call)
    kept: dict[str, str] = field(default_factory=dict)  # layer name -> why it was not rewritten
    made: dict[tuple[str, int], Any] = field(default_factory=dict)

    def once(self, kind: str, op: Any, make: Callable[[], Any]) -> Any:
        if (kind, id(op)) not in self.made:
            self.made[(kind, id(op))] = make()
        return self.made[(kind, id(op))]


def _builtin(layer: Any) -> bool:
    """The activation is built into the layer (a Conv's or Dense's ``activation``), not the layer itself."""
    return type(layer).__name__ not in ("Activation", "PReLU", "ReLU")


def _patched(op: Any, run: _Run) -> Any:
    swaps = []
    for layer in _layers(op):
        if (found := run.rewrites.get(id(layer))) is None:
            continue
        if _builtin(layer) and "activation" not in layer.__dict__:
            run.kept[layer.name] = "its activation is not an attribute of the layer that a swap can replace"
            continue
        swaps.append((layer, "activation" if _builtin(layer) else "call", _form_fn(*found, run.ops)))
        run.done[layer.name] = None  # inside a Python call: no tensor of its own in the rewritten graph
    # named as the model it runs: it takes its place in the graph, and an output keeps the name the contract binds
    return _patched_layer()(op, swaps, name=op.name)


def _call(run: _Run) -> Callable:
    def call(op: Any, *args: Any, **kwargs: Any) -> Any:
        found = run.rewrites.get(id(op))
        if found is None:
            if isinstance(getattr(op, "layers", None), list) and any(id(x) in run.rewrites for x in _layers(op)):
                inner = run.once("model", op, lambda: _clone(op, run) if _graph(op) else _patched(op, run))
                return inner(*args, **kwargs)
            return op(*args, **kwargs)
        rw, params = found
        x = args[0]
        if _builtin(op):  # the same layer without its activation, then the form
            first = ("twin", id(op)) not in run.made
            twin = run.once("twin", op, lambda: _twin_linear(op))
            x = twin(x)
            if first:
                twin.set_weights(op.get_weights())
        y = run.once("form", op, lambda: _form_layer()(rw, params, name=f"{op.name}_xnnpack"))(x)
        run.done[op.name] = y
        return y

    return call


def _clone(model: Any, run: _Run) -> Any:
    import keras

    if not hasattr(model, "_run_through_graph") or type(model).__name__ == "Sequential":
        model = keras.Model(model.inputs, model.outputs, name=model.name)
    return keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=_call(run))


def rewrite(model: Any, keras_module: Any) -> Rewritten:
    """``model`` with every activation that has a :class:`Rewrite` replaced by its form (layers shared), or
    ``Rewritten(None, ...)`` with why not. A layer that is a model output keeps its activation (the output's
    name is what the contract binds)."""
    hits = find(model)
    if keras_module.__name__ != "keras" or not _graph(model):
        return Rewritten(None, hits, skipped="the rewrite clones Keras 3 graphs of layers; this model is kept")
    outputs = _output_layers(model)
    rewrites = {id(layer): found for layer in _layers(model)
                if (found := _match(layer)) is not None and id(layer) not in outputs}
    if not rewrites:
        return Rewritten(None, hits)
    import keras

    run = _Run(rewrites, keras.ops)
    new = _clone(model, run)
    for h in hits:
        if h.rewrite and h.layer not in run.done:
            h.rewrite, h.form, h.why = None, None, run.kept.get(h.layer, "a model output keeps its activation")
    if not run.done:
        return Rewritten(None, hits)
    return Rewritten(new, hits, run.done)


def summary(hits: list[Hit]) -> str:
    """``hard_swish x19 (HARD_SWISH -> (x / 6) * relu6(x + 3))``: what a rewrite did, by activation."""
    by: dict[str, list[Hit]] = {}
    for h in hits:
        if h.rewrite:
            by.setdefault(h.rewrite, []).append(h)
    return ", ".join(f"{name} x{len(v)} ({v[0].op} -> {v[0].form})" for name, v in by.items())
