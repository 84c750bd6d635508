"""Read a model's inner layer outputs on real images, a few images at a time (the data-driven pruning criterion
and the feature hints' spreads both need them; whole-set activations of a 224² network would not fit in memory)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

BATCH = 8


def layer_outputs(model: Any, keras: Any, names: list[str], images: np.ndarray) -> Iterator[list[np.ndarray]]:
    """Per batch of ``images``, the outputs of the layers ``names`` (inference mode), flattened to
    ``[positions, channels]``."""
    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in names])
    for i in range(0, len(images), BATCH):
        outs = probe(images[i:i + BATCH], training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        yield [np.asarray(o).reshape(-1, o.shape[-1]) for o in outs]
