"""Join a detector's per-level outputs (e.g. three ``[1, H, W, A * (5 + C)]`` maps, or a box map and a class map
per level) into the flat ``[1, N, K]`` outputs every head decodes.

Many exports stop before the head's own reshape and concatenation: torchvision- and keras-hub-style RetinaNets
return a box and a class map per level, YOLOv5/YOLOX/YOLOv8 exports one map per level. The head knows each level's
grid and anchors per cell (``levels``), so each output is matched to its level by its spatial size; each map is
reshaped to ``[1, H * W * A, K / A]`` (cell by cell, the anchors of a cell together: the order a ``[H, W, A * K]``
map flattens to) and the levels are concatenated per role, in stride order, inside the Keras graph. The result is
one output (``[box | scores]``, split by role before int8 like any concatenated head) or two (boxes, scores).
Maps in ``[1, K, H, W]`` layout (PyTorch ports) are transposed first.
"""

from __future__ import annotations

from typing import Any

from mobilekit.errors import ModelError


def _assign(shapes: dict[str, list[int]], grids: list[tuple[int, int, int]], channels_first: bool
            ) -> dict[int, list[str]] | None:
    """Outputs by level (in output order) when every output is a map of one level in this layout, else None. Levels
    of the same grid size are filled in output order, the same number of maps each."""
    per = len(shapes) // len(grids) if len(shapes) % len(grids) == 0 else 0
    found: dict[int, list[str]] = {k: [] for k in range(len(grids))}
    for name, shape in shapes.items():
        hw = list(shape[2:4] if channels_first else shape[1:3]) if len(shape) == 4 else None
        level = next((k for k, (gh, gw, _) in enumerate(grids) if hw == [gh, gw] and len(found[k]) < per), None)
        if level is None:
            return None
        found[level].append(name)
    return found


def _pair_tied(by_level: dict[int, list[str]], shapes: dict[str, list[int]], grids: list[tuple[int, int, int]],
               box: int, channels_first: bool) -> dict[int, list[str]]:
    """Levels of one grid size that each hold a box map and a class map: filled in output order, a model that
    lists its box maps first would give one level both box maps; pair the k-th box map with the k-th class map."""
    for size in {g[:2] for g in grids}:
        tied = [k for k, g in enumerate(grids) if g[:2] == size]
        if len(tied) < 2:
            continue
        maps = [n for k in tied for n in by_level[k]]
        boxes = [n for n in maps if shapes[n][1 if channels_first else 3] == grids[tied[0]][2] * box]
        classes = [n for n in maps if n not in boxes]
        if len(boxes) == len(classes) == len(tied):
            by_level.update({k: [b, c] for k, b, c in zip(tied, boxes, classes, strict=True)})
    return by_level


def join_levels(model: Any, keras_mod: Any, shapes: dict[str, list[int]], grids: list[tuple[int, int, int]],
                box: int) -> tuple[Any, dict[str, Any]]:
    """``(new model, info)`` with the levels joined; ``grids`` is per level (rows, columns, anchors per cell) in
    stride order, ``box`` the channels of one candidate's box (4, or 4 x reg_max)."""
    names = list(shapes)
    # one layout for every map (a [1, 80, 80, 80] map reads either way): channels-last unless only -first fits
    channels_first = False
    by_level = _assign(shapes, grids, False)
    if by_level is None:
        channels_first, by_level = True, _assign(shapes, grids, True)
    if by_level is None or len(by_level[0]) > 2:
        raise ModelError(f"per-level outputs {shapes} are not one map, or one box map and one class map, for each "
                         f"level of the strides (grids {[g[:2] for g in grids]})",
                         fix="list detection.params.strides in the order of the model's levels, or export the "
                             "detector with its levels concatenated")
    if len(by_level[0]) == 2:
        by_level = _pair_tied(by_level, shapes, grids, box, channels_first)
    found = {k: [(n, channels_first) for n in v] for k, v in by_level.items()}
    inputs = dict(zip(names, model.outputs, strict=True))
    per_role: list[list[Any]] = [[] for _ in found[0]]
    for k, (gh, gw, a) in enumerate(grids):
        outs = found[k]
        if len(outs) == 2:  # the box map holds A x box channels
            chans = [shapes[n][1 if cf else 3] for n, cf in outs]
            if chans[0] != a * box and chans[1] == a * box:
                outs = outs[::-1]
        for r, (name, channels_first) in enumerate(outs):
            t = inputs[name]
            if channels_first:
                t = keras_mod.layers.Permute((2, 3, 1), name=f"{name}_nhwc")(t)
            k_total = int(t.shape[-1])
            if k_total % a:
                raise ModelError(f"output '{name}' has {k_total} channels, not a multiple of the {a} anchors per "
                                 "cell its level has", fix="match detection.params (anchors) to the model's head")
            per_role[r].append(keras_mod.layers.Reshape((gh * gw * a, k_total // a), name=f"{name}_flat")(t))
    roles = ["predictions"] if len(per_role) == 1 else ["boxes", "scores"]
    joined = [keras_mod.layers.Concatenate(axis=1, name=f"levels_{role}")(ts) for role, ts in
              zip(roles, per_role, strict=True)]
    new = keras_mod.Model(model.inputs, joined, name=f"{model.name}_levels")
    return new, {"levels": len(grids), "outputs": names,
                 "reason": f"{len(names)} per-level outputs joined into {', '.join(roles)} in the graph"}
