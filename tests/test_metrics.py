"""lasskit.metrics against a straight-line implementation of the organizers' formulas.

The reference functions below follow ../shared/dcase2024_metadata/README.md literally, one pair
at a time: mean-based SDR with 1e-10 floors, sum-based SI-SDR with the dtype's epsilon.
"""

from __future__ import annotations

import numpy as np
import pytest

from lasskit import metrics

TOL = 1e-9  # dB, float64


def ref_sdr(ref, est):
    numerator = max(np.mean(ref ** 2), 1e-10)
    denominator = max(np.mean((est - ref) ** 2), 1e-10)
    return 10 * np.log10(numerator / denominator)


def ref_si_sdr(ref, est):
    eps = np.finfo(ref.dtype).eps
    r = ref.reshape(-1, 1)
    e = est.reshape(-1, 1)
    a = (eps + np.dot(r.T, e)) / (np.dot(r.T, r) + eps)
    e_true = a * r
    e_res = e - e_true
    return float(10 * np.log10((eps + (e_true ** 2).sum()) / (eps + (e_res ** 2).sum())))


def ref_sdri(ref, est, mix):
    return ref_sdr(ref, est) - ref_sdr(ref, mix)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def _cases(rng, n=4000):
    """(name, reference, estimate, mixture) float64 triples covering the edge cases."""
    s = rng.standard_normal(n) * 0.3
    noise = rng.standard_normal(n) * 0.2
    mix = s + noise
    zero = np.zeros(n)
    return [
        ("random", s, rng.standard_normal(n) * 0.1, mix),
        ("partial", s, s + 0.3 * noise, mix),
        ("scaled up", s, 2.5 * s, mix),
        ("scaled down", s, 0.01 * s, mix),
        ("negated", s, -s, mix),
        ("identical", s, s.copy(), mix),
        ("passthrough", s, mix.copy(), mix),
        ("silent estimate", s, zero, mix),
        ("silent reference", zero, rng.standard_normal(n) * 0.1, noise),
        ("both silent", zero, zero, noise),
        ("tiny reference", s * 1e-7, s * 1e-7 + noise * 1e-8, mix),
        ("loud", s * 1e3, s * 1e3 + noise, mix * 1e3),
    ]


def test_each_metric_matches_the_organizers_formulas_case_by_case(rng):
    for name, s, e, x in _cases(rng):
        assert abs(metrics.sdr(s, e) - ref_sdr(s, e)) < TOL, name
        assert abs(metrics.si_sdr(s, e) - ref_si_sdr(s, e)) < TOL, name
        assert abs(metrics.sdri(s, e, x) - ref_sdri(s, e, x)) < TOL, name
        got = metrics.challenge_metrics(s, e, x)
        assert abs(got["sdr"] - ref_sdr(s, e)) < TOL, name
        assert abs(got["sdri"] - ref_sdri(s, e, x)) < TOL, name
        assert abs(got["si_sdr"] - ref_si_sdr(s, e)) < TOL, name


def test_vectorised_over_a_batch(rng):
    cases = _cases(rng, n=20000)  # longer than one 8192-sample block of the dot products, not a multiple
    s = np.stack([c[1] for c in cases])
    e = np.stack([c[2] for c in cases])
    x = np.stack([c[3] for c in cases])
    want_sdr = np.array([ref_sdr(a, b) for a, b in zip(s, e)])
    want_si = np.array([ref_si_sdr(a, b) for a, b in zip(s, e)])
    want_sdri = np.array([ref_sdri(a, b, c) for a, b, c in zip(s, e, x)])
    assert metrics.sdr(s, e).shape == (len(cases),)
    np.testing.assert_allclose(metrics.sdr(s, e), want_sdr, rtol=0, atol=TOL)
    np.testing.assert_allclose(metrics.si_sdr(s, e), want_si, rtol=0, atol=TOL)
    np.testing.assert_allclose(metrics.sdri(s, e, x), want_sdri, rtol=0, atol=TOL)
    both = metrics.challenge_metrics(s, e, x)
    np.testing.assert_allclose(both["si_sdr"], want_si, rtol=0, atol=TOL)
    # a single reference broadcasts against a batch of estimates
    one = metrics.si_sdr(s[1], e)
    np.testing.assert_allclose(one, [ref_si_sdr(s[1], b) for b in e], rtol=0, atol=TOL)


def test_one_dimensional_input_gives_a_scalar(rng):
    s, e = rng.standard_normal(100), rng.standard_normal(100)
    assert np.ndim(metrics.sdr(s, e)) == 0
    assert np.ndim(metrics.si_sdr(s, e)) == 0
    assert isinstance(float(metrics.sdri(s, e, e)), float)


def test_known_snr_gives_that_sdr_and_si_sdr(rng):
    n = 16000
    s = rng.standard_normal(n) * 0.2
    w = rng.standard_normal(n)
    w -= (w @ s) / (s @ s) * s  # orthogonal to the reference: SI-SDR equals SDR
    for snr in (-12.0, 0.0, 7.0, 25.0):
        noise = w * np.sqrt(np.mean(s ** 2) / (np.mean(w ** 2) * 10 ** (snr / 10)))
        assert abs(metrics.sdr(s, s + noise) - snr) < TOL
        assert abs(metrics.si_sdr(s, s + noise) - snr) < 1e-6  # eps = 2.2e-16 against sums of ~640
        # the mixture at 0 dB improves by exactly snr - 0
        mix = s + noise * 10 ** (snr / 20)
        assert abs(metrics.sdri(s, s + noise, mix) - snr) < TOL


def test_documented_edge_case_values(rng):
    n = 8000
    s = rng.standard_normal(n) * 0.5
    e = rng.standard_normal(n) * 0.1
    zero = np.zeros(n)
    p = np.mean(s ** 2)
    eps64 = np.finfo(np.float64).eps
    # identical: the floor-limited maximum
    assert metrics.sdr(s, s) == pytest.approx(10 * np.log10(p / 1e-10), abs=TOL)
    assert metrics.si_sdr(s, s) == pytest.approx(10 * np.log10((eps64 + np.sum(s ** 2)) / eps64), abs=TOL)
    # silent estimate: 0 dB for both
    assert metrics.sdr(s, zero) == 0.0
    assert abs(metrics.si_sdr(s, zero)) < TOL
    # silent reference: the 1e-10 floor in the numerator
    assert metrics.sdr(zero, e) == pytest.approx(10 * np.log10(1e-10 / np.mean(e ** 2)), abs=TOL)
    assert metrics.si_sdr(zero, e) == pytest.approx(10 * np.log10(eps64 / (eps64 + np.sum(e ** 2))), abs=TOL)
    assert metrics.sdr(zero, zero) == 0.0 and metrics.si_sdr(zero, zero) == 0.0
    # passthrough: SDRi exactly zero
    assert metrics.sdri(s, s + e, s + e) == 0.0


def test_si_sdr_epsilon_is_the_dtype_s(rng):
    s32 = (rng.standard_normal(4000) * 0.3).astype(np.float32)
    eps32 = float(np.finfo(np.float32).eps)
    want = 10 * np.log10((eps32 + np.sum(s32.astype(np.float64) ** 2)) / eps32)
    assert metrics.si_sdr(s32, s32) == pytest.approx(want, abs=TOL)
    assert abs(metrics.si_sdr(s32, s32) - ref_si_sdr(s32, s32)) < 1e-4  # the organizers' float32 arithmetic
    assert metrics.ORGANIZERS_EPS == eps32
    # float32 input is computed in float64: the organizers' float32 arithmetic agrees to ~1e-4 dB
    e32 = (s32 + 0.5 * rng.standard_normal(4000)).astype(np.float32)
    assert abs(metrics.si_sdr(s32, e32) - ref_si_sdr(s32, e32)) < 1e-4
    assert abs(metrics.sdr(s32, e32) - ref_sdr(s32, e32)) < 1e-4


def test_pair_scorer_equals_the_vectorised_functions(rng):
    scorer = metrics.PairScorer(metrics.ORGANIZERS_EPS)
    for n in (3000, 5000, 2000):  # buffers grow, then are reused for a shorter pair
        s = (rng.standard_normal(n) * 0.3).astype(np.float32)
        e = (s + 0.2 * rng.standard_normal(n)).astype(np.float32)
        x = (s + 0.5 * rng.standard_normal(n)).astype(np.float32)
        sums = scorer(s, e, x)
        want = metrics.challenge_metrics(s, e, x, eps=metrics.ORGANIZERS_EPS)
        assert float(sums.sdr) == pytest.approx(float(want["sdr"]), abs=1e-12)
        assert float(sums.sdri) == pytest.approx(float(want["sdri"]), abs=1e-12)
        assert float(sums.si_sdr) == pytest.approx(float(want["si_sdr"]), abs=1e-12)
        assert sums.is_finite()
    with pytest.raises(ValueError, match="lengths differ"):
        scorer(s, e[:-1], x)


def test_bad_input_is_a_clear_error(rng):
    s = rng.standard_normal(100)
    with pytest.raises(ValueError, match="estimate has 99 samples but reference has 100"):
        metrics.sdr(s, s[:99])
    bad = s.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="estimate holds NaN"):
        metrics.si_sdr(s, bad)
    bad[3] = np.inf
    with pytest.raises(ValueError, match="mixture holds NaN"):
        metrics.sdri(s, s, bad)
    with pytest.raises(ValueError, match=r"\(time,\) or \(batch, time\)"):
        metrics.sdr(s.reshape(1, 1, -1), s.reshape(1, 1, -1))
    with pytest.raises(ValueError, match="empty"):
        metrics.sdr(np.zeros(0), np.zeros(0))


def test_bss_sdr_through_mir_eval(rng):
    n = 4000
    s = rng.standard_normal(n) * 0.3
    noise = rng.standard_normal(n) * 0.1
    got = metrics.bss_sdr(s, s + noise)
    assert np.ndim(got) == 0
    # bss_eval allows a 512-tap filter of the reference: at least the plain SDR, within a few dB
    assert metrics.sdr(s, s + noise) - 0.5 < got < metrics.sdr(s, s + noise) + 3
    assert metrics.bss_sdr(s, 0.5 * s) > 80  # a gain is an allowed distortion
    batch = metrics.bss_sdr(np.stack([s, np.zeros(n)]), np.stack([s + noise, noise]))
    assert batch.shape == (2,) and batch[0] == pytest.approx(got) and np.isnan(batch[1])
