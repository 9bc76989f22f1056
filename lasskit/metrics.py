"""The challenge's metrics, exactly as the DCASE 2024 Task 9 organizers compute them (pure numpy).

For a reference ``s``, an estimate ``ŝ`` and the mixture ``x`` (same length ``N``), all in dB:

- ``SDR(s, ŝ)   = 10*log10( max(mean(s^2), 1e-10) / max(mean((ŝ - s)^2), 1e-10) )``
- ``SDRi        = SDR(s, ŝ) - SDR(s, x)``
- ``SI-SDR(s, ŝ)``, with ``eps`` the machine epsilon of the reference's dtype::

      a      = (eps + <s, ŝ>) / (<s, s> + eps)
      e_true = a*s ;  e_res = ŝ - e_true
      SI-SDR = 10*log10( (eps + sum(e_true^2)) / (eps + sum(e_res^2)) )

Every function takes ``(time,)`` arrays (and returns a 0-d float64) or ``(batch, time)`` arrays
(and returns ``(batch,)``); a 1-D reference broadcasts against a batch of estimates. Inputs are
cast to float64 before any arithmetic (the organizers' evaluator works in float32; on 3000 10 s
pairs the two differ by < 1e-5 dB per pair); only ``eps`` keeps the input dtype's meaning
(float32 input: 1.19e-7, as in the organizers' evaluator, which loads audio with librosa as
float32). :mod:`lasskit.scoring` passes ``eps=ORGANIZERS_EPS`` since it always scores audio the
organizers would load as float32.

Edge cases (the formulas decide them; nothing is special-cased):

- silent reference: the SDR numerator is the 1e-10 floor, so SDR = 10*log10(1e-10 / max(mean(ŝ^2),
  1e-10)) <= 0 dB (0 dB when the estimate is silent too); SI-SDR has a = 1, e_true = 0, so
  SI-SDR = 10*log10(eps / (eps + sum(ŝ^2))) <= 0 dB (0 dB when the estimate is silent too);
- silent estimate with a non-silent reference: SDR = 0 dB exactly (the error is the reference
  itself) and SI-SDR = 0 dB (a = eps/(<s,s>+eps), e_res = -e_true);
- identical signals: SDR = 10*log10(max(mean(s^2), 1e-10) / 1e-10), the floor-limited maximum
  (100 dB for mean(s^2) = 1); SI-SDR = 10*log10((eps + sum(s^2)) / eps);
- NaN or infinite samples, different lengths, or arrays that are not 1-D/2-D: ``ValueError``
  naming the argument (``lasskit score`` turns it into an error naming the file);
- :func:`bss_sdr` is undefined for a silent reference or estimate (mir_eval refuses): NaN.
"""

from __future__ import annotations

import numpy as np

SDR_FLOOR = 1e-10
"""Floor (in squared amplitude) on both mean powers of the organizers' SDR."""

ORGANIZERS_EPS = float(np.finfo(np.float32).eps)
"""The organizers' SI-SDR epsilon: librosa loads float32, so ``np.finfo(float32).eps`` = 1.19e-7."""

BSS_FILTER_TAPS = 512
"""Length of the distortion filter bss_eval v3 allows (mir_eval's ``bss_eval_sources``)."""


def _eps_of(reference: np.ndarray, eps: float | None) -> float:
    if eps is not None:
        return float(eps)
    dtype = np.asarray(reference).dtype
    return float(np.finfo(dtype if np.issubdtype(dtype, np.floating) else np.float64).eps)


def _as_signals(**arrays) -> list[np.ndarray]:
    """Cast to float64, check shape, length and finiteness; return in the order given."""
    out = []
    length = None
    for name, x in arrays.items():
        a = np.asarray(x, dtype=np.float64)
        if a.ndim not in (1, 2):
            raise ValueError(f"{name} must be shaped (time,) or (batch, time), not {a.shape}")
        if a.shape[-1] == 0:
            raise ValueError(f"{name} is empty (0 samples)")
        if length is None:
            length = a.shape[-1]
        elif a.shape[-1] != length:
            first = next(iter(arrays))
            raise ValueError(f"{name} has {a.shape[-1]} samples but {first} has {length}; trim them to the same length")
        if not np.isfinite(a).all():
            raise ValueError(f"{name} holds NaN or infinite values")
        out.append(a)
    return out


_DOT_BLOCK = 8192
"""Samples per partial dot product. OpenBLAS runs a dot product of <= 10000 samples on the calling
thread; longer ones start its thread pool, which competes with lasskit's worker processes (and,
on a busy machine, spins): 10 s at 16 kHz took 4 ms instead of 0.07 ms. Results do not depend on it."""

_vecdot = getattr(np, "vecdot", None) or (lambda a, b: np.einsum("...i,...i->...", a, b))  # numpy < 2.0


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sum over time of ``a*b`` (float64), broadcasting over the batch, in blocks of 8192 samples."""
    n = a.shape[-1]
    if n <= _DOT_BLOCK:
        return _vecdot(a, b)
    m = n - n % _DOT_BLOCK
    if a.ndim == 1 and b.ndim == 1:  # the common case, without broadcasting's overhead
        total = _vecdot(a[:m].reshape(-1, _DOT_BLOCK), b[:m].reshape(-1, _DOT_BLOCK)).sum()
        return total + _vecdot(a[m:], b[m:]) if m < n else total
    a, b = np.broadcast_arrays(a, b)
    lead = a.shape[:-1]
    blocks = (*lead, m // _DOT_BLOCK, _DOT_BLOCK)
    total = _vecdot(a[..., :m].reshape(blocks), b[..., :m].reshape(blocks)).sum(axis=-1)
    return total + _vecdot(a[..., m:], b[..., m:]) if m < n else total


def _sdr_from_energies(ref_energy, err_energy, length: int, floor: float = SDR_FLOOR) -> np.ndarray:
    """``10*log10(max(ref_energy/N, floor) / max(err_energy/N, floor))``: energies are sums of squares."""
    return 10.0 * np.log10(np.maximum(ref_energy / length, floor) / np.maximum(err_energy / length, floor))


def sdr(reference, estimate, floor: float = SDR_FLOOR) -> np.ndarray:
    """Organizers' SDR in dB: ``10*log10(max(mean(s^2), 1e-10) / max(mean((ŝ-s)^2), 1e-10))``.

    Means are over time (the last axis); ``floor`` is the 1e-10 on both mean powers.
    """
    s, e = _as_signals(reference=reference, estimate=estimate)
    d = e - s
    return _sdr_from_energies(_dot(s, s), _dot(d, d), s.shape[-1], floor)


def sdri(reference, estimate, mixture, floor: float = SDR_FLOOR) -> np.ndarray:
    """SDR improvement in dB: ``SDR(s, ŝ) - SDR(s, x)`` for the mixture ``x`` the estimate came from."""
    s, e, x = _as_signals(reference=reference, estimate=estimate, mixture=mixture)
    ref_energy = _dot(s, s)
    d = e - s
    sdr_est = _sdr_from_energies(ref_energy, _dot(d, d), s.shape[-1], floor)
    d = x - s
    return sdr_est - _sdr_from_energies(ref_energy, _dot(d, d), s.shape[-1], floor)


def si_sdr(reference, estimate, eps: float | None = None) -> np.ndarray:
    """Organizers' scale-invariant SDR in dB (sum-based, with ``eps``).

    ``a = (eps + <s,ŝ>) / (<s,s> + eps)``, ``e_true = a*s``, ``e_res = ŝ - e_true``,
    ``SI-SDR = 10*log10((eps + sum(e_true^2)) / (eps + sum(e_res^2)))``. ``eps`` defaults to the
    machine epsilon of the reference's dtype (float32: 1.19e-7, float64: 2.2e-16).
    """
    eps = _eps_of(reference, eps)
    s, e = _as_signals(reference=reference, estimate=estimate)
    a = (eps + _dot(s, e)) / (_dot(s, s) + eps)
    e_true = a[..., None] * s
    e_res = e - e_true
    return 10.0 * np.log10((eps + _dot(e_true, e_true)) / (eps + _dot(e_res, e_res)))


class PairSums:
    """Sums over time (float64) from which every challenge metric of one pair follows.

    ``ref_energy = sum(s^2)``, ``est_energy = sum(ŝ^2)``, ``est_error = sum((ŝ-s)^2)``,
    ``mix_error = sum((x-s)^2)``, ``true_energy = sum(e_true^2)``, ``res_energy = sum(e_res^2)``,
    ``length = N``, ``eps`` the SI-SDR epsilon. Arrays for a batch, 0-d for one pair.
    """

    __slots__ = ("length", "eps", "ref_energy", "est_energy", "est_error", "mix_error", "true_energy", "res_energy")

    def __init__(self, length, eps, ref_energy, est_energy, est_error, mix_error, true_energy, res_energy):
        self.length, self.eps = length, eps
        self.ref_energy, self.est_energy = ref_energy, est_energy
        self.est_error, self.mix_error = est_error, mix_error
        self.true_energy, self.res_energy = true_energy, res_energy

    @property
    def sdr(self) -> np.ndarray:
        return _sdr_from_energies(self.ref_energy, self.est_error, self.length)

    @property
    def sdr_mixture(self) -> np.ndarray:
        return _sdr_from_energies(self.ref_energy, self.mix_error, self.length)

    @property
    def sdri(self) -> np.ndarray:
        return self.sdr - self.sdr_mixture

    @property
    def si_sdr(self) -> np.ndarray:
        return 10.0 * np.log10((self.eps + self.true_energy) / (self.eps + self.res_energy))

    def is_finite(self) -> bool:
        return bool(np.isfinite([self.ref_energy, self.est_energy, self.est_error, self.mix_error,
                                 self.true_energy, self.res_energy]).all())


def _pair_sums(s: np.ndarray, e: np.ndarray, x: np.ndarray, eps: float, scratch: np.ndarray | None) -> PairSums:
    """Compute :class:`PairSums` of float64 signals; ``scratch`` (shaped like ``s``) avoids allocation."""
    d = np.empty(np.broadcast_shapes(s.shape, e.shape, x.shape)) if scratch is None else scratch
    ref_energy = _dot(s, s)
    est_energy = _dot(e, e)
    np.subtract(e, s, out=d)
    est_error = _dot(d, d)
    np.subtract(x, s, out=d)
    mix_error = _dot(d, d)
    a = (eps + _dot(s, e)) / (ref_energy + eps)
    np.multiply(s, a[..., None] if np.ndim(a) else a, out=d)  # e_true
    true_energy = _dot(d, d)
    np.subtract(e, d, out=d)  # e_res
    res_energy = _dot(d, d)
    return PairSums(s.shape[-1], eps, ref_energy, est_energy, est_error, mix_error, true_energy, res_energy)


def challenge_metrics(reference, estimate, mixture, eps: float | None = None) -> dict[str, np.ndarray]:
    """``{"sdr", "sdri", "si_sdr"}`` in dB in one pass; equal to :func:`sdr`, :func:`sdri`, :func:`si_sdr`."""
    eps = _eps_of(reference, eps)
    s, e, x = _as_signals(reference=reference, estimate=estimate, mixture=mixture)
    sums = _pair_sums(s, e, x, eps, None)
    return {"sdr": sums.sdr, "sdri": sums.sdri, "si_sdr": sums.si_sdr}


class PairScorer:
    """Computes :class:`PairSums` of one ``(time,)`` pair at a time, reusing float64 buffers.

    For scoring thousands of files: nothing is allocated per pair once the buffers have grown to
    the longest signal. Inputs of any float dtype are copied (exactly) into float64 buffers.
    Not thread-safe: use one scorer per thread. Callers check :meth:`PairSums.is_finite`.
    """

    def __init__(self, eps: float = ORGANIZERS_EPS) -> None:
        self.eps = float(eps)
        self._buffers = np.empty((4, 0))

    def __call__(self, reference: np.ndarray, estimate: np.ndarray, mixture: np.ndarray) -> PairSums:
        n = reference.shape[-1]
        if estimate.shape[-1] != n or mixture.shape[-1] != n:
            raise ValueError(f"lengths differ: reference {n}, estimate {estimate.shape[-1]}, mixture {mixture.shape[-1]}")
        if self._buffers.shape[1] < n:
            self._buffers = np.empty((4, n))
        s, e, x, d = (self._buffers[k, :n] for k in range(4))
        np.copyto(s, reference)
        np.copyto(e, estimate)
        np.copyto(x, mixture)
        return _pair_sums(s, e, x, self.eps, d)


def bss_sdr(reference, estimate) -> np.ndarray:
    """bss_eval v3 SDR in dB (512-tap distortion filter), one source per pair, no permutation.

    The same numbers as ``mir_eval.separation.bss_eval_sources(s, ŝ, compute_permutation=False)``
    (:func:`bss_sdr_mir_eval`, the reference in the tests), with mir_eval's own arithmetic done
    once instead of twice: for a single source mir_eval projects the estimate on the delayed
    references twice (the "spatial" and the "interference" projections are the same
    computation). Here, with ``N`` samples, ``L = 512`` and ``F = 2^ceil(log2(N + L - 1))``:

    - ``G`` (L x L, the transpose of a Toeplitz matrix, as mir_eval leaves it) from the autocorrelation of ``s`` (zero-padded, FFT of length F);
      ``D`` from the cross-correlation of ``s`` and ``ŝ`` (same FFT);
    - ``C = solve(G, D)`` (LU, least squares if singular), ``p = C * s`` (the projection, length
      ``N + L - 1``);
    - ``SDR = 10*log10(||p||^2 / ||ŝ_padded - p||^2)``.

    The same FFT routine (``scipy.fftpack``), FFT length and solver as mir_eval matter: where the
    reference's delayed copies are nearly dependent (tones, band-limited sounds), ``G`` is
    singular to machine precision and any other exact-in-theory solver gives other digits
    (seen: 25.5 dB against mir_eval's 22.6 dB on a generated tone). In those cases mir_eval's own
    digits also depend on the number of BLAS threads LAPACK's solver runs on (``score`` runs one
    per worker), so two runs of mir_eval itself can differ there. NaN where the reference or
    the estimate is silent (all zeros), which bss_eval does not define.
    """
    return _per_pair(reference, estimate, lambda r, x: _bss_sdr_one(r, x, BSS_FILTER_TAPS))


def _bss_sdr_one(s: np.ndarray, e: np.ndarray, flen: int) -> float:
    import scipy.fftpack
    from scipy.linalg import toeplitz
    from scipy.signal import fftconvolve

    n = len(s)
    s_pad = np.concatenate((s, np.zeros(flen - 1)))
    e_pad = np.concatenate((e, np.zeros(flen - 1)))
    n_fft = int(2 ** np.ceil(np.log2(n + flen - 1.0)))
    sf = scipy.fftpack.fft(s_pad, n=n_fft)
    sef = scipy.fftpack.fft(e_pad, n=n_fft)
    ssf = np.real(scipy.fftpack.ifft(sf * np.conj(sf)))
    # mir_eval writes the block and then its transpose over it (one source: the same block), so G is
    # the transpose of this Toeplitz matrix; with a singular G that rounding-level difference matters
    G = toeplitz(np.hstack((ssf[0], ssf[-1:-flen:-1])), r=ssf[:flen]).T
    ssef = np.real(scipy.fftpack.ifft(sf * np.conj(sef)))
    D = np.hstack((ssef[0], ssef[-1:-flen:-1]))
    try:
        C = np.linalg.solve(G, D)
    except np.linalg.LinAlgError:
        C = np.linalg.lstsq(G, D, rcond=-1)[0]
    sproj = fftconvolve(C, s_pad)[: n + flen - 1]
    num = float(np.sum(sproj**2))
    den = float(np.sum((e_pad - sproj) ** 2))
    if den == 0:
        return float("inf")
    return float(10 * np.log10(num / den))


def bss_sdr_mir_eval(reference, estimate) -> np.ndarray:
    """:func:`bss_sdr` through ``mir_eval.separation.bss_eval_sources`` itself (the reference; ~2x slower)."""
    import warnings

    from mir_eval.separation import bss_eval_sources

    def one(r: np.ndarray, x: np.ndarray) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # bss_eval_sources is deprecated in mir_eval 0.8, not wrong
            return bss_eval_sources(r[None], x[None], compute_permutation=False)[0][0]

    return _per_pair(reference, estimate, one)


def _per_pair(reference, estimate, one) -> np.ndarray:
    """``one(s, ŝ)`` for each pair (validated, broadcast); NaN where either signal is silent."""
    s, e = _as_signals(reference=reference, estimate=estimate)
    s, e = np.broadcast_arrays(np.atleast_2d(s), np.atleast_2d(e))
    out = np.full(s.shape[0], np.nan)
    for i in range(s.shape[0]):
        if s[i].any() and e[i].any():
            out[i] = one(s[i], e[i])
    return out if np.ndim(reference) == 2 or np.ndim(estimate) == 2 else out[0]
