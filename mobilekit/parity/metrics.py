"""Tensor agreement metrics between a reference (float Keras) output and a converted model's output.

They accumulate image by image and merge across shards exactly (:class:`TensorAcc`): parity over a full validation
set streams its images in shards, possibly on several workers, and must give the same numbers however the images
were cut. Each image's sums are exactly rounded (``math.fsum``: no BLAS, whose threads would change the last bits)
and added as exact fractions, so the order in which images and shards are added cannot change a single bit of the
result; minima and maxima are order-free anyway. Non-finite values (an fp16 overflow) are counted, not summed: they
make the metrics NaN (and max abs error infinite), which fails every bar, as they should.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

EPS = 1e-12
#: values at or below this are zero for the "both tensors are zero" cosine rule (``np.allclose``'s atol)
ZERO = 1e-8


@dataclass
class ExactSum:
    """A sum of floats kept as an exact fraction: adding in any order, or merging partial sums, gives one value."""

    value: Fraction = field(default_factory=Fraction)

    def add(self, x: float) -> None:
        self.value += Fraction(float(x))

    def merge(self, other: ExactSum) -> None:
        self.value += other.value

    def __float__(self) -> float:
        return float(self.value)


@dataclass
class TensorAcc:
    """Cosine, SNR, PSNR and max abs error of one output over many images, one image (or tensor) at a time."""

    n: int = 0
    rr: ExactSum = field(default_factory=ExactSum)
    ee: ExactSum = field(default_factory=ExactSum)
    rg: ExactSum = field(default_factory=ExactSum)
    gg: ExactSum = field(default_factory=ExactSum)
    lo: float = np.inf
    hi: float = -np.inf
    max_abs: float = 0.0
    max_ref: float = 0.0
    max_got: float = 0.0
    nonfinite: int = 0  # values of either tensor that are NaN or infinite

    def add(self, ref: np.ndarray, got: np.ndarray) -> None:
        r = ref.astype(np.float64).ravel()
        g = got.astype(np.float64).ravel()
        bad = ~(np.isfinite(r) & np.isfinite(g))
        if bad.any():
            self.nonfinite += int(bad.sum())
            r, g = r[~bad], g[~bad]
        e = r - g
        self.n += r.size
        for acc, a, b in ((self.rr, r, r), (self.ee, e, e), (self.rg, r, g), (self.gg, g, g)):
            acc.add(math.fsum(a * b))
        if r.size:
            self.lo, self.hi = min(self.lo, float(r.min())), max(self.hi, float(r.max()))
            self.max_abs = max(self.max_abs, float(np.abs(e).max()))
            self.max_ref = max(self.max_ref, float(np.abs(r).max()))
            self.max_got = max(self.max_got, float(np.abs(g).max()))

    def merge(self, other: TensorAcc) -> None:
        self.n += other.n
        for mine, theirs in ((self.rr, other.rr), (self.ee, other.ee), (self.rg, other.rg), (self.gg, other.gg)):
            mine.merge(theirs)
        self.lo, self.hi = min(self.lo, other.lo), max(self.hi, other.hi)
        self.max_abs = max(self.max_abs, other.max_abs)
        self.max_ref, self.max_got = max(self.max_ref, other.max_ref), max(self.max_got, other.max_got)
        self.nonfinite += other.nonfinite

    def result(self) -> dict[str, float]:
        """The metrics; infinite dB values (identical tensors) are capped at 200 dB so the JSON stays portable."""
        if self.nonfinite:
            return {"cosine": math.nan, "snr_db": math.nan, "psnr_db": math.nan, "max_abs": math.inf,
                    "nonfinite": self.nonfinite}
        n = max(self.n, 1)
        mse, signal = float(self.ee) / n, float(self.rr) / n
        peak = self.hi - self.lo if self.n else 0.0
        cos = float(self.rg) / max(float(np.sqrt(float(self.rr)) * np.sqrt(float(self.gg))), EPS)
        if self.max_ref <= ZERO and self.max_got <= ZERO:
            cos = 1.0
        snr = 200.0 if mse <= EPS else min(200.0, 10 * np.log10(max(signal, EPS) / mse))
        psnr = 200.0 if mse <= EPS else min(200.0, 10 * np.log10(max(peak**2, EPS) / mse))
        return {"cosine": cos, "snr_db": float(snr), "psnr_db": float(psnr), "max_abs": self.max_abs}


def tensor_metrics(ref: np.ndarray, got: np.ndarray) -> dict[str, float]:
    """Cosine similarity, SNR (dB), PSNR (dB, peak = reference range) and max abs error, over the whole batch."""
    acc = TensorAcc()
    acc.add(ref, got)
    return acc.result()


#: bootstrap_interval: resamples, and the most images it resamples (beyond them a build would wait on it for minutes)
RESAMPLES = 200
MAX_IMAGES = 2000


def bootstrap_interval(images: int, stat: Callable[[np.ndarray], float], level: float = 0.9,
                       seed: int = 0) -> tuple[float, float] | None:
    """The ``level`` interval of ``stat(w)`` over bootstrap resamples of ``images`` images (``w[i]``: how often image
    ``i`` was drawn). A paired statistic (two models' metrics on the same resample) says how much of a difference
    between them these images can tell from noise. None without images or above ``MAX_IMAGES``."""
    if not 0 < images <= MAX_IMAGES:
        return None
    rng = np.random.default_rng(seed)
    values = [stat(np.bincount(rng.integers(0, images, images), minlength=images)) for _ in range(RESAMPLES)]
    values = [v for v in values if np.isfinite(v)]
    if not values:
        return None
    lo, hi = np.percentile(values, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)
