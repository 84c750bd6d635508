"""Tensor agreement metrics between a reference (float Keras) output and a converted model's output."""

from __future__ import annotations

import numpy as np

EPS = 1e-12


def tensor_metrics(ref: np.ndarray, got: np.ndarray) -> dict[str, float]:
    """Cosine similarity, SNR (dB), PSNR (dB, peak = reference range) and max abs error, over the whole batch.

    Infinite dB values (identical tensors) are capped at 200 dB so the JSON stays portable.
    """
    r = ref.astype(np.float64).ravel()
    g = got.astype(np.float64).ravel()
    err = r - g
    mse = float(np.mean(err**2))
    signal = float(np.mean(r**2))
    peak = float(r.max() - r.min()) if r.size else 0.0
    cos = float(np.dot(r, g) / max(np.linalg.norm(r) * np.linalg.norm(g), EPS))
    if np.allclose(r, 0) and np.allclose(g, 0):
        cos = 1.0
    snr = 200.0 if mse <= EPS else min(200.0, 10 * np.log10(max(signal, EPS) / mse))
    psnr = 200.0 if mse <= EPS else min(200.0, 10 * np.log10(max(peak**2, EPS) / mse))
    return {"cosine": cos, "snr_db": float(snr), "psnr_db": float(psnr), "max_abs": float(np.abs(err).max())}
