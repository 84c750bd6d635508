"""Shared fixtures (small real models trained here in seconds, the SDK bundles, Apple's stub modules) and how the
suite runs on xdist's workers (groups, order).

Nothing is mocked: the models are trained Keras models, converted by the real TFLite converter and run on the real
LiteRT interpreter. Trained models and built bundles sit in the suite's cache (``testcache``: made once whatever
the number of workers, kept between runs, keyed by what makes them), never committed.

The fixtures' weights are deterministic for a seed (``MOBILEKIT_TEST_SEED``, default 0: the training images, the
initial weights and the shuffles) on a given machine: oneDNN is off unless ``TF_ENABLE_ONEDNN_OPTS`` says otherwise,
and TensorFlow's op determinism is on. Another CPU may still train other weights, so no test may depend on how well
a fixture learned: tests about something other than parity set ``parity.enforce: false`` (``helpers.NO_GATE``), and
parity-gate tests use bars with a margin and enough images. The suite passes with other seeds and with oneDNN on
and off; CI runs it as it is.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import fixture_models
import pytest
import testcache
from helpers import (
    COCO128,
    NO_GATE,
    SDK_BUNDLES,
    SDK_HEADS,
    SEED,
    build_bundles,
    detector_config,
    run_swift,
    swift,
    swift_modules,
)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # before TensorFlow loads: its fused kernels vary by CPU
# every Ray server the tests start or join listens on loopback: on Linux, Ray turns 127.0.0.1 into the machine's
# network address unless multi-node clustering is off (read when Ray loads, here and in the head's processes)
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

REPO = testcache.REPO
#: What the trained fixtures are made from: their key (with the seed, oneDNN and the TensorFlow/Keras versions)
FIXTURE_SOURCES = [Path(fixture_models.__file__), REPO / "mobilekit" / "example",
                   *(REPO / "mobilekit" / f for f in ("contract.py", "data/preprocess.py", "heads/ssd.py",
                                                      "postprocess.py"))]


@pytest.fixture(scope="session", autouse=True)
def _deterministic_ops() -> None:
    """Same seed, same weights on this machine (reductions and shuffles without run-to-run variation). Then the
    libraries' import-time objects are frozen out of the garbage collector's sight (as the build worker does):
    coremltools and Keras call ``gc.collect()`` on every conversion and ``clear_session``, and each call walked them
    all (a small catalogue graph converted in 0.65 s, 0.08 s frozen)."""
    import gc

    import coremltools  # noqa: F401
    import keras  # noqa: F401
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    gc.freeze()


@pytest.fixture(scope="session")
def cache() -> Path:
    """The trained fixtures' folder in the suite's cache (``testcache``), keyed by what trains them: shared by the
    xdist workers and kept for the next run; models trained under another seed or oneDNN setting are other models."""
    import keras
    import tensorflow as tf

    key = testcache.digest(SEED, os.environ["TF_ENABLE_ONEDNN_OPTS"], tf.__version__, keras.__version__,
                           sources=testcache.files_under(*FIXTURE_SOURCES, suffixes=(".py",)))
    path = testcache.root() / f"fixtures-{key}"
    path.mkdir(exist_ok=True)
    return testcache.used(path)


@pytest.fixture(scope="session")
def shapes_dataset(cache: Path) -> Path:
    """A YOLO-format shapes dataset (40 images): calibration and evaluation with ground truth."""
    testcache.cached(cache / "labels.txt", fixture_models.labels)
    return testcache.cached(cache / "shapes_data", fixture_models.shapes_dataset) / "images"


@pytest.fixture(scope="session")
def yolo_model(cache: Path) -> Path:
    return testcache.cached(cache / "yolo.keras", fixture_models.yolo)


@pytest.fixture(scope="session")
def yolo_variants(cache: Path, yolo_model: Path) -> dict[str, Path]:
    return testcache.cached_many({v: (cache / f"yolo_{v}.keras", partial(fixture_models.yolo_variant,
                                                                          yolo_model=yolo_model, variant=v))
                                  for v in fixture_models.VARIANTS})


@pytest.fixture(scope="session")
def detector_models(yolo_model: Path, yolo_variants: dict[str, Path], ssd_model: Path) -> dict[str, Path]:
    """The fixture detector of each head format."""
    return {"yolo": yolo_model, "yolo_transposed": yolo_variants["transposed"], "ssd": ssd_model,
            **{k: v for k, v in yolo_variants.items() if k.startswith(("grid_", "retinanet", "dfl", "decoded"))}}


@pytest.fixture(scope="session")
def ssd_model(cache: Path) -> Path:
    return testcache.cached(cache / "ssd.keras", fixture_models.ssd)


@pytest.fixture(scope="session")
def classifier_model(cache: Path) -> Path:
    return testcache.cached(cache / "classifier.keras", fixture_models.classifier)


@pytest.fixture(scope="session")
def saved_model_dir(cache: Path, yolo_variants: dict[str, Path]) -> Path:
    """The decoded detector exported as a TensorFlow SavedModel directory."""
    return testcache.cached(cache / "decoded_savedmodel",
                            partial(fixture_models.saved_model, source=yolo_variants["decoded"]))


@pytest.fixture(scope="session")
def unsplit_models(cache: Path, yolo_model: Path, yolo_variants: dict[str, Path]) -> dict[str, Path]:
    """The concatenating YOLO detectors as SavedModels: a graph cannot be rewired, so boxes and scores stay one
    ``predictions`` output (the unsplit form every SDK must handle too)."""
    return testcache.cached_many({head: (cache / f"{head}_unsplit_savedmodel",
                                         partial(fixture_models.saved_model, source=src))
                                  for head, src in (("yolo", yolo_model), ("yolo_transposed",
                                                                           yolo_variants["transposed"]))})


@pytest.fixture(scope="session")
def sdk_bundles(tmp_path_factory, detector_models, unsplit_models, classifier_model, shapes_dataset,
                cache) -> dict[str, Path]:
    """The SDK bundles of ``SDK_BUNDLES`` and a classifier ("classifier"), built with the CLI; key → bundle."""
    configs = {}
    for key, (inp, vision, io) in SDK_BUNDLES.items():
        head = key.removesuffix("_unsplit")
        model = unsplit_models[head] if key.endswith("_unsplit") else detector_models[head]
        cfg = detector_config(model, shapes_dataset, cache / "labels.txt", head, **SDK_HEADS[head])
        if key.endswith("_unsplit"):  # one int8 scale for boxes and scores can round every score to 0: keep all
            cfg["detection"]["score_threshold"] = 0.0  # candidates, so there are always detections to compare
        cfg.update({"name": f"{key} det", "export": {"int8_io": io, "fp16": False},
                    "coreml": {"input": inp, "vision": vision}, "parity": {"images": 8, **NO_GATE}})
        configs[key] = cfg
    configs["classifier"] = {"model": str(classifier_model), "name": "shapes classifier", "task": "classification",
                             "labels": str(cache / "labels.txt"), "parity": {"images": 8, **NO_GATE},
                             "calibration": {"images": str(shapes_dataset), "count": 10}}
    return build_bundles(tmp_path_factory, configs)


@pytest.fixture(scope="session")
def h5_classifier(cache: Path) -> Path:
    """A tf_keras (Keras 2) classifier saved as .h5, trained briefly on shapes."""
    return testcache.cached(cache / "classifier_k2.h5", fixture_models.h5_classifier)


@pytest.fixture
def fresh_out(tmp_path: Path) -> Path:
    out = tmp_path / "bundle"
    shutil.rmtree(out, ignore_errors=True)
    return out


@pytest.fixture(scope="session")
def apple_stub_modules() -> Path:
    """Apple's frameworks as compile-only stub modules (tests/stubs/ios), built once per stub sources and Swift
    version (in the suite's cache); the folder holding their `.swiftmodule`s, for `swift build -Xswiftc -I <it>` on a
    shipped package that stays as it is."""
    here = Path(__file__).parent
    version = subprocess.run([swift(), "--version"], capture_output=True, text=True, check=True).stdout
    key = testcache.digest(version, sources=testcache.files_under(here / "stubs" / "ios",
                                                                   here / "swift" / "StubsPackage.swift"))

    def make(root: Path) -> None:
        shutil.copytree(here / "stubs" / "ios", root / "Stubs")
        shutil.copy(here / "swift" / "StubsPackage.swift", root / "Package.swift")
        run_swift("build", cwd=root)

    root = testcache.cached(testcache.root() / f"apple-stubs-{key}", make)
    modules = swift_modules(root / ".build" / "debug")
    assert (modules / "CoreML.swiftmodule").exists() and (modules / "SwiftUI.swiftmodule").exists(), modules
    return modules


@pytest.fixture(scope="session")
def coco128() -> Path:
    """The coco128 photographs (``../shared/data/coco128``); CI clones with ``../shared`` beside the checkout."""
    if not (COCO128 / "images" / "train2017").is_dir():
        pytest.fail(f"{COCO128} is missing: put the shared data folder beside the checkout (../shared/data/coco128)")
    return COCO128


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory) -> Iterator[str]:
    """A real local Ray instance (``ray start --head``) on 127.0.0.1 only, sized for a 2-core machine; its address
    (parity's shards and the search's trials run on it). ``ray stop`` knows no instance of its own: it stops every
    Ray process on the machine, so the tests that start Ray share one xdist worker (group "ray", :data:`GROUPS`)."""
    pytest.importorskip("ray")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray = [sys.executable, "-m", "ray.scripts.scripts"]
    # a HOME of its own: a ~/.ray/auth_token that an earlier `ray.init()` on this machine left makes the head
    # demand token authentication that this test's client does not send
    env = {**os.environ, "HOME": str(tmp_path_factory.mktemp("ray-home"))}
    subprocess.run([*ray, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                    "--disable-usage-stats", f"--object-store-memory={256 * 1024 * 1024}",
                    "--node-ip-address=127.0.0.1"],
                   check=True, capture_output=True, timeout=300, env=env)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([*ray, "stop", "--force"], capture_output=True, timeout=300, env=env)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The cache keeps what recent runs used (the controller prunes, once, when the workers are done)."""
    if not hasattr(session.config, "workerinput"):
        testcache.prune()


# ------------------------------------------------------------------------------------------------ running on xdist
#: Module fixtures that cost a compiler run or builds, and the xdist group of the tests that use them: a group runs on
#: one worker, so the fixture is made once (session fixtures need no group: they sit in the suite's cache, made once
#: whatever the worker). A test that uses two of them belongs to the first listed. Every test that starts Ray is in
#: group "ray" (also by its mark): the head's teardown, `ray stop --force`, stops every Ray instance on the machine.
GROUPS = {"compiled": "kotlin", "shipped": "swift-shipped", "check": "swift-golden", "twin_bundles": "release-twins",
          "ray_cluster": "ray"}


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: a worker per core, at most 4 (each holds TensorFlow, a few GB; the suite's longest chain, the SDK
    bundles and their compilers, gains nothing from more)."""
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which names each item's group from its marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each test that uses a fixture of :data:`GROUPS` joins its group, and the run starts with the longest work
    (longest-first keeps both cores busy to the end): the groups (in :data:`GROUPS` order), then the tests marked
    slow, then the rest, each in collection order. Marks ``swift`` and ``kotlin`` follow the compilers' groups."""
    order = list(GROUPS.values())

    def rank(item: pytest.Item) -> tuple[int, int]:
        names = getattr(item, "fixturenames", ())
        group = next((GROUPS[f] for f in GROUPS if f in names), None)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
            return 0, order.index(group)
        return (1 if item.get_closest_marker("slow") else 2), 0

    items.sort(key=rank)


def pytest_collection_finish(session: pytest.Session) -> None:
    """A worker whose groups did not take stops the run: xdist groups by renaming node ids, which some pytest
    releases ignore (9.2), and then every group's fixture is rebuilt on each worker, silently doubling the run."""
    if not getattr(session.config.option, "loadgroup", False):  # set on xdist workers under --dist loadgroup
        return
    lost = [i.nodeid for i in session.items if i.get_closest_marker("xdist_group") and "@" not in i.nodeid]
    if lost:
        raise pytest.UsageError(f"pytest-xdist's groups did not take under pytest {pytest.__version__} ({lost[0]}): "
                                "install what pyproject.toml's test extra pins")
