"""Tests for unlearn_theory.contraction (docs/theory.md §5): θ, contraction, model-clipping recursion."""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unlearn_theory import contraction as c
from unlearn_theory.errors import InvalidParameterError


def _mp_theta(eps, r, dps=60):
    """θ_ε(r) = Φ(r/2 − ε/r) − e^ε Φ(−r/2 − ε/r), 60-digit mpmath oracle."""
    with mp.workdps(dps):
        e, rr = mp.mpf(eps), mp.mpf(r)
        return mp.ncdf(rr / 2 - e / rr) - mp.exp(e) * mp.ncdf(-rr / 2 - e / rr)


@pytest.mark.parametrize(
    "eps,r",
    [(0.0, 0.5), (0.5, 1.0), (1.0, 2.0), (3.0, 0.3), (10.0, 1.5), (50.0, 4.0), (200.0, 5.0)],
)
def test_log_theta_matches_mpmath(eps, r):
    want = mp.log(_mp_theta(eps, r))
    got = c.log_theta(eps, r)
    assert math.isfinite(got)
    assert abs(got - float(want)) <= 1e-9 * max(1.0, abs(float(want)))


def test_theta_total_variation_and_zero():
    for r in (0.1, 1.0, 3.0):
        tv = 2 * float(mp.ncdf(r / 2)) - 1
        assert c.theta(0.0, r) == pytest.approx(tv, rel=1e-12)
    assert c.log_theta(1.0, 0.0) == -math.inf
    assert np.all(np.diff(c.theta(1.0, np.array([0.1, 0.5, 1.0, 2.0]))) > 0)
    assert np.all(np.diff(c.theta(np.array([0.0, 0.5, 1.0, 2.0]), 1.0)) < 0)


MC = dict(clip_initial=1.0, clip_model=1.0)


def _mp_refined(eps, c0, c2, s, steps, s0=None):
    """Independent 60-digit re-implementation of the refined recursion."""
    with mp.workdps(60):
        d = _mp_theta(eps, 2 * c0 / s0) if s0 else mp.mpf(1)
        out = [d]
        for _ in range(steps):
            et = mp.log(1 + (mp.exp(eps) - 1) / d)
            d = d * _mp_theta(et, 2 * c2 / s)
            out.append(d)
        return out


@pytest.mark.parametrize("s0", [None, 2.0])
def test_refined_recursion_matches_mpmath(s0):
    got = c.model_clipping_log_deltas(
        epsilon=1.0, noise_std=3.0, steps=6, initial_noise_std=s0, **MC
    )
    want = _mp_refined(1.0, 1.0, 1.0, 3.0, 6, s0)
    for g, w in zip(got, want):
        lw = float(mp.log(w))
        assert g >= lw - 1e-12  # upper bound
        if lw > -1e6:  # below e^{-1e6} the recursion clamps (sound: it only raises δ)
            assert g == pytest.approx(lw, rel=1e-8, abs=1e-10)


def test_recursion_log_space_far_below_underflow():
    ld = c.model_clipping_log_deltas(epsilon=2.0, noise_std=20.0, steps=8, **MC)
    assert np.all(np.isfinite(ld))
    assert ld[-1] < -1000  # δ far below 1e-300, still a finite log
    assert np.all(np.diff(ld) <= 0)


@settings(max_examples=25, deadline=None)
@given(
    eps=st.floats(0.0, 5.0),
    s=st.floats(0.5, 20.0),
    c2=st.floats(0.1, 5.0),
    s0=st.one_of(st.none(), st.floats(0.1, 10.0)),
)
def test_refined_le_plain_le_tv_and_monotone(eps, s, c2, s0):
    kw = dict(epsilon=eps, clip_initial=1.0, clip_model=c2, noise_std=s, steps=12)
    kw["initial_noise_std"] = s0
    ref = c.model_clipping_log_deltas(**kw)
    plain = c.plain_log_deltas(**kw)
    tv = c.total_variation_log_deltas(**kw)
    tol = 1e-8 * (1 + np.abs(tv))  # rounding margins differ between the three forms
    assert np.all(ref <= plain + tol)
    assert np.all(plain <= tv + tol)
    assert np.all(np.diff(ref) <= 1e-12)
    # monotone in noise: more noise, smaller δ_T
    more = c.model_clipping_log_deltas(**{**kw, "noise_std": s * 1.5})
    assert more[-1] <= ref[-1] + 1e-9
    # monotone in epsilon
    larger = c.model_clipping_log_deltas(**{**kw, "epsilon": eps + 0.5})
    assert larger[-1] <= ref[-1] + 1e-9


def _exact_one_step_hockey(eps, c0, s0, c2, s):
    """Exact E_{e^ε} after σ0 noise, projection to [−C2, C2] and σ noise, 1-D worst case
    starts ±C0, computed on a fine grid (atoms of the projection handled exactly)."""
    grid = np.linspace(-c2, c2, 3001)
    h = grid[1] - grid[0]
    ys = np.linspace(-c2 - 12 * s, c2 + 12 * s, 3001)
    hy = ys[1] - ys[0]
    from scipy.stats import norm

    def density(x0):
        # law of Π(X0) with X0 ~ N(x0, s0²): interior density + atoms at ±C2
        inner = norm.pdf(grid, loc=x0, scale=s0)
        inner[0] /= 2.0  # trapezoid end weights
        inner[-1] /= 2.0
        lo, hi = norm.cdf(-c2, loc=x0, scale=s0), norm.sf(c2, loc=x0, scale=s0)
        out = (norm.pdf(ys[:, None], loc=grid[None, :], scale=s) @ inner) * h
        out += lo * norm.pdf(ys, loc=-c2, scale=s) + hi * norm.pdf(ys, loc=c2, scale=s)
        return out

    p, q = density(c0), density(-c0)
    return float(np.sum(np.maximum(p - math.exp(eps) * q, 0.0)) * hy)


@pytest.mark.parametrize("eps,s0,c2,s", [(0.5, 1.0, 1.0, 1.0), (0.2, 2.0, 0.5, 0.8)])
def test_refined_step_dominates_exact_toy(eps, s0, c2, s):
    exact = _exact_one_step_hockey(eps, 1.0, s0, c2, s)
    bound = math.exp(
        c.model_clipping_log_deltas(
            epsilon=eps, clip_initial=1.0, clip_model=c2, noise_std=s, steps=1, initial_noise_std=s0
        )[-1]
    )
    assert exact <= bound * (1 + 1e-4) + 1e-7
    assert exact > 0


def test_fewest_steps_is_fewest():
    kw = dict(epsilon=1.0, delta=1e-5, clip_initial=2.0, clip_model=1.0, noise_std=1.0)
    T = c.model_clipping_steps(**kw)
    ld = c.model_clipping_log_deltas(
        epsilon=1.0, clip_initial=2.0, clip_model=1.0, noise_std=1.0, steps=T
    )
    assert ld[-1] <= math.log(1e-5) < ld[-2]
    assert c.model_clipping_steps(**kw, refined=False) >= T


def test_noise_std_calibration_feasible_and_tight():
    kw = dict(epsilon=1.0, delta=1e-5, steps=10, clip_initial=1.0, clip_model=1.0)
    s = c.model_clipping_noise_std(**kw, rtol=1e-8)
    lk = dict(epsilon=1.0, clip_initial=1.0, clip_model=1.0, steps=10)
    assert c.model_clipping_log_deltas(noise_std=s, **lk)[-1] <= math.log(1e-5)
    assert c.model_clipping_log_deltas(noise_std=s * (1 - 1e-6), **lk)[-1] > math.log(1e-5)
    assert c.model_clipping_noise_std(**kw, refined=False) >= s


def test_epsilon_inverse_feasible():
    kw = dict(delta=1e-6, clip_initial=1.0, clip_model=1.0, noise_std=2.0, steps=5)
    e = c.model_clipping_epsilon(**kw)
    lk = dict(clip_initial=1.0, clip_model=1.0, noise_std=2.0, steps=5)
    assert c.model_clipping_log_deltas(epsilon=e, **lk)[-1] <= math.log(1e-6)
    assert c.model_clipping_log_deltas(epsilon=e * (1 - 1e-6), **lk)[-1] > math.log(1e-6)


@pytest.mark.parametrize(
    "kw,name",
    [
        (dict(epsilon=-1.0), "epsilon"),
        (dict(noise_std=0.0), "noise_std"),
        (dict(clip_model=float("nan")), "clip_model"),
        (dict(steps=1.5), "steps"),
        (dict(initial_noise_std=-1.0), "initial_noise_std"),
    ],
)
def test_bad_input_names_argument(kw, name):
    base = dict(epsilon=1.0, clip_initial=1.0, clip_model=1.0, noise_std=1.0, steps=3)
    base.update(kw)
    with pytest.raises(InvalidParameterError, match=name):
        c.model_clipping_log_deltas(**base)


def test_too_little_noise_names_noise_std():
    with pytest.raises(InvalidParameterError, match="noise_std"):
        c.model_clipping_steps(
            epsilon=1.0, delta=1e-5, clip_initial=20, clip_model=20, noise_std=4, max_steps=50
        )
