"""The emulator executes every MIL op of the coverage catalogue as TensorFlow computes it.

Each catalogue graph (``tests/catalogue.py``: one keras.applications architecture per family, every vision layer
and activation of Keras, detector necks and heads shaped like the third-party ones) is converted by coremltools at
fp32 and run by the emulator on both of its paths (the traced TensorFlow twins and the op-by-op numpy reference);
outputs must match the Keras model to fp32 precision. A graph the converter cannot take must be listed in
``NOT_CONVERTIBLE`` with the converter's reason, and leaves the list when a coremltools release converts it.
"""

from __future__ import annotations

import json
from pathlib import Path

import catalogue
import numpy as np
import pytest
import testcache

from mobilekit.emulate.coreml import CoreMLEmulator
from mobilekit.emulate.coreml.registry import OPS

#: Graphs coremltools 9 cannot convert from TensorFlow (the build stops in conversion, exit 4, naming the op).
NOT_CONVERTIBLE: dict[str, str] = {
    # Keras 3 runs a grouped Conv2D on CPU through an XLA-compiled function (jit_compile=True) that freezing does
    # not inline; coremltools then meets a StatefulPartitionedCall
    "ConvNeXtTiny": "StatefulPartitionedCall (grouped Conv2D compiled by XLA)",
    "conv_grouped": "StatefulPartitionedCall (grouped Conv2D compiled by XLA)",
    "activation_celu": "TF op Expm1",
    "activation_gelu": "TF op Erfc (exact GELU; approximate=True converts)",
}
#: Relative error allowed: max |emulator - TensorFlow| over max |TensorFlow|, per output (fp32 with reordered sums).
RTOL = 2e-5
#: keras-hub / keras-cv detectors join where those packages are installed (not in CI: keras-hub pins
#: tensorflow-text, which would move TensorFlow); bench/coreml_coverage.py records their ops in coreml_ops.json
ENTRIES = (catalogue.smallest_per_family(catalogue.applications()) + catalogue.layers() + catalogue.detectors()
           + catalogue.third_party())
OPS_FILE = Path(__file__).with_name("coreml_ops.json")


#: whole architectures take 3 to 40 s each on a cold run (mostly coremltools' conversion); layers and necks 1 s
SLOW_SOURCES = {"keras.applications", "third-party detectors"}


def _converted(entry: catalogue.Entry, model: object) -> tuple[Path, str]:
    """The entry's ``mlprogram`` package converted by coremltools at fp32, and why the converter refused it ("" when
    it did not). The converter is not what is under test and takes nearly all of an architecture's time (27 s of 33 s
    for InceptionResNetV2), so its package is made once per graph (``catalogue.py``, the seed), coremltools, Keras and
    TensorFlow version (the suite's cache); the graph is built afresh every time for TensorFlow's reference."""
    import coremltools
    import keras
    import tensorflow as tf

    def run(out: Path) -> str:
        out.mkdir()
        try:
            catalogue.convert(model, entry.shape, out / "m.mlpackage")
        except Exception as e:
            return (str(e).splitlines() or [type(e).__name__])[0][:200]
        return ""

    key = testcache.digest(entry.name, coremltools.__version__, keras.__version__, tf.__version__,
                           sources=[Path(catalogue.__file__)])
    out, refused = testcache.cached_run("catalogue", key, run)
    return out / "m.mlpackage", refused


@pytest.mark.parametrize("entry", [pytest.param(e, marks=pytest.mark.slow) if e.source in SLOW_SOURCES else e
                                   for e in ENTRIES], ids=lambda e: e.name)
def test_emulator_matches_tensorflow(entry: catalogue.Entry) -> None:
    import keras

    keras.utils.clear_session()
    keras.utils.set_random_seed(0)
    model = entry.build()
    path, refused = _converted(entry, model)
    if refused:
        if entry.name in NOT_CONVERTIBLE:
            return
        raise AssertionError(f"{entry.name} no longer converts: {refused}")
    assert entry.name not in NOT_CONVERTIBLE, f"{entry.name} converts now: remove it from NOT_CONVERTIBLE"
    missing = set(catalogue.mil_ops(path)) - set(OPS)
    assert not missing, f"ops the emulator lacks: {sorted(missing)}"
    x = catalogue.sample(entry)
    want = catalogue.reference(entry, model, x)
    em = CoreMLEmulator(path)
    feed = {next(iter(em.function.inputs)): x}
    for eager in (False, True):
        got = em.run(feed, eager=eager)
        for name, w in zip(em.outputs, want, strict=True):
            g = got[name]
            assert g.shape == w.shape, (name, g.shape, w.shape)
            err = float(np.abs(g - w).max() / max(float(np.abs(w).max()), 1e-12))
            assert err <= RTOL, f"{'eager' if eager else 'traced'} output {name}: relative error {err:.2e}"


def test_every_catalogued_op_is_implemented() -> None:
    """The op list ``bench/coreml_coverage.py`` wrote (fp16, every compression recipe, keras-hub and keras-cv
    detectors where installed) holds only ops the emulator implements."""
    catalogued = json.loads(OPS_FILE.read_text())
    missing = sorted(op for op in catalogued["ops"] if op not in OPS)
    assert not missing, f"run bench/coreml_coverage.py: ops the emulator lacks {missing}"
