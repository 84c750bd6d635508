"""Each emulated MIL op against an independent reference.

Single-op ML Programs are built with coremltools' MIL builder, saved as real ``.mlpackage`` files (fp32 compute, so
the comparison isolates the op's semantics), read back by the emulator and compared with numpy written here from
the MIL spec. Compressed-weight ops are compared with coremltools' own decompression routines.
"""

from __future__ import annotations

import numpy as np
import pytest

from mobilekit.emulate.coreml import OPS, CoreMLEmulator, EmulatorError

RNG = np.random.default_rng(0)


def run_program(tmp_path, build, inputs: dict[str, np.ndarray], target: str = "iOS16"):
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb

    specs = [mb.TensorSpec(shape=v.shape) for v in inputs.values()]
    prog = mb.program(input_specs=specs, opset_version=getattr(ct.target, target))(build)
    model = ct.convert(prog, convert_to="mlprogram", compute_precision=ct.precision.FLOAT32,
                       minimum_deployment_target=getattr(ct.target, target))
    path = tmp_path / "op.mlpackage"
    model.save(str(path))
    em = CoreMLEmulator(path)
    names = list(em.function.inputs)
    feeds = dict(zip(names, inputs.values(), strict=True))
    out = em.run(feeds, eager=True)  # the reference path, op by op
    if em._graph is not None:  # the traced fast path must agree with it
        fast = em.run(feeds)
        for n in em.outputs:
            assert np.allclose(fast[n], out[n], rtol=1e-5, atol=1e-6), n
    return [out[n] for n in em.outputs]


def conv_ref(x, w, b, stride, pads, dil, groups):
    """Direct convolution, NCHW, loops over output positions (small sizes only)."""
    n = x.shape[0]
    co, ci_g, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), pads[0], pads[1]))
    oh = (xp.shape[2] - ((kh - 1) * dil + 1)) // stride + 1
    ow = (xp.shape[3] - ((kw - 1) * dil + 1)) // stride + 1
    out = np.zeros((n, co, oh, ow), np.float64)
    per = co // groups
    for o in range(co):
        g = o // per
        for i in range(oh):
            for j in range(ow):
                patch = xp[:, g * ci_g:(g + 1) * ci_g, i * stride:i * stride + (kh - 1) * dil + 1:dil,
                           j * stride:j * stride + (kw - 1) * dil + 1:dil]
                out[:, o, i, j] = (patch * w[o]).sum(axis=(1, 2, 3))
    return out + (0 if b is None else b.reshape(1, -1, 1, 1))


@pytest.mark.parametrize(("groups", "stride", "pad_type", "dil"), [
    (1, 1, "valid", 1), (1, 2, "same", 1), (4, 1, "same", 1), (2, 1, "custom", 2), (4, 2, "same_lower", 1)])
def test_conv(tmp_path, groups, stride, pad_type, dil):
    from coremltools.converters.mil import Builder as mb

    x = RNG.standard_normal((1, 4, 9, 8)).astype(np.float32)
    w = RNG.standard_normal((8 if groups != 4 else 4, 4 // groups, 3, 3)).astype(np.float32)
    b = RNG.standard_normal(w.shape[0]).astype(np.float32)
    pad = [1, 0, 2, 1]

    def build(x_):
        kw = {"pad": pad} if pad_type == "custom" else {}
        return mb.conv(x=x_, weight=w, bias=b, strides=[stride, stride], pad_type=pad_type, dilations=[dil, dil],
                       groups=groups, **kw)

    (got,) = run_program(tmp_path, build, {"x": x})
    k = (3 - 1) * dil + 1
    if pad_type == "valid":
        pads = [(0, 0), (0, 0)]
    elif pad_type == "custom":
        pads = [(1, 0), (2, 1)]
    else:
        pads = []
        for size in (9, 8):
            total = max((-(-size // stride) - 1) * stride + k - size, 0)
            before = total // 2 if pad_type == "same" else (total + 1) // 2
            pads.append((before, total - before))
    ref = conv_ref(x.astype(np.float64), w, b, stride, pads, dil, groups)
    assert got.shape == ref.shape and np.allclose(got, ref, atol=1e-4)


UNARY = {
    "relu": (lambda mb, x: mb.relu(x=x), lambda x: np.maximum(x, 0)),
    "relu6": (lambda mb, x: mb.relu6(x=x), lambda x: np.clip(x, 0, 6)),
    "sigmoid": (lambda mb, x: mb.sigmoid(x=x), lambda x: 1 / (1 + np.exp(-x))),
    "silu": (lambda mb, x: mb.silu(x=x), lambda x: x / (1 + np.exp(-x))),
    "tanh": (lambda mb, x: mb.tanh(x=x), np.tanh),
    "sigmoid_hard": (lambda mb, x: mb.sigmoid_hard(x=x, alpha=0.2, beta=0.5), lambda x: np.clip(0.2 * x + 0.5, 0, 1)),
    "clip": (lambda mb, x: mb.clip(x=x, alpha=-0.5, beta=0.7), lambda x: np.clip(x, -0.5, 0.7)),
    "leaky_relu": (lambda mb, x: mb.leaky_relu(x=x, alpha=0.1), lambda x: np.where(x > 0, x, 0.1 * x)),
    "exp": (lambda mb, x: mb.exp(x=x), np.exp),
    "softmax": (lambda mb, x: mb.softmax(x=x, axis=1),
                lambda x: np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)),
    "reduce_mean": (lambda mb, x: mb.reduce_mean(x=x, axes=[2, 3], keep_dims=True),
                    lambda x: x.mean((2, 3), keepdims=True)),
    "reduce_sum": (lambda mb, x: mb.reduce_sum(x=x, axes=[1], keep_dims=False), lambda x: x.sum(1)),
    "reduce_max": (lambda mb, x: mb.reduce_max(x=x, axes=[-1], keep_dims=False), lambda x: x.max(-1)),
    "transpose": (lambda mb, x: mb.transpose(x=x, perm=[0, 2, 3, 1]), lambda x: x.transpose(0, 2, 3, 1)),
    "reshape": (lambda mb, x: mb.reshape(x=x, shape=[1, 4, 30]), lambda x: x.reshape(1, 4, 30)),
    "pad": (lambda mb, x: mb.pad(x=x, pad=[0, 0, 0, 0, 1, 2, 3, 0], mode="constant", constant_val=0.5),
            lambda x: np.pad(x, ((0, 0), (0, 0), (1, 2), (3, 0)), constant_values=0.5)),
    "pad_reflect": (lambda mb, x: mb.pad(x=x, pad=[1, 1, 2, 1], mode="reflect"),
                    lambda x: np.pad(x, ((0, 0), (0, 0), (1, 1), (2, 1)), mode="reflect")),
    "slice_by_index": (lambda mb, x: mb.slice_by_index(x=x, begin=[0, 1, 0, 1], end=[1, 3, 5, 6], stride=[1, 1, 2, 2]),
                       lambda x: x[0:1, 1:3, 0:5:2, 1:6:2]),
    "slice_by_size": (lambda mb, x: mb.slice_by_size(x=x, begin=[0, 1, 1, 0], size=[1, 2, -1, 3]),
                      lambda x: x[0:1, 1:3, 1:, 0:3]),
    "avg_pool": (lambda mb, x: mb.avg_pool(x=x, kernel_sizes=[2, 2], strides=[2, 2], pad_type="valid"),
                 lambda x: x.reshape(1, 4, 2, 2, 3, 2).mean((3, 5))),
    "max_pool": (lambda mb, x: mb.max_pool(x=x, kernel_sizes=[2, 2], strides=[2, 2], pad_type="valid"),
                 lambda x: x.reshape(1, 4, 2, 2, 3, 2).max((3, 5))),
    "squeeze": (lambda mb, x: mb.squeeze(x=x, axes=[0]), lambda x: x[0]),
    "expand_dims": (lambda mb, x: mb.expand_dims(x=x, axes=[1]), lambda x: x[:, None]),
    "split": (lambda mb, x: mb.split(x=x, split_sizes=[1, 3], axis=1), lambda x: (x[:, :1], x[:, 1:])),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_single_input_ops(tmp_path, name):
    from coremltools.converters.mil import Builder as mb

    build, ref = UNARY[name]
    x = RNG.standard_normal((1, 4, 5, 6)).astype(np.float32) * 3
    if name.startswith("avg") or name.startswith("max"):
        x = RNG.standard_normal((1, 4, 4, 6)).astype(np.float32)
    got = run_program(tmp_path, lambda x_: build(mb, x_), {"x": x})
    want = ref(x.astype(np.float64))
    want = want if isinstance(want, tuple) else (want,)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape and np.allclose(g, w, rtol=1e-5, atol=1e-5), name


BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "real_div": np.divide, "maximum": np.maximum,
    "minimum": np.minimum,
}


@pytest.mark.parametrize("name", sorted(BINARY))
def test_broadcasting_binary_ops(tmp_path, name):
    from coremltools.converters.mil import Builder as mb

    x = RNG.standard_normal((1, 3, 4, 5)).astype(np.float32)
    y = RNG.uniform(0.5, 2, (1, 3, 1, 5)).astype(np.float32)
    (got,) = run_program(tmp_path, lambda a, b: getattr(mb, name)(x=a, y=b), {"x": x, "y": y})
    assert np.allclose(got, BINARY[name](x, y), rtol=1e-6)


def test_concat_matmul_linear(tmp_path):
    from coremltools.converters.mil import Builder as mb

    a = RNG.standard_normal((2, 3)).astype(np.float32)
    b = RNG.standard_normal((2, 4)).astype(np.float32)
    w = RNG.standard_normal((5, 7)).astype(np.float32)
    bias = RNG.standard_normal(5).astype(np.float32)
    m = RNG.standard_normal((7, 6)).astype(np.float32)

    def build(x, y):
        c = mb.concat(values=[x, y], axis=1)
        return mb.linear(x=c, weight=w, bias=bias), mb.matmul(x=c, y=m, transpose_y=False)

    lin, mm = run_program(tmp_path, build, {"x": a, "y": b})
    c = np.concatenate([a, b], 1)
    assert np.allclose(lin, c @ w.T + bias, atol=1e-5) and np.allclose(mm, c @ m, atol=1e-5)


def test_stack_and_select(tmp_path):
    from coremltools.converters.mil import Builder as mb

    a = RNG.standard_normal((3, 4)).astype(np.float32)
    b = RNG.standard_normal((3, 4)).astype(np.float32)

    def build(x, y):
        return mb.stack(values=[x, y], axis=1), mb.select(cond=mb.greater(x=x, y=y), a=x, b=y)

    st, sel = run_program(tmp_path, build, {"x": a, "y": b})
    assert np.array_equal(st, np.stack([a, b], 1)) and np.array_equal(sel, np.maximum(a, b))


def test_fp16_rounding_and_overflow_watch(tmp_path):
    """An fp16 program rounds every op result to fp16 and the watch names the op that overflows."""
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 4))], opset_version=ct.target.iOS16)
    def prog(x):
        big = mb.mul(x=x, y=np.float32(3e4), name="too_big")
        return mb.mul(x=big, y=np.float32(1e-4), name="back_down")

    model = ct.convert(prog, convert_to="mlprogram", compute_precision=ct.precision.FLOAT16,
                       minimum_deployment_target=ct.target.iOS16)
    model.save(str(tmp_path / "m.mlpackage"))
    em = CoreMLEmulator(tmp_path / "m.mlpackage")
    events: list = []
    out = em.run({next(iter(em.function.inputs)): np.array([[1.0, 2.0, 3.0, 0.001]], np.float32)}, events)
    y = next(iter(out.values()))
    assert np.isinf(y[0, 2]) and abs(float(y[0, 0]) - 3.0) < 0.01  # 9e4 overflowed fp16, 3e4 did not
    assert any(e.op.startswith("too_big") and e.overflow == 1 for e in events)  # 9e4 only; 6e4 fits fp16


def test_unknown_op_is_a_clear_error(tmp_path):
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 4))], opset_version=ct.target.iOS16)
    def prog(x):
        return mb.erf(x=x, name="mystery")

    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16)
    model.save(str(tmp_path / "m.mlpackage"))
    assert "erf" not in OPS
    with pytest.raises(EmulatorError, match=r"'erf'.*mystery"):
        CoreMLEmulator(tmp_path / "m.mlpackage")


# ---- compressed weights, against coremltools' own decompression -------------------------------------------------

def test_ios16_lut_to_dense_packed_indices():
    from coremltools.converters.mil.mil.ops.defs.iOS16.constexpr_ops import constexpr_lut_to_dense as ref
    from coremltools.optimize import _utils

    for nbits in (1, 2, 4, 6, 8):
        shape = (3, 5, 7)
        lut = RNG.standard_normal(2**nbits).astype(np.float16)
        idx = RNG.integers(0, 2**nbits, int(np.prod(shape))).astype(np.uint8)
        packed = _utils.pack_elements_into_bits(idx, nbits)
        got = OPS["constexpr_lut_to_dense"]({"lut": lut, "indices": packed, "shape": np.array(shape, np.uint32)})
        assert np.array_equal(got, ref.decompress(lut, packed, np.array(shape)))


@pytest.mark.parametrize(("lut_groups", "vsize", "axis"), [((1, 1, 1), 1, None), ((4, 1, 1), 1, None),
                                                             ((2, 1, 1), 2, 1), ((1, 1, 1), 3, 2)])
def test_ios18_lut_to_dense_grouped_and_vector(lut_groups, vsize, axis):
    from coremltools.converters.mil.mil.ops.defs.iOS18.compression import constexpr_lut_to_dense as ref

    idx = RNG.integers(0, 4, (8, 3, 4)).astype(np.uint8)
    lut = RNG.standard_normal((*lut_groups, 4, vsize)).astype(np.float16)
    args = {"indices": idx, "lut": lut, "vector_axis": None if axis is None else np.int32(axis)}
    got = OPS["constexpr_lut_to_dense"](args)
    assert np.array_equal(got, ref.decompress(idx, lut, None if axis is None else np.int32(axis)))


def test_blockwise_affine_and_sparse():
    from coremltools.converters.mil.mil.ops.defs.iOS16.constexpr_ops import constexpr_affine_dequantize as aff
    from coremltools.converters.mil.mil.ops.defs.iOS16.constexpr_ops import constexpr_sparse_to_dense as sp16
    from coremltools.converters.mil.mil.ops.defs.iOS18 import compression as c18

    data = RNG.integers(-8, 8, (8, 6)).astype(np.int8)
    scale = RNG.uniform(0.01, 0.1, (4, 3)).astype(np.float16)
    offset = RNG.integers(-2, 2, (4, 3)).astype(np.int8)
    got = OPS["constexpr_blockwise_shift_scale"]({"data": data, "scale": scale, "offset": offset})
    assert np.allclose(got, c18.constexpr_blockwise_shift_scale.decompress(data, scale, offset), atol=1e-3)

    q = RNG.integers(0, 255, (5, 4)).astype(np.uint8)
    zp = RNG.integers(100, 150, 5).astype(np.uint8)
    sc = RNG.uniform(0.01, 0.1, 5).astype(np.float32)
    got = OPS["constexpr_affine_dequantize"]({"quantized_data": q, "zero_point": zp, "scale": sc, "axis": np.int32(0)})
    assert np.allclose(got, aff.decompress(q, zp, sc, 0), atol=1e-6)

    mask_bits = RNG.integers(0, 2, 40).astype(np.uint8)
    nz = RNG.standard_normal(int(mask_bits.sum())).astype(np.float16)
    packed = np.packbits(mask_bits, bitorder="little")
    got = OPS["constexpr_sparse_to_dense"]({"nonzero_data": nz, "mask": packed, "shape": np.array([5, 8], np.uint32)})
    assert np.array_equal(got, sp16.decompress(nz, packed, np.array([5, 8])))

    mask = mask_bits.reshape(5, 8)
    got = OPS["constexpr_sparse_to_dense"]({"nonzero_data": nz, "mask": mask})
    assert np.array_equal(got, c18.constexpr_sparse_to_dense.decompress(nz, mask))

    nz_idx = RNG.integers(0, 4, int(mask.sum())).astype(np.uint8)
    lut = RNG.standard_normal((1, 1, 4, 1)).astype(np.float16)
    got_mask, got_nz = OPS["constexpr_lut_to_sparse"]({"indices_mask": mask, "indices_nonzero_data": nz_idx,
                                                        "lut": lut, "vector_axis": None})
    ref_mask, ref_nz = c18.constexpr_lut_to_sparse.decompress(mask, nz_idx, lut, None)
    assert np.array_equal(got_mask, ref_mask) and np.array_equal(got_nz, ref_nz)

    nz_q = RNG.integers(-8, 8, int(mask.sum())).astype(np.int8)
    s2 = RNG.uniform(0.01, 0.1, (5, 1)).astype(np.float16)
    got_mask, got_nz = OPS["constexpr_sparse_blockwise_shift_scale"]({"data_mask": mask, "nonzero_data": nz_q,
                                                                      "scale": s2, "offset": None})
    ref_mask, ref_nz = c18.constexpr_sparse_blockwise_shift_scale.decompress(mask, nz_q, s2, None)
    assert np.array_equal(got_mask, ref_mask) and np.allclose(got_nz, ref_nz, atol=1e-3)


def test_round_fp16_is_ieee_half_rounding():
    from mobilekit.emulate.coreml.runtime import round_fp16

    x = np.concatenate([RNG.standard_normal(50_000).astype(np.float32) * s for s in (1e-7, 1e-5, 1, 100, 3e4, 1e5)])
    x = np.concatenate([x, np.array([65504, 65519.9, 65520, -65520, 2**-24, 2**-25, 3 * 2**-26, np.inf, -np.inf, 0],
                                    np.float32)])
    with np.errstate(over="ignore"):
        ref = x.astype(np.float16).astype(np.float32)
    assert np.array_equal(round_fp16(x), ref)
