"""Rényi curves and RDP→DP conversions: mpmath oracles, brackets, properties, bad input."""

from __future__ import annotations

import math
import warnings

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unlearn_theory import InvalidParameterError, certify, conversions, gaussian, iteration, renyi
from unlearn_theory.errors import NumericalPrecisionError

from .test_gaussian import mp_eps

# ---------------------------------------------------------------------------------------------
# oracle: D_α(P‖Q) and D_α(Q‖P) of the Poisson-subsampled Gaussian by mpmath quadrature


def _rdp_oracle(alpha, q, z, reverse=False, dps=40):
    with mp.workdps(dps):
        a, q, z = mp.mpf(alpha), mp.mpf(q), mp.mpf(z)

        def ratio(x):  # p/q with P the mixture, Q = N(0, z²)
            return (1 - q) + q * mp.exp((2 * x - 1) / (2 * z * z))

        if reverse:  # E_P[(q/p)^α] = E_Q[(p/q)^(1−α)]
            f = lambda x: mp.npdf(x, 0, z) * ratio(x) ** (1 - a)  # noqa: E731
        else:
            f = lambda x: mp.npdf(x, 0, z) * ratio(x) ** a  # noqa: E731
        pts = [-mp.inf, -20 * z, -5 * z, 0, mp.mpf(1) / 2, 1, 5 * z + 2, 20 * z + 2 * a, mp.inf]
        big = sorted(set(pts + [a / 2, a, 2 * a]))
        val = mp.quad(f, big)
        return float(mp.log(val) / (a - 1))


CASES = [
    (0.01, 1.0),
    (0.1, 0.7),
    (0.5, 2.0),
    (0.001, 5.0),
    (0.2, 1.3),
]


@pytest.mark.parametrize("q,z", CASES)
@pytest.mark.parametrize("alpha", [2, 3, 5, 8, 16])
def test_integer_orders_match_quadrature(q, z, alpha):
    exact = _rdp_oracle(alpha, q, z)
    ours = renyi.subsampled_gaussian(alpha, sample_rate=q, noise_multiplier=z)
    assert ours == pytest.approx(exact, rel=1e-10, abs=1e-14)
    assert ours >= exact * (1 - 1e-13)


@pytest.mark.parametrize("q,z", CASES)
@pytest.mark.parametrize("alpha", [1.01, 1.5, 2.5, 4.5, 7.25])
def test_fractional_orders_series_exact_and_interpolation_upper(q, z, alpha):
    exact = _rdp_oracle(alpha, q, z)
    series = renyi.subsampled_gaussian(
        alpha, sample_rate=q, noise_multiplier=z, fractional="series"
    )
    interp = renyi.subsampled_gaussian(alpha, sample_rate=q, noise_multiplier=z)
    # compare log A_α = (α−1)ρ: float64 resolves it to ~1e-14 absolute near A_α = 1
    assert (alpha - 1) * series == pytest.approx((alpha - 1) * exact, rel=1e-9, abs=1e-13)
    assert series >= exact * (1 - 1e-12)  # the alternating-tail allowance is upward
    assert interp >= exact * (1 - 1e-12)  # chord of a convex function: UPPER


@pytest.mark.parametrize("q,z", CASES)
@pytest.mark.parametrize("alpha", [1.5, 2, 4, 8])
def test_add_direction_dominates_remove_direction(q, z, alpha):
    """Spot check of Mironov–Talwar–Zhang 2019: D_α(P‖Q) ≥ D_α(Q‖P) (P the mixture)."""
    fwd = _rdp_oracle(alpha, q, z)
    rev = _rdp_oracle(alpha, q, z, reverse=True)
    assert rev <= fwd * (1 + 1e-9)
    assert renyi.subsampled_gaussian(alpha, sample_rate=q, noise_multiplier=z) >= rev


def test_edge_cases_sample_rate_one_and_zero_noise():
    orders = np.array([1.5, 2.0, 10.0])
    np.testing.assert_allclose(
        renyi.subsampled_gaussian(orders, sample_rate=1.0, noise_multiplier=2.0),
        orders / 8.0,
        rtol=1e-15,
    )
    out = renyi.subsampled_gaussian(orders, sample_rate=0.1, noise_multiplier=0.0)
    assert np.all(np.isinf(out)) and not np.any(np.isnan(out))


def test_huge_orders_are_inf_or_finite_never_nan():
    out = renyi.subsampled_gaussian([2, 500, 4000.5], sample_rate=0.5, noise_multiplier=0.3)
    assert not np.any(np.isnan(out))
    assert np.all(np.diff(out) >= 0)


@pytest.mark.peer
def test_integer_orders_match_dp_accounting():
    rpa = pytest.importorskip("dp_accounting.rdp.rdp_privacy_accountant")
    orders = [2, 3, 4, 8, 16, 32, 64, 128]
    for q, z in CASES:
        theirs = rpa._compute_rdp_poisson_subsampled_gaussian(q, z, orders)
        ours = renyi.subsampled_gaussian(orders, sample_rate=q, noise_multiplier=z)
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-14)
        assert np.all(ours >= np.asarray(theirs) * (1 - 1e-12))


# ---------------------------------------------------------------------------------------------
# Gaussian curve and conversions


@given(
    mu=st.floats(1e-2, 20.0),
    log10_delta=st.floats(-14.0, -2.0),
)
@settings(max_examples=60, deadline=None)
def test_gaussian_curve_conversion_brackets_exact_epsilon(mu, log10_delta):
    """RDP-based ε is an UPPER bound on the exact Gaussian ε and at most Mironov's."""
    delta = 10.0**log10_delta
    exact = gaussian.epsilon(delta, mu=mu)
    _b = conversions.linear_epsilon(mu * mu / 2, delta=delta)
    eps_b, order = _b.value, _b.order
    eps_m = float(conversions.linear_epsilon(mu * mu / 2, delta=delta, conversion="mironov"))
    assert exact <= eps_b <= eps_m * (1 + 1e-12)
    assert order > 1
    # the closed form of Mironov's optimum: ε = a + 2√(aL)
    a, L = mu * mu / 2, -math.log(delta)
    assert eps_m == pytest.approx(a + 2 * math.sqrt(a * L), rel=1e-11)
    # the same through the grid API
    orders = np.concatenate([1 + np.geomspace(1e-3, 1e4, 200)])
    eps_g = float(renyi.to_dp(orders, renyi.gaussian(orders, mu=mu), delta=delta))
    assert exact <= eps_g
    assert eps_g <= eps_b * 1.02 + 1e-9


@given(
    eps=st.floats(0.05, 50.0),
    log10_delta=st.floats(-14.0, -2.0),
    conversion=st.sampled_from(["improved", "mironov"]),
)
@settings(max_examples=60, deadline=None)
def test_max_linear_coefficient_never_overshoots(eps, log10_delta, conversion):
    delta = 10.0**log10_delta
    a = conversions.max_linear_coefficient(epsilon=eps, delta=delta, conversion=conversion)
    got = float(conversions.linear_epsilon(a, delta=delta, conversion=conversion))
    assert got <= eps * (1 + 3e-12)
    # and it is nearly the largest: 0.1% more coefficient no longer certifies
    worse = float(conversions.linear_epsilon(a * 1.001, delta=delta, conversion=conversion))
    assert worse > eps
    a_m = (math.sqrt(-math.log(delta) + eps) - math.sqrt(-math.log(delta))) ** 2
    assert a >= a_m * (1 - 1e-9)


def test_improved_is_never_above_mironov_pointwise():
    alphas = 1 + np.geomspace(1e-3, 1e5, 300)
    rdp = 0.3 * alphas
    e_b = conversions.epsilon_at_order(alphas, rdp, delta=1e-6)
    e_m = conversions.epsilon_at_order(alphas, rdp, delta=1e-6, conversion="mironov")
    assert np.all(e_b <= e_m)


def test_delta_and_epsilon_conversions_are_consistent():
    alphas = np.array([2.0, 5.0, 20.0])
    rdp = np.array([0.1, 0.3, 1.4])
    for conversion in conversions.CONVERSIONS:
        eps = conversions.epsilon_at_order(alphas, rdp, delta=1e-5, conversion=conversion)
        ld = conversions.log_delta_at_order(alphas, rdp, epsilon=eps[1], conversion=conversion)
        assert ld[1] <= math.log(1e-5) + 1e-9


def test_to_delta_bracket_against_exact_profile():
    mu = 0.8
    orders = 1 + np.geomspace(1e-2, 1e3, 120)
    for eps in [0.5, 2.0, 5.0]:
        d = float(renyi.to_delta(orders, renyi.gaussian(orders, mu=mu), epsilon=eps))
        assert d >= gaussian.delta(eps, mu=mu)
        assert d > 0
    d = float(renyi.to_delta(orders, renyi.gaussian(orders, mu=0.01), epsilon=500.0))
    assert d > 0.0  # underflow never returns 0


def test_flat_alpha_pitfall_is_visible():
    """The published mistake: converting the coefficient a as if D_α = a at every order.

    The linear curve α·a is what the analysis proves; a flat curve with value a certifies a
    much smaller ε. Our API takes curves; the correct conversion equals the Gaussian one.
    """
    a = 0.02
    orders = 1 + np.geomspace(1e-3, 1e5, 400)
    correct = float(renyi.to_dp(orders, a * orders, delta=1e-5))
    wrong = float(renyi.to_dp(orders, np.full_like(orders, a), delta=1e-5))
    assert correct == pytest.approx(
        float(renyi.to_dp(orders, renyi.gaussian(orders, mu=math.sqrt(2 * a)), delta=1e-5))
    )
    assert correct > 2.0 * wrong
    with pytest.raises(InvalidParameterError, match="rdp"):
        renyi.to_dp(orders, a, delta=1e-5)  # a scalar is not a curve


def test_continuous_order_beats_a_coarse_grid():
    """Opacus-style grid stopping at 63 over-reports for weak mechanisms (docs/theory.md §13.7)."""
    mu = 0.02
    grid = np.array([1.5, 2, 3, 4, 8, 16, 32, 63])
    eps_grid = float(renyi.to_dp(grid, renyi.gaussian(grid, mu=mu), delta=1e-10))
    _b = conversions.linear_epsilon(mu * mu / 2, delta=1e-10)
    eps_cont, order = _b.value, _b.order
    assert order > 63
    assert eps_cont < 0.9 * eps_grid
    assert eps_cont >= gaussian.epsilon(1e-10, mu=mu)


def test_composition_adds_curves():
    orders = np.array([1.5, 2.0, 4.0, 32.0])
    g = renyi.gaussian(orders, mu=0.3)
    np.testing.assert_allclose(
        renyi.compose(*([g] * 16)), renyi.gaussian(orders, mu=1.2), rtol=1e-14
    )
    s = renyi.subsampled_gaussian(orders, sample_rate=0.1, noise_multiplier=1.0)
    np.testing.assert_allclose(renyi.compose(s, g), s + g)


@given(
    q=st.floats(1e-4, 1.0),
    z=st.floats(0.3, 50.0),
    alpha=st.floats(1.001, 300.0),
)
@settings(max_examples=60, deadline=None)
def test_subsampled_curve_fuzz_is_finite_nonnegative_and_monotone(q, z, alpha):
    vals = renyi.subsampled_gaussian([alpha, alpha + 1.0], sample_rate=q, noise_multiplier=z)
    assert not np.any(np.isnan(vals))
    assert vals[0] >= 0
    assert vals[1] >= vals[0] * (1 - 1e-9) - 1e-14 / (alpha - 1)  # rounding allowances
    # never above the un-subsampled Gaussian curve (q = 1)
    assert vals[0] <= alpha / (2 * z * z) * (1 + 1e-9)


@given(
    a=st.floats(1e-8, 1e3),
    log10_delta=st.floats(-300.0, -1.0),
)
@settings(max_examples=60, deadline=None)
def test_linear_epsilon_fuzz(a, log10_delta):
    _b = conversions.linear_epsilon(a, delta=10.0**log10_delta)
    eps, order = _b.value, _b.order
    assert math.isfinite(eps) and eps >= 0 and order > 1
    eps2 = float(conversions.linear_epsilon(a * 1.5, delta=10.0**log10_delta))
    assert eps2 >= eps


# ---------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize(
    "call,name",
    [
        (lambda: renyi.gaussian([1.0, 2.0], mu=1.0), "orders"),
        (lambda: renyi.gaussian([2.0], mu=-1.0), "mu"),
        (lambda: renyi.gaussian([float("nan")], mu=1.0), "orders"),
        (lambda: renyi.subsampled_gaussian(2, sample_rate=0.0, noise_multiplier=1), "sample_rate"),
        (lambda: renyi.subsampled_gaussian(2, sample_rate=1.5, noise_multiplier=1), "sample_rate"),
        (
            lambda: renyi.subsampled_gaussian(2, sample_rate=0.5, noise_multiplier=-1),
            "noise_multiplier",
        ),
        (lambda: renyi.to_dp([2.0, 3.0], [0.1, float("nan")], delta=1e-5), "rdp"),
        (lambda: renyi.to_dp([2.0, 3.0], [0.1, 0.2], delta=1.0), "delta"),
        (lambda: renyi.to_dp([2.0, 3.0], [0.1, 0.2, 0.3], delta=1e-5), "rdp"),
        (lambda: renyi.to_dp([[2.0, 3.0]], [[0.1, 0.2]], delta=1e-5), "orders"),
        (lambda: conversions.linear_epsilon(-1.0, delta=1e-5), "coefficient"),
        (lambda: conversions.linear_epsilon(1.0, delta=1e-5, conversion="x"), "conversion"),
        (lambda: conversions.max_linear_coefficient(epsilon=0.0, delta=1e-5), "epsilon"),
        (lambda: conversions.max_linear_coefficient(epsilon=1.0, delta=0.0), "delta"),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(InvalidParameterError, match=name):
        call()


# ---------------------------------------------------------------------------------------------
# extreme inputs: subsampled-Gaussian RDP at vanishing noise, tiny sample rates and huge orders
# (never negative, never NaN, upper against mpmath, +inf rather than an error)


def test_subsampled_rdp_with_a_vanishing_noise_multiplier_is_infinite_not_an_error():
    from unlearn_theory import renyi

    for q in (0.1, 1.0):
        out = renyi.subsampled_gaussian([2.0, 3.5], sample_rate=q, noise_multiplier=1e-160)
        assert np.all(np.isinf(out)) and np.all(out > 0)
    with pytest.raises(NumericalPrecisionError, match="no finite"):  # (was ZeroDivisionError)
        certify(
            "dp_sgd_group",
            delta=0.5,
            sample_rate=5e-324,
            forget_size=1,
            clip_gradient=2e-85,
            steps=2,
            noise_multiplier=5e-324,
        )


@pytest.mark.parametrize("fractional", ["interpolate", "series"])
def test_u3_subsampled_gaussian_nonnegative(fractional):
    got = renyi.subsampled_gaussian(
        1.5, sample_rate=1e-20, noise_multiplier=1e10, fractional=fractional
    )
    assert got >= 0.0
    # to_dp accepts the curve (it rejected the negative value)
    orders = np.array([1.5, 2.0, 3.0])
    rdp = renyi.subsampled_gaussian(orders, sample_rate=1e-20, noise_multiplier=1e10)
    eps = float(renyi.to_dp(orders, rdp, delta=1e-5))
    assert eps >= 0.0


def test_u3_integer_orders_are_upper_against_mpmath():
    # cancellation in gammaln made these fall below the exact value by up to 2e-9 (relative)
    cases = [
        (300, 0.0006353252757115689, 22.591835352175647),
        (30, 0.0466, 13.9),
        (100, 0.0037, 25),
    ]
    for a, q, z in cases:
        got = renyi.subsampled_gaussian(float(a), sample_rate=q, noise_multiplier=z)
        with mp.workdps(50):
            Q, u = mp.mpf(q), 1 / (2 * mp.mpf(z) ** 2)
            A = mp.fsum(
                mp.binomial(a, k) * (1 - Q) ** (a - k) * Q**k * mp.exp(k * (k - 1) * u)
                for k in range(a + 1)
            )
            exact = mp.log(A) / (a - 1)
        assert exact <= got <= exact * (1 + 1e-6)


def test_c4_huge_orders_use_the_joint_convexity_bound():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = renyi.subsampled_gaussian(
            [1e9, 1e300, 1e6 + 0.5], sample_rate=0.01, noise_multiplier=1.0
        )
    assert out[1] == math.inf and not np.any(np.isnan(out))
    for a, val in [(1e9, out[0]), (1e6 + 0.5, out[2])]:
        # log(1 − q + q e^{α(α−1)/2})/(α−1) lies between these two (z = 1, q = 0.01)
        assert (math.log(0.01) + a * (a - 1) / 2) / (a - 1) <= val <= a / 2 * (1 + 1e-12)
    with pytest.raises(InvalidParameterError, match="orders"):
        renyi.log_a_integer_table(0.5, 10**9, 0.01)


# ---------------------------------------------------------------------------------------------
# extreme inputs: RDP-to-DP conversions at subnormal, huge and overflowing arguments


def test_huge_but_finite_coefficient_certifies_a_finite_upper_bound():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        eps = float(conversions.linear_epsilon(9e302, delta=1e-30))
    assert math.isfinite(eps) and eps >= 9e302


@pytest.mark.parametrize(
    "eps,delta,conversion",
    [(1e-3, 1e-310, "improved"), (1e-20, 1 - 1e-16, "mironov"), (0.7, 1e-9, "improved")],
)
def test_u5_max_linear_coefficient_certifies_through_linear_epsilon(eps, delta, conversion):
    a = conversions.max_linear_coefficient(epsilon=eps, delta=delta, conversion=conversion)
    assert a > 0.0
    assert float(conversions.linear_epsilon(a, delta=delta, conversion=conversion)) <= eps


@pytest.mark.parametrize("conversion", ["mironov", "improved"])
def test_c3_underflowing_coefficient_raises(conversion):
    with pytest.raises(NumericalPrecisionError, match="epsilon"):
        conversions.max_linear_coefficient(epsilon=5e-324, delta=5e-324, conversion=conversion)


@pytest.mark.parametrize("conversion", ["improved", "mironov"])
def test_n1_log_delta_at_huge_order_is_finite(conversion):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ld = conversions.log_delta_at_order(1.7e308, 0.0, epsilon=2.0, conversion=conversion)
        assert not math.isnan(ld) and -math.inf < ld < -1e308
        _b = renyi.to_delta([1.7e308], [0.0], epsilon=2.0, conversion=conversion)
        d, order = _b.value, _b.order
        assert d > 0.0 and order == 1.7e308
        ld2 = float(renyi.to_log_delta([2.0, 1.7e308], [0.0, 0.0], epsilon=2.0))
        assert not math.isnan(ld2)


def test_linear_log_delta_no_runtime_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ld = float(conversions.linear_log_delta(1e300, epsilon=1.0))
    assert ld == 0.0


# ---------------------------------------------------------------------------------------------
# the linear-curve conversion never certifies less than the exact Gaussian profile (mpmath)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    log_a=st.floats(-22.0, 5.0),
    log_delta=st.sampled_from([-2.0, -5.0, -12.0, -40.0, -300.0]),
)
def test_linear_curve_conversion_dominates_the_exact_gaussian(log_a, log_delta):
    """α ↦ α·a is the exact Rényi curve of N(0,1) vs N(√(2a),1): converting it can never
    certify less than the exact profile (tiny a, δ down to 1e-300)."""
    a, delta = 10.0**log_a, 10.0**log_delta
    eps = float(iteration.linear_epsilon(a, delta=delta))
    assert eps >= mp_eps(delta, mp.sqrt(2 * mp.mpf(a)))
