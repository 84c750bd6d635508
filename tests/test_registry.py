"""The one registry shape: every extensible kind of thing is filed the same way and a miss names the closest."""

from __future__ import annotations

import pytest

from mobilekit.registry import Registry


def test_register_under_several_names_and_lookup_suggests_the_closest():
    ops: Registry[object] = Registry("emulator op")

    @ops.register("relu", "relu6")
    def relu(x):
        return x

    assert ops.lookup("relu6") is relu and set(ops) == {"relu", "relu6"}
    with pytest.raises(KeyError, match="no emulator op named 'rleu'; did you mean 'relu'"):
        ops.lookup("rleu")
    with pytest.raises(ValueError, match="registered twice"):
        ops.register("relu")(lambda x: x)


def test_every_registry_of_the_package_is_one():
    from mobilekit.compress.channels import HANDLERS
    from mobilekit.compress.run import STAGES
    from mobilekit.emulate.coreml.graph import TF_OPS
    from mobilekit.emulate.coreml.registry import OPS
    from mobilekit.export.coreml_compress import RECIPES
    from mobilekit.heads import HEADS, get_head

    for reg in (HANDLERS, STAGES, TF_OPS, OPS, RECIPES, HEADS):
        assert isinstance(reg, Registry) and len(reg) > 0, reg.what
    with pytest.raises(KeyError, match="did you mean 'yolo_transposed'"):
        get_head("yolo_transpose")
