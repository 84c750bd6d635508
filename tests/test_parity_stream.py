"""Streaming parity: metrics reduced shard by shard merge exactly, so one shard and many give identical numbers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import detector_config

from mobilekit import pipeline
from mobilekit.config_file import parse_config
from mobilekit.parity.detection import COCO_IOUS, APAcc, map50_95
from mobilekit.parity.metrics import TensorAcc, tensor_metrics
from mobilekit.postprocess import Detections


def _parity(cfg: dict[str, Any], folder: Path, shard: int, workers: int = 1, ray: str | None = None
            ) -> tuple[dict[str, Any], pipeline.Samples]:
    """The build's stages up to parity (its real converters, LiteRT, the Core ML emulator), in shards of ``shard``
    on ``workers`` local processes (or Ray actors on the cluster at ``ray``)."""
    config = parse_config({**cfg, "parity": {**cfg["parity"], "shard_images": shard}}, folder / "mobilekit.yaml")
    with tempfile.TemporaryDirectory() as staging:
        st = pipeline.BuildState(config, folder / "unused", Path(staging), lambda s: None, False, False,
                                 workers=workers, ray=ray)
        pipeline.run_stages(st, before="drift")
        return st.parity.to_dict(), st.samples


def _same_samples(a: pipeline.Samples, b: pipeline.Samples) -> None:
    assert a.errors.keys() == b.errors.keys()
    for kind, roles in a.errors.items():
        for role, values in roles.items():
            assert np.array_equal(values, b.errors[kind][role]), (kind, role)
    assert len(a.canvases) == len(b.canvases) == 4 and all(np.array_equal(x, y) for x, y in
                                                           zip(a.canvases, b.canvases, strict=True))
    for x, y in zip(a.converted, b.converted, strict=True):
        assert np.array_equal(x.boxes, y.boxes) and np.array_equal(x.scores, y.scores)


@pytest.mark.slow
def test_detector_parity_is_identical_in_one_shard_or_many(tmp_path, yolo_model, shapes_dataset, cache,
                                                           ray_cluster):
    """Every artifact and kernel set (LiteRT XNNPACK, LiteRT reference kernels in their contained child per shard,
    the Core ML emulator and the Vision pipeline): tensor metrics, detection agreement, mAP@0.5 and mAP@0.5:0.95
    bit for bit equal, whether 24 labelled images go in one shard, or in shards of 5 (the last one short), here, on
    two local worker processes or on two Ray actors."""
    cfg = detector_config(yolo_model, shapes_dataset, cache / "labels.txt",
                          evaluation={"images": str(shapes_dataset), "format": "yolo"},
                          coreml={"vision": True, "input": "image"})
    cfg["parity"] = {**cfg["parity"], "images": 24}
    one, one_samples = _parity(cfg, tmp_path, 64)
    many, many_samples = _parity(cfg, tmp_path, 5)
    assert one == many
    pooled, pooled_samples = _parity(cfg, tmp_path, 5, workers=2)  # two spawned worker processes
    assert pooled == one
    _same_samples(one_samples, pooled_samples)
    on_ray, ray_samples = _parity(cfg, tmp_path, 5, workers=2, ray=ray_cluster)  # two actors on a real local Ray
    assert on_ray == one
    _same_samples(one_samples, ray_samples)
    assert {"xnnpack", "reference"} <= one["artifacts"]["tflite-int8"]["resolvers"].keys()
    assert "coreml-vision" in one["artifacts"] and one["images"] == 24
    assert one["map50_95_float"] > 0 and "map50_95" in one["artifacts"]["tflite-fp16"]["resolvers"]["xnnpack"]
    _same_samples(one_samples, many_samples)


def test_classifier_parity_is_identical_in_one_shard_or_many(tmp_path, classifier_model, shapes_dataset):
    """A classifier over class folders: top-1 agreement (with its near-tie rule, decided over all images), top-1
    accuracy and the tensor metrics are the same in shards of 1 image as in one shard."""
    labels = ["circle", "square", "triangle"]
    (tmp_path / "labels.txt").write_text("\n".join(labels) + "\n")
    for k, img in enumerate(sorted(shapes_dataset.rglob("*.png"))[:15]):
        (tmp_path / "eval" / labels[k % 3]).mkdir(parents=True, exist_ok=True)
        shutil.copy(img, tmp_path / "eval" / labels[k % 3] / img.name)
    cfg = {"model": str(classifier_model), "task": "classification", "labels": str(tmp_path / "labels.txt"),
           "input": {"normalization": {"scale": 1 / 255, "offset": 0.0}},
           "calibration": {"images": str(shapes_dataset), "count": 20},
           "evaluation": {"images": str(tmp_path / "eval")},
           "parity": {"images": 15, "enforce": False}, "coreml": {"enabled": False}}
    one, one_samples = _parity(cfg, tmp_path, 64)
    many, many_samples = _parity(cfg, tmp_path, 1)
    assert one == many and one["top1_float"] is not None
    assert "top1" in one["artifacts"]["tflite-int8"]["resolvers"]["xnnpack"]
    assert one_samples.reference == many_samples.reference and one_samples.converted == many_samples.converted


def test_accumulators_do_not_depend_on_the_order_of_their_sums():
    """Tensor sums are exact: the same images added in any grouping give the same bits (float64 sums would not);
    and the one-pass metric functions are the accumulators themselves."""
    rng = np.random.default_rng(0)
    ref = [rng.normal(0, 10.0 ** rng.integers(-3, 4), (50, 7)) for _ in range(40)]
    got = [r + rng.normal(0, 0.01, r.shape) for r in ref]
    whole = TensorAcc()
    for r, g in zip(ref, got, strict=True):
        whole.add(r, g)
    parts = [TensorAcc() for _ in range(3)]
    for i, (r, g) in enumerate(zip(ref, got, strict=True)):
        parts[i * 3 // len(ref)].add(r, g)
    merged = parts[2]
    merged.merge(parts[0])  # out of order on purpose: exact sums do not care
    merged.merge(parts[1])
    assert merged.result() == whole.result()
    assert tensor_metrics(ref[0], got[0]) == pytest.approx(_numpy_metrics(ref[0], got[0]), rel=1e-12)

    dets = [Detections(rng.uniform(0, 50, (6, 2)).repeat(2, axis=1) + np.array([0, 0, 9, 9]), rng.uniform(0, 1, 6),
                       rng.integers(0, 3, 6)) for _ in range(12)]
    gts = [(d.boxes[:3] + 1.0, d.classes[:3]) for d in dets]
    one, head, tail = APAcc(3, COCO_IOUS, 100), APAcc(3, COCO_IOUS, 100), APAcc(3, COCO_IOUS, 100)
    for k, (d, (b, c)) in enumerate(zip(dets, gts, strict=True)):
        one.add(d, b, c)
        (head if k < 5 else tail).add(d, b, c)
    head.merge(tail)
    assert head.result() == one.result() == map50_95(dets, [g[0] for g in gts], [g[1] for g in gts], 3)
    assert 0 < one.result() < 100

def _numpy_metrics(ref: np.ndarray, got: np.ndarray) -> dict[str, float]:
    """The textbook formulas over the whole tensor, to check the accumulator against."""
    r, g = ref.ravel(), got.ravel()
    mse = np.mean((r - g) ** 2)
    return {"cosine": float(r @ g / np.linalg.norm(r) / np.linalg.norm(g)),
            "snr_db": float(10 * np.log10(np.mean(r**2) / mse)),
            "psnr_db": float(10 * np.log10((r.max() - r.min()) ** 2 / mse)), "max_abs": float(np.abs(r - g).max())}


def test_a_ray_cluster_that_cannot_be_joined_is_one_line_at_once():
    """Ray waits minutes for a GCS that is not there; mobilekit says so in one line (exit 2) within seconds."""
    import time

    from mobilekit.errors import EXIT_BAD_INPUT, ConfigError
    from mobilekit.run.ray import connect

    pytest.importorskip("ray")
    start = time.monotonic()
    with pytest.raises(ConfigError) as err:
        connect("127.0.0.1:1", 1)
    assert time.monotonic() - start < 30
    assert err.value.exit_code == EXIT_BAD_INPUT and "nothing answers" in err.value.one_line()
    assert "\n" not in err.value.one_line()


@pytest.mark.slow
@pytest.mark.xdist_group("ray")  # beside the tests' Ray head, whose teardown stops every Ray instance here
def test_a_private_ray_instance_leaves_nothing_in_home(tmp_path):
    """``--ray local`` starts a token-authenticated private instance whose token stays in the build's environment:
    Ray left to itself writes ``~/.ray/auth_token``, after which ``ray start`` heads on the machine demand it. The
    instance is on loopback, from a shell that sets nothing for Ray."""
    pytest.importorskip("ray")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}  # as a user's shell has it
    assert _ray_addresses("local", env={**env, "HOME": str(tmp_path)}) == {"127.0.0.1"}
    assert not (tmp_path / ".ray").exists()


def _ray_addresses(address: str, env: dict[str, str] | None = None) -> set[str]:
    """In a process of its own: join ``address`` as a build does (``connect``), run a task, and return the hosts of
    the addresses Ray reports (every node's, the GCS's, this driver's)."""
    code = ("import json, ray\nfrom mobilekit.run.ray import connect\n"
            f"assert connect({address!r}, 1)\nassert ray.get(ray.remote(lambda x: 2 * x).remote(21)) == 42\n"
            "ctx = ray.get_runtime_context()\n"
            "hosts = [n['NodeManagerAddress'] for n in ray.nodes()] + [ctx.gcs_address.rsplit(':', 1)[0]]\n"
            "hosts.append(ray._private.worker.global_worker.node.node_ip_address)\n"
            "print(json.dumps(hosts))\nray.shutdown()\n")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return set(json.loads(res.stdout.strip().splitlines()[-1]))


@pytest.mark.slow
def test_every_ray_server_is_on_loopback(ray_cluster):
    """The tests' Ray head listens on 127.0.0.1 only, never on the machine's network address (Ray's default on
    Linux, even when told 127.0.0.1): what Ray reports for its nodes, its GCS and the driver is loopback (the
    private ``--ray local`` instance is checked the same way in the test above)."""
    assert _ray_addresses(ray_cluster) == {"127.0.0.1"}
