"""Config loading: every error class names the file, the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mobilekit.config import normalization_of
from mobilekit.config_file import load_config, parse_config
from mobilekit.errors import ConfigError

BASE = {"model": "m.keras", "calibration": {"images": "imgs"}}


def load(tmp_path: Path, data) -> object:
    p = tmp_path / "mobilekit.yaml"
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return load_config(p)


def err(tmp_path: Path, data) -> str:
    with pytest.raises(ConfigError) as e:
        load(tmp_path, data)
    line = e.value.one_line()
    assert "\n" not in line and "mobilekit.yaml" in line and "Fix:" in line
    return line


def test_minimal_config_gets_defaults(tmp_path):
    cfg = load(tmp_path, BASE)
    assert cfg.task == "detection" and cfg.detection.head == "yolo" and cfg.input.resize == "letterbox"
    assert cfg.resolve("m.keras") == tmp_path / "m.keras"  # relative to the config file, not the cwd


def test_unknown_key_suggests_the_right_one(tmp_path):
    line = err(tmp_path, {**BASE, "detection": {"scor_threshold": 0.3}})
    assert "detection.scor_threshold" in line and "did you mean 'score_threshold'" in line


def test_unknown_top_level_key(tmp_path):
    assert "did you mean 'calibration'" in err(tmp_path, {**BASE, "calibraton": {"images": "x"}})


@pytest.mark.parametrize(
    ("patch", "key"),
    [
        ({"detection": {"score_threshold": "high"}}, "detection.score_threshold"),
        ({"detection": {"max_detections": 2.5}}, "detection.max_detections"),
        ({"detection": {"head": "yolov8"}}, "detection.head"),
        ({"input": {"size": 320}}, "input.size"),
        ({"input": {"resize": "crop"}}, "input.resize"),
        ({"android": {"agp": 7}}, "android.agp"),
        ({"android": {"group": "com.example ml"}}, "android.group"),
        ({"version": "1.0 beta"}, "version"),
        ({"export": {"int8_io": "int4"}}, "export.int8_io"),
        ({"detection": {"class_agnostic_nms": "yes"}}, "detection.class_agnostic_nms"),
        ({"task": "segmentation"}, "task"),
    ],
)
def test_wrong_types_and_values(tmp_path, patch, key):
    assert key in err(tmp_path, {**BASE, **patch})


@pytest.mark.parametrize(
    ("patch", "key"),
    [
        ({"detection": {"score_threshold": 1.5}}, "detection.score_threshold"),
        ({"detection": {"iou_threshold": 0}}, "detection.iou_threshold"),
        ({"detection": {"head": "ssd"}}, "detection.anchors.feature_maps"),
        ({"input": {"normalization": {"mean": [0, 0, 0]}}}, "input.normalization.std"),
        ({"input": {"normalization": {"mean": [1, 2, 3], "std": [1, 0, 1]}}}, "input.normalization.std"),
        ({"input": {"normalization": {"mean": [1], "std": [1], "scale": 2}}}, "input.normalization"),
        ({"input": {"size": [320]}}, "input.size"),
        ({"parity": {"min_cosine": 2}}, "parity.min_cosine"),
        ({"calibration": {"images": "x", "format": "coco"}}, "calibration.annotations"),
        ({"calibration": {"images": "x", "count": 0}}, "calibration.count"),
    ],
)
def test_semantic_errors(tmp_path, patch, key):
    assert key in err(tmp_path, {**BASE, **patch})


def test_missing_required_keys(tmp_path):
    assert "model" in err(tmp_path, {"calibration": {"images": "x"}})
    assert "calibration.images" in err(tmp_path, {"model": "m.keras"})


def test_invalid_yaml_and_missing_file(tmp_path):
    assert "not valid YAML" in err(tmp_path, "model: [unclosed\n  - x: : :")
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_normalization_forms_agree(tmp_path):
    ms = load(tmp_path, {**BASE, "input": {"normalization": {"mean": [127.5] * 3, "std": [127.5] * 3}}})
    so = load(tmp_path, {**BASE, "input": {"normalization": {"scale": 1 / 127.5, "offset": -1.0}}})
    (s1, o1), (s2, o2) = normalization_of(ms), normalization_of(so)
    assert s1 == pytest.approx(s2) and o1 == pytest.approx(o2)


KEYS = st.sampled_from(["model", "task", "input", "detection", "size", "head", "scale", "images", "count", "x"])
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 500) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=6))
def test_loader_never_crashes_on_arbitrary_input(data):
    """Whatever a user writes, the loader answers with a config or a ConfigError, never a traceback."""
    try:
        parse_config(data, Path("/tmp/mobilekit.yaml"))
    except ConfigError as e:
        assert e.one_line()
