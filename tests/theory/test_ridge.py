"""Ridge regression by Langevin dynamics: laws, leave-one-out, exact Rényi and hockey-stick.

Oracles: brute-force refits; the ULA moment recursion; mpmath (50 digits) determinants and
inverses for the Rényi closed form, mpmath quadrature of ∫(p − e^ε q)₊ for the hockey-stick.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unlearn_theory import conversions, gaussian
from unlearn_theory import ridge as R
from unlearn_theory.errors import InvalidParameterError


def data(seed, n=60, d=4, scale=1.0):
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    X = rng.normal(size=(n, d)) * scale
    y = X @ rng.normal(size=d) + rng.normal(size=n)
    return X, y


def random_spd(rng, d, lo=0.3, hi=3.0):
    Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return (Q * rng.uniform(lo, hi, size=d)) @ Q.T


def mp_renyi(alpha, m0, S0, m1, S1):
    """Closed form of math.md §11.3 with mpmath determinants/inverse (50 digits)."""
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
        assert res["kind"] == "upper"
        assert oracle <= res["delta"] <= oracle * (1 + 1e-9)
    # two non-unit directions: a certified upper bound through the exact Rényi curve,
    # checked against 2-D quadrature of ∫(p₀ − e^ε p₁)₊ (product densities)
    from scipy import integrate

    S1b = np.diag([1.7, 0.5])
    for eps in (0.5, 2.0):
        res = R.gaussian_hockey_stick(eps, m0, S0, m1, S1b)
        assert res["kind"] == "upper" and "Renyi" in res["method"]

        def f(x2, x1, e=eps):
            p0 = math.exp(-(x1 * x1 + x2 * x2) / 2) / (2 * math.pi)
            q = math.exp(-((x1 - 0.3) ** 2) / 3.4 - (x2 - 0.8) ** 2 / 1.0) / (
                2 * math.pi * math.sqrt(0.85)
            )
            return max(p0 - math.exp(e) * q, 0.0)

        ref = integrate.dblquad(f, -12, 12, -12, 12, epsabs=1e-11)[0]
        assert res["delta"] >= ref


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
    assert hs.forward[i] <= dense["delta"] * (1 + 1e-6)
    assert hs.forward[i] >= dense["delta"] * (1 - 1e-6) - dense["error_bound"]
    h = loo.leverage[i]
    for delta_exact, rdp_fn, cap in (
        (hs.forward[i], lambda a: R.loo_renyi(a, loo, temperature=tau).forward[i], None),
        (hs.reverse[i], lambda a: R.loo_renyi(a, loo, temperature=tau).reverse[i], 1 / h),
    ):
        ld, _ = conversions.curve_log_delta(
            lambda a, fn=rdp_fn: fn(np.asarray(a)),
            epsilon=eps,
            max_order=None if cap is None else 0.999 * cap,
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
