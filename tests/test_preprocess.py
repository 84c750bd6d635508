"""The shared preprocessing: integer resize and letterbox geometry, normalization and quantization tables."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobilekit.data.preprocess import (
    dequantize,
    letterbox,
    normalize,
    quantize,
    quantize_canvas,
    quantize_table,
    resize_bilinear,
    resize_plan,
)


def test_identity_resize_is_exact():
    img = np.random.default_rng(0).integers(0, 256, (17, 23, 3), dtype=np.uint8)
    assert np.array_equal(resize_bilinear(img, 17, 23), img)


def test_constant_image_stays_constant():
    img = np.full((13, 31, 3), 77, np.uint8)
    assert (resize_bilinear(img, 40, 9) == 77).all()


def test_downscale_by_two_averages_pixel_pairs():
    row = np.array([[0, 100, 200, 50]], np.uint8)[..., None].repeat(3, -1)
    out = resize_bilinear(row, 1, 2)
    assert out[0, :, 0].tolist() == [50, 125]  # half-pixel centres land between each pair


def test_upscale_matches_float_bilinear_within_one_level():
    img = np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    out = resize_bilinear(img, 16, 16).astype(float)
    # float reference with half-pixel centres and edge clamping
    def coords(n_src, n_dst):
        x = (np.arange(n_dst) + 0.5) * n_src / n_dst - 0.5
        x0 = np.clip(np.floor(x), 0, n_src - 1).astype(int)
        w = np.clip(x - x0, 0, 1)
        w[x < 0] = 0
        return x0, np.minimum(x0 + 1, n_src - 1), w
    y0, y1, wy = coords(8, 16)
    x0, x1, wx = coords(8, 16)
    f = img.astype(float)
    top = f[y0][:, x0] * (1 - wx)[None, :, None] + f[y0][:, x1] * wx[None, :, None]
    bot = f[y1][:, x0] * (1 - wx)[None, :, None] + f[y1][:, x1] * wx[None, :, None]
    ref = top * (1 - wy)[:, None, None] + bot * wy[:, None, None]
    assert np.abs(out - ref).max() <= 1.0


@pytest.mark.parametrize(("h", "w", "plan"), [
    (480, 640, (320, 240, 0, 40)),
    (640, 480, (240, 320, 40, 0)),
    (333, 500, (320, 213, 0, 53)),
    (320, 320, (320, 320, 0, 0)),
])
def test_letterbox_geometry(h, w, plan):
    p = resize_plan(h, w, 320, 320, "letterbox")
    assert (p.new_w, p.new_h, p.pad_x, p.pad_y) == plan


@given(st.integers(1, 900), st.integers(1, 900), st.integers(8, 400), st.integers(8, 400),
       st.sampled_from(["letterbox", "stretch"]))
def test_plan_round_trips_boxes(h, w, dh, dw, mode):
    p = resize_plan(h, w, dh, dw, mode)
    assert 1 <= p.new_w <= dw and 1 <= p.new_h <= dh and p.pad_x >= 0 and p.pad_y >= 0
    box = np.array([[0.1 * w, 0.2 * h, 0.7 * w, 0.9 * h]])
    assert np.allclose(p.to_source(p.to_input(box)), box, atol=1e-6)


def test_letterbox_pads_with_pad_value():
    img = np.zeros((10, 20, 3), np.uint8)
    canvas, plan = letterbox(img, 20, 20, "letterbox", 114)
    assert plan.pad_y == 5 and (canvas[:5] == 114).all() and (canvas[5:15] == 0).all() and (canvas[15:] == 114).all()


def test_quantize_table_equals_quantizing_normalized_values():
    canvas = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, -1)
    scale, offset = [1 / 58.4, 1 / 57.1, 1 / 57.4], [-123.7 / 58.4, -116.3 / 57.1, -103.5 / 57.4]
    x = normalize(canvas, scale, offset, "RGB", "NHWC")
    for dtype, zp in (("int8", 3), ("uint8", 131)):
        table = quantize_table(scale, offset, 0.0187, zp, dtype)
        assert np.array_equal(quantize_canvas(canvas, table, "RGB", "NHWC"), quantize(x, 0.0187, zp, dtype))


def test_bgr_and_nchw():
    canvas = np.zeros((2, 3, 3), np.uint8)
    canvas[..., 0] = 10
    x = normalize(canvas, [1, 1, 1], [0, 0, 0], "BGR", "NCHW")
    assert x.shape == (1, 3, 2, 3) and (x[0, 2] == 10).all() and (x[0, 0] == 0).all()


def test_dequantize_inverts_quantize_within_half_step():
    x = np.linspace(-3, 3, 101, dtype=np.float32)
    q = quantize(x, 0.05, -2, "int8")
    assert np.abs(dequantize(q, 0.05, -2) - x).max() <= 0.025 + 1e-6
