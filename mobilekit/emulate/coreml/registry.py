"""The MIL op registry: one function per op type, registered by name.

An op function takes the op's inputs as a dict of numpy values (lists for variadic inputs, ``None`` when an optional
input is absent) and returns one array or a tuple of arrays, computed in float32 (or the integer type at hand). The
runtime rounds each result to the output's declared dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mobilekit.errors import ConversionError
from mobilekit.registry import Registry

OpFn = Callable[[dict[str, Any]], "np.ndarray | tuple[np.ndarray, ...]"]
OPS: Registry[OpFn] = Registry("Core ML emulator op")


class EmulatorError(ConversionError):
    """The emulator met something it cannot execute faithfully; never answer silently wrong."""


class NHWC:
    """A 4-D value stored channels-last while MIL sees it NCHW.

    Convolutions run on channels-last kernels; keeping their results channels-last through element-wise ops (and
    converting only where an op cares about axes) saves two full transposes per convolution.
    """

    __slots__ = ("data",)

    def __init__(self, data: np.ndarray) -> None:
        self.data = data

    def nchw(self) -> np.ndarray:
        return np.ascontiguousarray(np.transpose(self.data, (0, 3, 1, 2)))


#: Element-wise ops that give the same result on channels-last data, given operands in the same layout.
LAYOUT_FREE = {"relu", "relu6", "clip", "sigmoid", "sigmoid_hard", "silu", "tanh", "leaky_relu", "elu", "exp",
               "sqrt", "rsqrt", "abs", "square", "add", "sub", "mul", "real_div", "maximum", "minimum"}


op = OPS.register


def f32(x: Any) -> np.ndarray:
    """Float inputs compute in float32 (fp16 values are exactly representable there)."""
    a = np.asarray(x)
    return a.astype(np.float32, copy=False) if a.dtype.kind == "f" else a


def axes_of(v: Any) -> tuple[int, ...] | None:
    if v is None:
        return None
    return tuple(int(i) for i in np.atleast_1d(v))
