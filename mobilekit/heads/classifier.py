"""Classifier head: one scores (or logits) output ``[1, C]``."""

from __future__ import annotations

import numpy as np

from mobilekit.errors import ModelError
from mobilekit.heads.base import Candidates, Head, activate, register


class ClassifierHead(Head):
    name = "classifier"

    def bind(self, shapes: dict[str, list[int]], wanted: dict[str, str]) -> tuple[dict[str, str], int]:
        if len(shapes) != 1:
            raise ModelError(f"a classifier needs one output; the model has {len(shapes)}: {list(shapes)}",
                             fix="export the model with a single [1, C] scores output")
        name, shape = next(iter(shapes.items()))
        if len(shape) != 2 or shape[1] < 2:
            raise ModelError(f"output '{name}' has shape {shape}; a classifier returns [1, C]",
                             fix="set task: detection if this is a detector")
        return {"scores": name}, shape[1]

    def candidates(self, outputs: dict[str, np.ndarray], contract) -> Candidates:
        probs = activate(outputs["scores"][0][None], contract.head.score_activation)
        return Candidates(np.zeros((1, 4)), probs)


register(ClassifierHead())
