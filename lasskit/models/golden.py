"""Fixed inputs and compact summaries for the model zoo's golden parity files (numpy only).

The zoo's parity harness (``parity/zoo_parity.py``, run outside CI against each upstream
repository) and ``tests/test_zoo.py`` both build the same inputs from these functions, so a
golden file stores only what the upstream code produced: a strided subset of each output, its
summary statistics and the SHA-256 of the inputs it was given (which the test recomputes).

Importable without torch (the harness runs it in the upstream's own virtual environment).
"""

from __future__ import annotations

import hashlib

import numpy as np

STRIDE = 37
"""Every 37th output sample is kept (a prime: no alignment with STFT hops or pooling)."""


def parity_mixture(seconds: float, rate: int, seed: int = 25) -> np.ndarray:
    """A deterministic ``(1, 1, samples)`` float32 mixture: two tones with slow envelopes plus noise."""
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    rng = np.random.default_rng(seed)
    tone = 0.3 * np.sin(2 * np.pi * 440.0 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.25 * t))
    chirp = 0.2 * np.sin(2 * np.pi * (200.0 * t + 150.0 * t ** 2 / max(seconds, 1e-9)))
    noise = 0.05 * rng.standard_normal(n)
    return (tone + chirp + noise).astype(np.float32)[None, None, :]


def parity_condition(seed: int = 9) -> np.ndarray:
    """A deterministic unit-norm ``(1, 512)`` float32 condition (like a CLAP text embedding)."""
    v = np.random.default_rng(seed).standard_normal(512)
    return (v / np.linalg.norm(v)).astype(np.float32)[None, :]


def pair_condition(negative_seed: int | None, positive_seed: int = 9) -> np.ndarray:
    """``(1, 1024)`` float32 ``normalize(concat(positive, negative))`` of two parity conditions
    (CLAPSep's condition); ``negative_seed`` None: the zero vector for the negative side."""
    positive = parity_condition(positive_seed)
    negative = np.zeros_like(positive) if negative_seed is None else parity_condition(negative_seed)
    both = np.concatenate([positive, negative], axis=-1).astype(np.float64)
    return (both / np.linalg.norm(both)).astype(np.float32)


def digest(array: np.ndarray) -> str:
    """SHA-256 of a float32 array's bytes (C order)."""
    return hashlib.sha256(np.ascontiguousarray(array, dtype=np.float32).tobytes()).hexdigest()


def summary(waveform: np.ndarray) -> dict[str, np.ndarray]:
    """What a golden file keeps of one output: ``strided`` samples, ``stats`` (sum, sum of squares,
    max abs, length) in float64."""
    w = np.asarray(waveform, dtype=np.float64).reshape(-1)
    return {"strided": w[::STRIDE].astype(np.float32),
            "stats": np.array([w.sum(), (w ** 2).sum(), np.abs(w).max(), w.size], dtype=np.float64)}
