"""Ridge regression by Langevin dynamics: laws, leave-one-out, exact Rényi and hockey-stick.

Oracles: brute-force refits; the ULA moment recursion; mpmath (50 digits) determinants and
inverses for the Rényi closed form, mpmath quadrature of ∫(p − e^ε q)₊ for the hockey-stick.
"""

from __future__ import annotations

import math
import warnings

import mpmath as mp
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from unlearn_theory import conversions, gaussian, ridge
from unlearn_theory import ridge as R
from unlearn_theory.errors import InvalidParameterError, NumericalPrecisionError

from .test_gaussian import DPS, _ratio


def data(seed, n=60, d=4, scale=1.0):
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    X = rng.normal(size=(n, d)) * scale
    y = X @ rng.normal(size=d) + rng.normal(size=n)
    return X, y


def random_spd(rng, d, lo=0.3, hi=3.0):
    Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return (Q * rng.uniform(lo, hi, size=d)) @ Q.T


def mp_renyi(alpha, m0, S0, m1, S1):
    """Closed form of docs/theory.md §11.3 with mpmath determinants/inverse (50 digits)."""
    with mp.workdps(50):
        a = mp.mpf(alpha)
        A0, A1 = mp.matrix(S0.tolist()), mp.matrix(S1.tolist())
        Sa = a * A1 + (1 - a) * A0
        dm = mp.matrix((np.asarray(m0) - np.asarray(m1)).tolist())
        quad = (dm.T * mp.inverse(Sa) * dm)[0]
        val = a / 2 * quad - (
            mp.log(mp.det(Sa)) - (1 - a) * mp.log(mp.det(A0)) - a * mp.log(mp.det(A1))
        ) / (2 * (a - 1))
        return float(val)


# ---------------------------------------------------------------------------------------------
# fit, leave-one-out


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 10**6), n=st.integers(3, 40), d=st.integers(1, 6), lam=st.floats(1e-3, 10.0)
)
def test_loo_matches_refits(seed, n, d, lam):
    X, y = data(seed, n, d)
    loo = R.leave_one_out(X, y, regularization=lam)
    assert np.all((loo.leverage > 0) & (loo.leverage < 1))
    for i in {0, n // 2, n - 1}:
        keep = np.arange(n) != i
        A = X[keep].T @ X[keep] + lam * np.eye(d)
        th = np.linalg.solve(A, X[keep].T @ y[keep])
        np.testing.assert_allclose(loo.theta_minus(i), th, rtol=1e-8, atol=1e-10)
        assert loo.shift_norms[i] == pytest.approx(
            np.linalg.norm(loo.theta_hat - th), rel=1e-7, abs=1e-12
        )


def test_group_deletion_matches_refit():
    X, y = data(1, 50, 5)
    S = [3, 17, 40]
    th = R.leave_group_out(X, y, S, regularization=0.5)
    keep = np.setdiff1d(np.arange(50), S)
    ref = np.linalg.solve(X[keep].T @ X[keep] + 0.5 * np.eye(5), X[keep].T @ y[keep])
    np.testing.assert_allclose(th, ref, rtol=1e-9)
    np.testing.assert_allclose(R.fit(X, y, regularization=0.5).without(S).theta_hat, ref, rtol=1e-9)


def test_ula_laws_match_the_moment_recursion():
    X, y = data(2, 30, 3)
    f = R.fit(X, y, regularization=1.0)
    A, b = f.precision, X.T @ y
    eta, tau, t = 0.5 / f.eigenvalues[-1], 0.3, 37
    rng = np.random.default_rng(np.random.SeedSequence(9))
    m, S = rng.normal(size=3), random_spd(rng, 3)
    law = f.ula_law(learning_rate=eta, temperature=tau, steps=t, initial_mean=m, initial_cov=S)
    B = np.eye(3) - eta * A
    for _ in range(t):
        m = B @ m + eta * b
        S = B @ S @ B + 2 * eta * tau * np.eye(3)
    np.testing.assert_allclose(law.mean, m, rtol=1e-10)
    np.testing.assert_allclose(law.cov, S, rtol=1e-9)
    # stationary: fixed point of the recursion; continuous-time limit τA⁻¹
    st_law = f.stationary_law(temperature=tau, learning_rate=eta)
    np.testing.assert_allclose(
        B @ st_law.cov @ B + 2 * eta * tau * np.eye(3), st_law.cov, rtol=1e-10
    )
    np.testing.assert_allclose(
        f.stationary_law(temperature=tau).cov, tau * np.linalg.inv(A), rtol=1e-10
    )


# ---------------------------------------------------------------------------------------------
# exact Rényi


def test_gaussian_renyi_against_mpmath_and_threshold():
    rng = np.random.default_rng(np.random.SeedSequence(4))
    for d in (1, 3, 5):
        S0, S1 = random_spd(rng, d), random_spd(rng, d)
        m0, m1 = rng.normal(size=d), rng.normal(size=d)
        amax = R.renyi_order_threshold(S0, S1)
        with mp.workdps(50):
            ev = mp.eig(mp.inverse(mp.matrix(S0.tolist())) * mp.matrix(S1.tolist()))[0]
            lmin = min(float(mp.re(e)) for e in ev)
        assert amax == (math.inf if lmin >= 1 else pytest.approx(1 / (1 - lmin), rel=1e-9))
        orders = [1.1, 1.5, 2.0, 3.0] + (
            [0.5 * (1 + amax), 0.999 * amax] if math.isfinite(amax) else [10.0]
        )
        got = R.gaussian_renyi(orders, m0, S0, m1, S1)
        for a, g in zip(orders, got):
            if a < amax:
                assert g == pytest.approx(mp_renyi(a, m0, S0, m1, S1), rel=1e-8)
        if math.isfinite(amax):
            past = R.gaussian_renyi([amax * 1.0001, amax * 10], m0, S0, m1, S1)
            assert np.all(np.isinf(past)) and not np.any(np.isnan(past))


def test_loo_renyi_reduction_matches_dense_and_is_infinite_past_one_over_leverage():
    X, y = data(5, 40, 3)
    X[7] *= 6.0  # a high-leverage point
    loo = R.leave_one_out(X, y, regularization=0.7)
    f, tau = loo.fit, 0.4
    orders = np.array([1.2, 2.0, 5.0])
    div = R.loo_renyi(orders, loo, temperature=tau)
    assert div.kind == "exact"
    for i in (0, 7):
        p = f.stationary_law(temperature=tau)
        q = f.without([i]).stationary_law(temperature=tau)
        np.testing.assert_allclose(
            div.forward[i], R.gaussian_renyi(orders, p.mean, p.cov, q.mean, q.cov), rtol=1e-7
        )
        ok = orders < 1 / loo.leverage[i]
        np.testing.assert_allclose(
            div.reverse[i][ok],
            R.gaussian_renyi(orders[ok], q.mean, q.cov, p.mean, p.cov),
            rtol=1e-7,
        )
    h7 = loo.leverage[7]
    assert div.order_threshold[7] == pytest.approx(1 / h7)
    far = R.loo_renyi([1.01 / h7, 2 / h7], loo, temperature=tau)
    assert np.all(np.isinf(far.reverse[7])) and np.all(np.isfinite(far.forward[7]))
    assert not np.any(np.isnan(far.reverse))


# ---------------------------------------------------------------------------------------------
# exact hockey-stick


def mp_hockey_1d(eps, m0, v0, m1, v1):
    with mp.workdps(40):
        g = mp.e ** mp.mpf(eps)

        def integrand(x):
            return max(mp.npdf(x, m0, mp.sqrt(v0)) - g * mp.npdf(x, m1, mp.sqrt(v1)), 0)

        # integrate between the (float) roots so the kinks are nodes
        a2 = 0.5 * (1 / v1 - 1 / v0)
        a1 = m0 / v0 - m1 / v1
        a0 = 0.5 * (m1**2 / v1 - m0**2 / v0) + 0.5 * math.log(v1 / v0) - eps
        pts = [-mp.inf, m0, mp.inf]
        if abs(a2) > 0:
            disc = a1 * a1 - 4 * a2 * a0
            if disc > 0:
                pts += [(-a1 - math.sqrt(disc)) / (2 * a2), (-a1 + math.sqrt(disc)) / (2 * a2)]
        elif a1 != 0:
            pts.append(-a0 / a1)
        pts = sorted(set(pts), key=lambda t: float(t))
        return float(mp.quad(integrand, pts))


@pytest.mark.parametrize(
    "eps, m0, v0, m1, v1",
    [
        (0.5, 0.0, 1.0, 0.7, 1.0),
        (1.0, 0.0, 1.0, 0.3, 2.5),
        (1.0, 0.0, 2.5, 0.3, 1.0),
        (0.0, 0.2, 1.0, -0.1, 0.5),
        (3.0, 0.0, 1.0, 1.0, 0.2),
        (2.0, 1.0, 0.3, 0.0, 0.31),
    ],
)
def test_hockey_stick_1d_against_mpmath(eps, m0, v0, m1, v1):
    got = R.hockey_stick_1d(eps, mean0=m0, var0=v0, mean1=m1, var1=v1)
    oracle = mp_hockey_1d(eps, m0, v0, m1, v1)
    assert got >= oracle * (1 - 1e-12)
    assert got == pytest.approx(oracle, rel=1e-8)


def test_hockey_stick_small_delta_and_equal_variance():
    # equal variances: the exact Gaussian profile
    for eps in (0.0, 1.0, 8.0):
        got = R.hockey_stick_1d(eps, mean0=0.0, var0=1.0, mean1=1.3, var1=1.0)
        assert got == pytest.approx(float(gaussian.delta(eps, mu=1.3)), rel=1e-8)
    # tiny δ with unequal variances: against mpmath tail formulas at 60 digits
    got = R.hockey_stick_1d(6.0, mean0=0.0, var0=1.0, mean1=0.5, var1=0.95)
    assert 0 < got < 1e-6
    with mp.workdps(60):
        oracle = mp_hockey_1d(6.0, 0.0, 1.0, 0.5, 0.95)
    assert got == pytest.approx(oracle, rel=1e-6)
    # var1 > var0: the privacy loss is bounded (sup L ≈ 2.52 here), so δ(6) is exactly 0
    assert R.hockey_stick_1d(6.0, mean0=0.0, var0=1.0, mean1=0.5, var1=1.05) == 0.0


def test_rank_one_hockey_stick_with_shift_against_mpmath():
    m0, m1 = np.zeros(2), np.array([0.3, 0.8])
    S0, S1 = np.eye(2), np.diag([1.7, 1.0])
    mu, c1, l1 = 0.8, -0.3, 1.7
    for eps in (0.0, 1.0, 3.0):
        res = R.gaussian_hockey_stick(eps, m0, S0, m1, S1)
        with mp.workdps(30):

            def g(tau):
                return mp.ncdf(mu / 2 - tau / mu) - mp.e**tau * mp.ncdf(-mu / 2 - tau / mu)

            def L1(y):
                return -y * y / 2 + (y + c1) ** 2 / (2 * l1) + mp.log(l1) / 2

            oracle = float(
                mp.quad(lambda y, e=eps: mp.npdf(y) * g(e - L1(y)), [-mp.inf, -5, 0, 5, mp.inf])
            )
        assert res.kind == "exact" and "Fourier" in res.source
        assert oracle * (1 - 1e-12) <= res.value <= oracle * (1 + 1.1e-6)
    # two non-unit directions: certified Fourier inversion (kind "exact" within rtol),
    # checked against 2-D quadrature of ∫(p₀ − e^ε p₁)₊ (product densities)
    from scipy import integrate

    S1b = np.diag([1.7, 0.5])
    for eps in (0.5, 2.0):
        res = R.gaussian_hockey_stick(eps, m0, S0, m1, S1b)
        assert res.kind == "exact" and res.details["error_bound"] <= 1e-6 * res.value

        def f(x2, x1, e=eps):
            p0 = math.exp(-(x1 * x1 + x2 * x2) / 2) / (2 * math.pi)
            q = math.exp(-((x1 - 0.3) ** 2) / 3.4 - (x2 - 0.8) ** 2 / 1.0) / (
                2 * math.pi * math.sqrt(0.85)
            )
            return max(p0 - math.exp(e) * q, 0.0)

        ref = integrate.dblquad(f, -12, 12, -12, 12, epsabs=1e-11)[0]
        assert ref - 1e-10 <= res.value <= ref * (1 + 1e-5) + 1e-10


# ---------------------------------------------------------------------------------------------
# certified hockey-stick in d dimensions (Fourier inversion) against mpmath


def mp_hs_whitened(log_gamma, c, ell):
    """E_γ(N(0,1) ‖ N(−c, ℓ)) = P₀(S) − γP₁(S), S = {log p₀/p₁ > log γ} (closed form, mpmath)."""
    a2 = (1 / ell - 1) / 2
    a1 = c / ell
    a0 = c * c / (2 * ell) + mp.log(ell) / 2 - log_gamma
    g = mp.e**log_gamma

    def prob(lo, hi, inside, m, s):
        if inside:
            a, b = (lo - m) / s, (hi - m) / s
            return mp.ncdf(-a) - mp.ncdf(-b) if a > 0 else mp.ncdf(b) - mp.ncdf(a)
        return mp.ncdf((lo - m) / s) + mp.ncdf(-(hi - m) / s)

    def diff(lo, hi, inside):
        return max(prob(lo, hi, inside, 0, 1) - g * prob(lo, hi, inside, -c, mp.sqrt(ell)), 0)

    if a2 == 0:
        if a1 == 0:
            return max(1 - g, 0)
        r = -a0 / a1
        return diff(-mp.inf, r, False) if a1 > 0 else diff(r, mp.inf, False)
    disc = a1 * a1 - 4 * a2 * a0
    if disc <= 0:
        return max(1 - g, 0) if a2 > 0 else mp.mpf(0)
    sq = mp.sqrt(disc)
    r1, r2 = sorted([(-a1 - sq) / (2 * a2), (-a1 + sq) / (2 * a2)])
    return diff(r1, r2, a2 < 0)


def _level_roots(level, c, ell):
    """y with −y²/2 + (y + c)²/(2ℓ) + ½log ℓ = level."""
    a2, a1 = (1 / ell - 1) / 2, c / ell
    a0 = c * c / (2 * ell) + mp.log(ell) / 2 - level
    if a2 == 0:
        return [-a0 / a1] if a1 != 0 else []
    disc = a1 * a1 - 4 * a2 * a0
    if disc <= 0:
        return []
    sq = mp.sqrt(disc)
    return [(-a1 - sq) / (2 * a2), (-a1 + sq) / (2 * a2)]


def mp_hockey_2d(eps, m0, S0, m1, S1, dps=50):
    """2-D oracle: condition on the second whitened coordinate, closed form in the first,
    mpmath quadrature (tanh-sinh) split at every kink of the inner closed form. Far in the tail
    (δ ~ 1e-31 .. 1e-37) the inner closed form cancels: 30 digits left the oracle 3e-5 off
    (seed 201 of the random-brackets test), 50 digits agree with the certified value to 3e-12."""
    ell, c = R._whiten(m0, S0, m1, S1)
    with mp.workdps(dps):
        e = mp.mpf(eps)
        l1, l2 = mp.mpf(float(ell[0])), mp.mpf(float(ell[1]))
        c1, c2 = mp.mpf(float(c[0])), mp.mpf(float(c[1]))

        def L2(y):
            return -y * y / 2 + (y + c2) ** 2 / (2 * l2) + mp.log(l2) / 2

        kinks = _level_roots(e, c2, l2)
        if l1 != 1:
            a2, a1 = (1 / l1 - 1) / 2, c1 / l1
            star = c1 * c1 / (2 * l1) + mp.log(l1) / 2 - a1 * a1 / (4 * a2)
            kinks += _level_roots(e - star, c2, l2)
        pts = sorted(
            {mp.mpf(x) for x in np.linspace(-12, 12, 13)} | {k for k in kinks if abs(k) < 12}
        )
        return mp.quad(
            lambda y: mp.npdf(y) * mp_hs_whitened(e - L2(y), c1, l1), [-mp.inf, *pts, mp.inf]
        )


def _case(seed, d, shift=0.7, lo=0.4, hi=2.0):
    rng = np.random.default_rng(seed)
    S0 = random_spd(rng, d, 0.5, 2.0)
    S1 = random_spd(rng, d, lo, hi)
    return np.zeros(d), S0, rng.normal(size=d) * shift, S1


@pytest.mark.parametrize("seed, eps", [(1, 0.3), (2, 1.1), (3, 0.0), (4, 2.5)])
def test_certified_hockey_stick_2d_against_mpmath_both_directions(seed, eps):
    m0, S0, m1, S1 = _case(seed, 2)
    for a, b in ((m0, S0), (m1, S1)), ((m1, S1), (m0, S0)):
        res = R.gaussian_hockey_stick(eps, a[0], a[1], b[0], b[1])
        oracle = float(mp_hockey_2d(eps, a[0], a[1], b[0], b[1]))
        assert res.kind == "exact", res.source
        d = res.details
        if "sup_loss" in d:  # bounded privacy loss below ε: δ = 0 exactly
            assert res.value == 0.0 and oracle < 1e-40
            continue
        # the certified bracket contains the 50-digit oracle; δ is its upper end
        assert d["lower"] * (1 - 1e-12) <= oracle <= res.value * (1 + 1e-12)
        assert res.value <= oracle * (1 + 1e-6) + 1e-300
        assert res.details["error_bound"] <= 1e-6 * d["lower"]


def _hs_float(log_gamma, c, ell):
    """Float64 version of :func:`mp_hs_whitened` (for the 3-D scipy oracle)."""
    from scipy.special import ndtr

    a2, a1 = (1 / ell - 1) / 2, c / ell
    a0 = c * c / (2 * ell) + 0.5 * math.log(ell) - log_gamma
    g, sd = math.exp(log_gamma), math.sqrt(ell)
    disc = a1 * a1 - 4 * a2 * a0
    if disc <= 0:
        return max(1 - g, 0.0) if a2 > 0 else 0.0
    r1, r2 = sorted([(-a1 - math.sqrt(disc)) / (2 * a2), (-a1 + math.sqrt(disc)) / (2 * a2)])
    if a2 < 0:
        p0, p1 = ndtr(r2) - ndtr(r1), ndtr((r2 + c) / sd) - ndtr((r1 + c) / sd)
    else:
        p0 = ndtr(r1) + ndtr(-r2)
        p1 = ndtr((r1 + c) / sd) + ndtr(-(r2 + c) / sd)
    return max(p0 - g * p1, 0.0)


def test_certified_hockey_stick_3d_against_nested_quadrature():
    from scipy import integrate

    m0, S0, m1, S1 = _case(11, 3, shift=0.5, lo=0.5, hi=1.8)
    eps = 0.4
    res = R.gaussian_hockey_stick(eps, m0, S0, m1, S1)
    assert res.kind == "exact"
    ell, c = R._whiten(m0, S0, m1, S1)

    def Lj(j, y):
        return -y * y / 2 + (y + c[j]) ** 2 / (2 * ell[j]) + 0.5 * math.log(ell[j])

    def f(y3, y2):
        w = math.exp(-(y2 * y2 + y3 * y3) / 2) / (2 * math.pi)
        return w * _hs_float(eps - Lj(1, y2) - Lj(2, y3), c[0], ell[0])

    ref, err = integrate.dblquad(f, -10, 10, -10, 10, epsabs=1e-12, epsrel=1e-10)
    assert res.details["lower"] <= ref + 10 * err + 1e-11
    assert ref - 10 * err - 1e-11 <= res.value <= ref * (1 + 1e-6) + 10 * err + 1e-11


def test_certified_fourier_matches_the_1d_closed_form():
    for eps, c, ell in [(0.5, 0.7, 1.0001), (1e-3, 2.0, 0.9), (5.0, 2.0, 0.9), (0.2, 1.5, 1.2)]:
        w, nu, m = R._loss_terms(np.array([ell]), np.array([c]))
        four = R._fourier_delta(eps, w, nu, m, 1e-6)
        exact = R._hs1d(eps, c, ell) / (1 + 1e-9)  # _hs1d rounds up by 1e-9
        assert four is not None
        assert four["lower"] * (1 - 1e-9) <= exact <= four["upper"] * (1 + 1e-9)
        assert four["relative_error"] <= 1e-6


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    eps=st.floats(0.0, 3.0),
    shift=st.floats(0.2, 1.5),
    d=st.integers(2, 4),
)
@example(seed=201, eps=2.0, shift=0.21875, d=2)  # far tail: δ ≈ 3.7e-37 (the oracle's regression)
@example(seed=201, eps=3.0, shift=0.5, d=2)  # δ ≈ 2.3e-31
def test_certified_hockey_stick_random_brackets(seed, eps, shift, d):
    """Random unequal covariances: the certified δ lies in [lower, lower(1 + rtol)], is at most
    the Rényi-conversion bound, is finite in [0, 1], and (2-D) is ≥ the mpmath oracle and
    within rtol of it, in both directions."""
    m0, S0, m1, S1 = _case(seed, d, shift=shift)
    for a, b in ((m0, S0), (m1, S1)), ((m1, S1), (m0, S0)):
        res = R.gaussian_hockey_stick(eps, a[0], a[1], b[0], b[1])
        assert math.isfinite(res.value) and 0.0 <= res.value <= 1.0
        ell, c = R._whiten(a[0], a[1], b[0], b[1])
        renyi = R._hockey_via_renyi(eps, ell, c).value
        assert res.value <= renyi * (1 + 1e-9)
        if res.kind == "exact" and "Fourier" in res.source:
            lower = res.details["lower"]
            assert lower <= res.value <= lower * (1 + 1e-6) * (1 + 1e-12)
        if d == 2:  # against the mpmath oracle: result ≥ oracle, within rtol
            oracle = float(mp_hockey_2d(eps, a[0], a[1], b[0], b[1], dps=50))
            assert oracle * (1 - 1e-12) <= res.value
            if res.kind == "exact":
                assert res.value <= oracle * (1 + 1e-6) + 1e-300


def test_certified_hockey_stick_falls_back_when_tolerance_is_unreachable():
    m0, S0, m1, S1 = _case(2, 2)
    exact = R.gaussian_hockey_stick(1.1, m0, S0, m1, S1)
    res = R.gaussian_hockey_stick(1.1, m0, S0, m1, S1, rtol=1e-15)
    assert res.kind == "upper"
    assert res.value >= exact.details["lower"]
    with pytest.raises(InvalidParameterError, match="rtol"):
        R.gaussian_hockey_stick(1.1, m0, S0, m1, S1, rtol=0.0)
    # bounded privacy loss (both variances grow): δ = 0 exactly beyond sup L
    res = R.gaussian_hockey_stick(
        3.0, np.zeros(2), np.eye(2), np.array([0.1, 0.2]), np.diag([1.5, 2.0])
    )
    assert res.value == 0.0 and res.kind == "exact"


def test_ula_stationary_deletion_rank_two_certified():
    """Stationary ULA laws with a step size: the precision change is rank 2 (not 1-D); the
    certified δ is exact within rtol, below the exact-Rényi conversion, and tends to the
    continuous-time 1-D closed form as the step size shrinks."""
    X, y = data(7, 25, 3)
    loo = R.leave_one_out(X, y, regularization=0.5)
    f = loo.fit
    i, tau, eps = 3, 0.05, 1.0
    lr = 1.5 / f.eigenvalues[-1]
    p = f.stationary_law(temperature=tau, learning_rate=lr)
    q = f.without([i]).stationary_law(temperature=tau, learning_rate=lr)
    ell, c = R._whiten(p.mean, p.cov, q.mean, q.cov)
    assert np.count_nonzero(np.abs(ell - 1) > 1e-9) == 2
    out = R.loo_ula_hockey_stick(eps, loo, i, temperature=tau, learning_rate=lr)
    for key, (a, b) in (("forward", (p, q)), ("reverse", (q, p))):
        res = out[key]
        assert res.kind == "exact" and "Fourier" in res.source
        el, cc = R._whiten(a.mean, a.cov, b.mean, b.cov)
        assert res.value <= R._hockey_via_renyi(eps, el, cc).value
    oracle = float(mp_hockey_2d_from_whitened(eps, ell, c))
    assert out["forward"].details["lower"] * (1 - 1e-12) <= oracle
    assert oracle <= out["forward"].value <= oracle * (1 + 1e-6)
    # continuous-time limit: tiny step → the 1-D closed form
    small = R.loo_ula_hockey_stick(eps, loo, i, temperature=tau, learning_rate=1e-7)
    one_d = R.loo_hockey_stick(eps, loo, temperature=tau)
    assert small["forward"].value == pytest.approx(one_d.forward[i], rel=1e-4)
    with pytest.raises(InvalidParameterError, match="index"):
        R.loo_ula_hockey_stick(eps, loo, 99, temperature=tau)


def mp_hockey_2d_from_whitened(eps, ell, c):
    """The 2-D oracle restricted to the two changed whitened directions (the others are
    unit-variance; their shift, if any, is folded in exactly as a third closed-form factor is
    not needed when it is zero — asserted by the caller)."""
    nonunit = np.abs(ell - 1) > 1e-9
    assert np.all(np.abs(c[~nonunit]) < 1e-9 * max(1.0, float(np.max(np.abs(c)))))
    e2, c2 = ell[nonunit], c[nonunit]
    return mp_hockey_2d(eps, np.zeros(2), np.eye(2), -c2, np.diag(e2))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10**6), tau=st.floats(0.01, 2.0), eps=st.floats(0.05, 4.0))
def test_ridge_hockey_stick_exact_and_below_rdp_conversion(seed, tau, eps):
    """Bracket on the unequal-covariance ridge chain: exact δ ≤ δ from the exact Rényi curve."""
    X, y = data(seed, 25, 3)
    loo = R.leave_one_out(X, y, regularization=0.5)
    hs = R.loo_hockey_stick(eps, loo, temperature=tau)
    i = seed % 25
    f = loo.fit
    p, q = f.stationary_law(temperature=tau), f.without([i]).stationary_law(temperature=tau)
    dense = R.gaussian_hockey_stick(eps, p.mean, p.cov, q.mean, q.cov)
    # the dense route is an upper bound (rounding-size shifts get a TV allowance)
    assert hs.forward[i] <= dense.value * (1 + 1e-6)
    assert hs.forward[i] >= dense.value * (1 - 1e-6) - dense.details["error_bound"]
    h = loo.leverage[i]
    for delta_exact, rdp_fn, cap in (
        (hs.forward[i], lambda a: R.loo_renyi(a, loo, temperature=tau).forward[i], None),
        (hs.reverse[i], lambda a: R.loo_renyi(a, loo, temperature=tau).reverse[i], 1 / h),
    ):
        ld = float(
            conversions.curve_log_delta(
                lambda a, fn=rdp_fn: fn(np.asarray(a)),
                epsilon=eps,
                max_order=None if cap is None else 0.999 * cap,
            )
        )
        assert delta_exact <= math.exp(ld) * (1 + 1e-9)


# ---------------------------------------------------------------------------------------------
# per-instance noise


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6), eps=st.floats(0.05, 8.0), ld=st.floats(-30, -1))
def test_calibration_never_overshoots(seed, eps, ld):
    X, y = data(seed, 30, 3)
    loo = R.leave_one_out(X, y, regularization=1.0)
    delta = math.exp(ld)
    cal = R.calibrate_noise(loo.shift_norms, epsilon=eps, delta=delta)
    mus = loo.shift_norms / cal.noise_std
    assert np.all(np.asarray(gaussian.delta(eps, mu=mus)) <= delta)
    assert cal.worst_case_noise_std == pytest.approx(np.max(cal.noise_std))
    assert np.all(cal.savings_factor >= 1.0)
    i = int(np.argmin(loo.shift_norms))
    assert cal.savings_factor[i] == pytest.approx(
        np.max(loo.shift_norms) / loo.shift_norms[i], rel=1e-9
    )
    assert "pDP" in cal.caveat


# ---------------------------------------------------------------------------------------------
# bad inputs


def test_bad_inputs_name_the_problem():
    X, y = data(0, 20, 3)
    for lam in (0.0, -1.0):
        with pytest.raises(InvalidParameterError, match="regularization"):
            R.leave_one_out(X, y, regularization=lam)
    f = R.fit(X, y, regularization=1.0)
    with pytest.raises(InvalidParameterError, match="learning_rate"):
        f.stationary_law(temperature=1.0, learning_rate=2.0 / f.eigenvalues[-1])
    with pytest.raises(InvalidParameterError, match="learning_rate"):
        f.ula_law(
            learning_rate=3.0 / f.eigenvalues[-1],
            temperature=1.0,
            steps=3,
            initial_mean=0.0,
            initial_cov=np.eye(3),
        )
    with pytest.raises(InvalidParameterError, match="initial_cov"):
        f.ula_law(
            learning_rate=0.1 / f.eigenvalues[-1],
            temperature=1.0,
            steps=3,
            initial_mean=0.0,
            initial_cov=-np.eye(3),
        )
    not_psd = np.array([[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(InvalidParameterError, match="cov0"):
        R.gaussian_renyi(2.0, np.zeros(2), not_psd, np.zeros(2), np.eye(2))
    with pytest.raises(InvalidParameterError, match="cov1"):
        R.gaussian_renyi(2.0, np.zeros(2), np.eye(2), np.zeros(2), not_psd)
    with pytest.raises(InvalidParameterError, match="cov0"):
        R.gaussian_hockey_stick(
            1.0, np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]), np.zeros(2), np.eye(2)
        )
    with pytest.raises(InvalidParameterError, match="forget"):
        R.leave_group_out(X, y, [], regularization=1.0)
    with pytest.raises(InvalidParameterError, match="forget"):
        f.without(np.array([], dtype=int))
    with pytest.raises(InvalidParameterError, match="var1"):
        R.hockey_stick_1d(1.0, mean0=0.0, var0=1.0, mean1=0.0, var1=0.0)
    with pytest.raises(InvalidParameterError, match="temperature"):
        R.loo_renyi(2.0, R.leave_one_out(X, y, regularization=1.0), temperature=0.0)
    with pytest.raises(InvalidParameterError, match="sensitivities"):
        R.calibrate_noise([], epsilon=1.0, delta=1e-5)


def test_leverage_one_is_refused():
    # x_0 is the only point along e1: h_0 = 1/(1 + λ), which is 1 in float64 for tiny λ
    X = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 2.0], [0.0, -1.0]])
    y = np.array([1.0, 0.5, 0.2, 0.1])
    with pytest.raises(InvalidParameterError, match="leverage"):
        R.leave_one_out(X, y, regularization=1e-17)
    with pytest.raises(InvalidParameterError, match="leverage"):
        R.leave_group_out(X, y, [0], regularization=1e-17)
    ok = R.leave_one_out(X, y, regularization=1e-3)
    assert ok.leverage[0] == pytest.approx(1 / (1 + 1e-3))


def test_hockey_stick_cancellation_falls_back_to_mpmath():
    # e^ε·P₁(S) ≈ P₀(S): the float64 subtraction cancels, the mpmath path takes over
    eps, m1, v1 = 1e-9, 1e-8, 1.0 + 1e-9
    ld, ok = R._hs1d_float(eps, -m1, v1)
    assert not ok
    got = R.hockey_stick_1d(eps, mean0=0.0, var0=1.0, mean1=m1, var1=v1)
    with mp.workdps(50):
        oracle = mp_hockey_1d(eps, 0.0, 1.0, m1, v1)
    assert got == pytest.approx(oracle, rel=1e-6) and got >= oracle * (1 - 1e-12)


# ---------------------------------------------------------------------------------------------
# extreme inputs: huge shifts and variance ratios, whitening and leave-one-out overflow
# (+inf or a library error, never NaN; RuntimeWarnings are errors here)


@pytest.fixture
def _warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


@pytest.mark.usefixtures("_warnings_are_errors")
def test_n6_renyi_1d_huge_shift_and_variance_ratio():
    val = ridge.renyi_1d(1.5, shift=1.7e308, variance_ratio=1.7e308)
    assert math.isfinite(val) and val == pytest.approx(0.5 * 1.7e308, rel=1e-12)
    # α·x overflows but (α/2)w²/(1 + αx) = ½w²/(1/α + x) does not: ≈ ½·1e10/1e10
    assert ridge.renyi_1d(1e300, shift=1e5, variance_ratio=1e10) > 0.5


@pytest.mark.usefixtures("_warnings_are_errors")
def test_n7_gaussian_renyi_whitening_overflow():
    out = ridge.gaussian_renyi(
        [2.0], np.zeros(2), np.diag([1e-150, 1.0]), np.array([1e300, 0.0]), np.diag([2e-150, 1.0])
    )
    assert out[0] == math.inf
    out = ridge.gaussian_renyi(
        [2.0], np.array([-1.7e308, 0.0]), np.eye(2), np.array([1.7e308, 0.0]), np.diag([2.0, 1.0])
    )
    assert out[0] == math.inf
    with pytest.raises(NumericalPrecisionError):
        ridge.gaussian_renyi(
            [2.0], np.zeros(2), np.diag([1e-300, 1.0]), np.zeros(2), np.diag([1e300, 1.0])
        )
    hs = ridge.gaussian_hockey_stick(
        1.0, np.zeros(2), np.diag([1e-150, 1.0]), np.array([1e300, 0.0]), np.diag([2e-150, 1.0])
    )
    assert hs.value == 1.0 and hs.kind == "upper"


@pytest.mark.usefixtures("_warnings_are_errors")
def test_n8_leave_one_out_overflow_names_the_data():
    with pytest.raises(InvalidParameterError, match="features"):
        ridge.leave_one_out([[1e200]], [-1e150], regularization=1.0)
    with pytest.raises(InvalidParameterError, match="targets"):
        ridge.leave_one_out([[1e100]], [-1e250], regularization=1.0)


@pytest.mark.usefixtures("_warnings_are_errors")
def test_c7_hockey_stick_1d_extreme_ratios():
    # var1/var0 underflows to 0: δ ≥ 1 − 1e-17, so 1.0 is δ rounded up
    assert ridge.hockey_stick_1d(0.0, mean0=0.0, var0=1.7e308, mean1=0.0, var1=5e-324) == 1.0
    # mpmath overflowed here: shift of 1e150 standard deviations
    assert ridge.hockey_stick_1d(0.0, mean0=0.0, var0=1.0, mean1=1e150, var1=1 + 1e-15) == 1.0
    assert ridge.hockey_stick_1d(1.0, mean0=-1e308, var0=1.0, mean1=1e308, var1=2.0) == 1.0
    # ratio overflows to inf and ε is too large for the δ ≈ 1 certificate: a clear error
    with pytest.raises(NumericalPrecisionError):
        ridge.hockey_stick_1d(1000.0, mean0=0.0, var0=1e-300, mean1=0.0, var1=1e300)


# ---------------------------------------------------------------------------------------------
# 1-D Rényi and hockey-stick against mpmath: random sweeps, variance ratio near 1,
# orders near 1, tiny δ


def _mp_renyi_1d(a, w, ell):
    with mp.workdps(DPS):
        a, w, ell = mp.mpf(a), mp.mpf(w), mp.mpf(ell)
        va = 1 + a * (ell - 1)
        if va <= 0:
            return mp.inf
        return a * w * w / (2 * va) - (mp.log(va) - a * mp.log(ell)) / (2 * (a - 1))


def _mp_hockey_1d(eps, c, ell, dps=100):
    """E_{e^ε}(N(0,1) ‖ N(−c, ℓ)) by the roots of the quadratic, tails evaluated directly."""
    with mp.workdps(dps):
        eps, c, ell = mp.mpf(eps), mp.mpf(c), mp.mpf(ell)
        g, sd = mp.exp(eps), mp.sqrt(ell)

        def prob(lo, hi):
            return mp.ncdf(hi) - mp.ncdf(lo) if hi <= 0 else mp.ncdf(-lo) - mp.ncdf(-hi)

        a2, a1 = (1 - ell) / (2 * ell), c / ell
        a0 = c * c / (2 * ell) + mp.log(ell) / 2 - eps
        disc = a1 * a1 - 4 * a2 * a0
        if a2 == 0:  # equal variances: a half-line (or nothing / everything)
            if a1 == 0:
                ivs = [(-mp.inf, mp.inf)] if a0 > 0 else []
            else:
                ivs = [(-a0 / a1, mp.inf)] if a1 > 0 else [(-mp.inf, -a0 / a1)]
        elif disc <= 0:
            ivs = [(-mp.inf, mp.inf)] if a2 > 0 else []
        else:
            r1, r2 = sorted([(-a1 - mp.sqrt(disc)) / (2 * a2), (-a1 + mp.sqrt(disc)) / (2 * a2)])
            ivs = [(-mp.inf, r1), (r2, mp.inf)] if a2 > 0 else [(r1, r2)]
        return mp.fsum(prob(lo, hi) - g * prob((lo + c) / sd, (hi + c) / sd) for lo, hi in ivs)


def test_ridge_renyi_and_hockey_stick_against_mpmath():
    rng = np.random.default_rng(np.random.SeedSequence(12))
    for _ in range(60):
        a = 1 + 10 ** rng.uniform(-2, 2)
        w = 10 ** rng.uniform(-3, 1) * rng.choice([-1, 1])
        ell = 10 ** rng.uniform(-1.5, 1.5)
        exact = _mp_renyi_1d(a, w, ell)
        got = float(ridge.renyi_1d(a, shift=w, variance_ratio=ell))
        if exact == mp.inf:
            assert got == math.inf
        else:
            # kind "exact" (not rounded upward): within 1e-12 relative after the fix below
            assert abs(_ratio(got, exact) - 1) <= 1e-12
        eps = 10 ** rng.uniform(-2, 1.3)
        hs = ridge.hockey_stick_1d(eps, mean0=0.0, var0=1.0, mean1=-w, var1=ell)
        assert hs >= _mp_hockey_1d(eps, w, ell)


@pytest.mark.parametrize(
    "eps, c, ell",
    [
        (0.10798857728320793, 0.003230915997309322, 1.0000001259716453),
        (0.07229836470381705, -0.0020321940586811955, 0.9999999722368513),
        (0.0035889508726835843, 0.00011379801538188119, 1.0),
    ],
)
def test_ridge_hockey_stick_near_unit_variance_ratio(eps, c, ell):
    got = ridge.hockey_stick_1d(eps, mean0=0.0, var0=1.0, mean1=-c, var1=ell)
    assert got >= _mp_hockey_1d(eps, c, ell)


def test_ridge_renyi_near_order_one_regression():
    """Regression (fixed in ridge._renyi_1d): log1p(αx) − α·log1p(x) was formed as a difference
    of O(1) logs and divided by α − 1, losing log10(1/(α−1)) digits: 7e-6 relative BELOW the
    exact D_α at α − 1 = 1.4e-9 (and ~1e-12 at α − 1 = 2e-3). Now written as
    log1p((α−1)x/ℓ)/(α−1) − log1p(x)."""
    for a, w, ell in (
        (1.0000000014137744, 0.00026377542951551446, 1.0665240967671479),
        (1.0000000011802794, 0.0, 0.9633925823863286),
        (1.0019824759971472, -0.0011253819343047759, 0.9998733521581894),
        (1.0000879745661286, 7.775010263503596e-07, 0.9887843956150265),
    ):
        exact = _mp_renyi_1d(a, w, ell)
        got = float(ridge.renyi_1d(a, shift=w, variance_ratio=ell))
        assert abs(_ratio(got, exact) - 1) <= 1e-12


def test_ridge_hockey_stick_sweep_near_unit_ratio_and_tiny_delta():
    """Fixed finding: cancellation near ℓ = 1 and upper-tail precision at tiny δ."""
    rng = np.random.default_rng(11)
    for _ in range(40):
        ell = 1.0 + rng.choice([-1.0, 1.0]) * 10 ** rng.uniform(-12, -2)
        c = rng.choice([-1.0, 1.0]) * 10 ** rng.uniform(-5, 0.5)
        eps = 10 ** rng.uniform(-3, 1.3)
        got = ridge.hockey_stick_1d(eps, mean0=0.0, var0=1.0, mean1=-c, var1=ell)
        exact = _mp_hockey_1d(eps, c, ell)
        assert got >= exact
        if exact > 0:
            assert got <= exact * (1 + 1e-8) + 1e-300
