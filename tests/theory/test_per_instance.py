"""Per-instance Rényi losses, per-example unlearning steps and the loss-barrier diagnostic.

Oracles: mpmath (50 digits) binomial sums and quadrature of the subsampled-Gaussian integral;
exact Gaussian chains (noisy GD on f(θ; z) = ½‖θ − z‖², whose gradient differences are
constant, so the composed per-instance bound is attained exactly).
"""

from __future__ import annotations

import math
import warnings

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unlearn_theory import conversions, gaussian, per_instance
from unlearn_theory import per_instance as P
from unlearn_theory.bounds import BoundKind, certifies
from unlearn_theory.errors import InvalidParameterError


def mp_subsampled_rdp(alpha: int, q: float, z: float, s: float) -> float:
    """log Σ_k C(α,k)(1−q)^{α−k} q^k e^{k(k−1)s²/(2z²)} / (α − 1) at 50 digits."""
    with mp.workdps(50):
        q, z, s = mp.mpf(q), mp.mpf(z), mp.mpf(s)
        tot = mp.fsum(
            mp.binomial(alpha, k)
            * (1 - q) ** (alpha - k)
            * q**k
            * mp.e ** (k * (k - 1) * s**2 / (2 * z**2))
            for k in range(alpha + 1)
        )
        return float(mp.log(tot) / (alpha - 1))


def test_step_rdp_against_mpmath_binomial_and_quadrature():
    cases = [(2, 0.01, 1.1, 0.7), (8, 0.05, 0.8, 1.0), (32, 0.002, 2.0, 0.3), (5, 1.0, 1.0, 0.5)]
    for alpha, q, z, s in cases:
        got = P.subsampled_gaussian_step_rdp(
            [alpha], sensitivity_ratio=s, sample_rate=q, noise_multiplier=z
        )
        assert float(got[0]) == pytest.approx(mp_subsampled_rdp(alpha, q, z, s), rel=1e-11)
    # the defining integral (noise multiplier z/s): E_{N(0,σ²)}[((1−q) + q e^{(2x−1)/(2σ²)})^α]
    alpha, q, z, s = 3, 0.1, 1.0, 0.8
    with mp.workdps(30):
        sig = mp.mpf(z) / s
        integ = mp.quad(
            lambda x: (
                mp.npdf(x, 0, sig) * ((1 - q) + q * mp.e ** ((2 * x - 1) / (2 * sig**2))) ** alpha
            ),
            [-mp.inf, 0, mp.inf],
        )
        oracle = float(mp.log(integ) / (alpha - 1))
    got = P.subsampled_gaussian_step_rdp(
        [alpha], sensitivity_ratio=s, sample_rate=q, noise_multiplier=z
    )
    assert float(got[0]) == pytest.approx(oracle, rel=1e-10)
    assert (
        P.subsampled_gaussian_step_rdp(
            [4], sensitivity_ratio=0.0, sample_rate=0.3, noise_multiplier=1.0
        )[0]
        == 0.0
    )


@settings(max_examples=25, deadline=None)
@given(
    q=st.floats(1e-3, 1.0),
    z=st.floats(0.5, 5.0),
    seed=st.integers(0, 2**32 - 1),
    grid=st.sampled_from([3, 17, 257, 2049]),
)
def test_composed_chord_is_an_upper_bound_and_tight(q, z, seed, grid):
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    g = rng.uniform(0, 1.5, size=(7, 13))
    orders = [2, 3, 8, 16]
    res = P.subsampled_gaussian_rdp(
        g, clip_gradient=1.0, sample_rate=q, noise_multiplier=z, orders=orders, grid_size=grid
    )
    exact = P.subsampled_gaussian_step_rdp(
        orders, sensitivity_ratio=np.minimum(g, 1.0), sample_rate=q, noise_multiplier=z
    ).sum(axis=1)
    assert np.all(res.rdp >= exact * (1 - 1e-12))
    if grid == 2049:
        assert np.all(res.rdp <= exact * (1 + 1e-4) + 1e-300)
    assert res.kind == "estimate" and "pDP" in res.caveat


def test_kinds_and_float32_input():
    rng = np.random.default_rng(np.random.SeedSequence(7))
    g = rng.uniform(0, 1, size=(20, 30))
    a = P.subsampled_gaussian_rdp(g, clip_gradient=1.0, sample_rate=0.01, noise_multiplier=1.0)
    b = P.subsampled_gaussian_rdp(
        g.astype(np.float32),
        clip_gradient=1.0,
        sample_rate=0.01,
        noise_multiplier=1.0,
        supremum=True,
    )
    assert a.kind == "estimate" and b.kind == "upper"
    np.testing.assert_allclose(a.rdp, b.rdp, rtol=1e-4)  # float32 rounding of the inputs
    eps = a.epsilon(1e-5)
    assert eps.shape == (20,) and np.all(eps >= 0)
    # per-example ε equals the improved conversion at the best computed order
    j = 3
    direct = min(
        conversions.epsilon_at_order(o, a.rdp[j, k], delta=1e-5) for k, o in enumerate(a.orders)
    )
    assert eps[j] == pytest.approx(direct, rel=1e-12)


def test_noisy_gd_form_is_exact_on_constant_gradient_differences():
    """f(θ; z) = ½‖θ − z‖²: g_t = ‖z̄_{−x} − x‖ for all θ, and the composed bound over all
    released iterates equals the exact trajectory divergence T·α·η²‖z̄ − z̄_{−x}‖²/(2s²)."""
    rng = np.random.default_rng(np.random.SeedSequence(11))
    n, d, T, eta, s = 40, 3, 25, 0.3, 0.2
    Z = rng.normal(size=(n, d))
    zbar_minus = (Z.sum(0)[None, :] - Z) / (n - 1)
    g = np.linalg.norm(zbar_minus - Z, axis=1)
    res = P.noisy_gd_rdp(
        np.repeat(g[:, None], T, axis=1),
        learning_rate=eta,
        noise_std=s,
        dataset_size=n,
        supremum=True,
    )
    assert res.kind == "upper"
    shift = np.linalg.norm(Z.mean(0)[None, :] - zbar_minus, axis=1)
    for alpha in (1.5, 2.0, 10.0):
        exact = T * alpha * eta**2 * shift**2 / (2 * s**2)
        np.testing.assert_allclose(res.at([alpha])[:, 0], exact, rtol=1e-10)
        assert np.all(res.at([alpha])[:, 0] >= exact)
    # the last iterate alone leaks less: exact last-iterate Rényi from a common point mass
    beta = 1 - eta
    var_T = s * s * (1 - beta ** (2 * T)) / (1 - beta * beta)
    gap_T = eta * shift * (1 - beta**T) / (1 - beta)
    last = 2.0 * gap_T**2 / (2 * var_T)
    assert np.all(last <= res.at([2.0])[:, 0])
    # per-example ε on the dense grid: an upper bound within 1% of the continuous optimum
    eps = res.epsilon(1e-5)
    for i in (0, 5):
        opt = float(conversions.linear_epsilon(res.linear_coefficient[i], delta=1e-5))
        assert opt <= eps[i] <= opt * 1.01


def test_unlearning_steps_certify_exact_toy():
    """Reference chain started at π_{D′} (stationarity term exactly 0). Train T steps on D from
    π_{D′}, then k(x) steps on D′: the exact pair (equal covariances) meets the target."""
    m, eta, s, n, T = 1.0, 0.5, 0.05, 30, 40
    rng = np.random.default_rng(np.random.SeedSequence(3))
    z = rng.normal(size=n)
    zbar = z.mean()
    zbar_minus = (z.sum() - z) / (n - 1)
    g = np.abs(zbar_minus - z)
    losses = P.noisy_gd_rdp(
        np.repeat(g[:, None], T, axis=1),
        learning_rate=eta,
        noise_std=s,
        dataset_size=n,
        supremum=True,
    )
    eps, delta = 1.0, 1e-5
    k = P.unlearning_steps(
        losses, epsilon=eps, delta=delta, learning_rate=eta, strong_convexity=m, smoothness=m
    )
    assert k.steps.shape == (n,) and np.all(k.steps >= 0)
    beta = 1 - eta * m
    v_inf = s * s / (1 - beta * beta)
    for i in range(n):
        gap0 = (zbar - zbar_minus[i]) * (1 - beta**T)  # training on D from π_{D′}
        gap = beta ** k.steps[i] * gap0
        mu = abs(gap) / math.sqrt(v_inf)
        if mu > 0:
            assert float(gaussian.epsilon(delta, mu=mu)) <= eps
        # the bound itself dominates the exact Rényi at its order
        a = k.orders[i]
        if np.isfinite(a) and k.steps[i] > 0:
            c_a = (a - 0.5) / (a - 1)
            bound = c_a * math.exp(-m * eta * k.steps[i] / (2 * a)) * losses.at([2 * a])[i, 0]
            assert bound >= a * mu * mu / 2
    # worst case (largest gradient difference) needs the most steps
    assert k.steps[np.argmax(g)] == k.steps.max()


def test_unlearning_steps_on_subsampled_curves_and_bad_inputs():
    rng = np.random.default_rng(np.random.SeedSequence(5))
    g = rng.uniform(0, 1, size=(10, 50))
    res = P.subsampled_gaussian_rdp(g, clip_gradient=1.0, sample_rate=0.05, noise_multiplier=1.0)
    k = P.unlearning_steps(
        res, epsilon=1.0, delta=1e-5, learning_rate=0.1, strong_convexity=1.0, smoothness=2.0
    )
    assert k.kind == "estimate" and k.steps.shape == (10,)
    with pytest.raises(InvalidParameterError, match="learning_rate"):
        P.unlearning_steps(
            res, epsilon=1.0, delta=1e-5, learning_rate=0.6, strong_convexity=1.0, smoothness=2.0
        )
    with pytest.raises(InvalidParameterError, match="strong_convexity"):
        P.unlearning_steps(
            res, epsilon=1.0, delta=1e-5, learning_rate=0.1, strong_convexity=0.0, smoothness=2.0
        )
    with pytest.raises(InvalidParameterError, match="losses"):
        P.unlearning_steps(
            res.rdp,
            epsilon=1.0,
            delta=1e-5,
            learning_rate=0.1,
            strong_convexity=1.0,
            smoothness=2.0,
        )
    # a target the stationarity term alone exceeds: no order certifies -> -1
    k2 = P.unlearning_steps(
        res,
        epsilon=0.5,
        delta=1e-5,
        learning_rate=0.1,
        strong_convexity=1.0,
        smoothness=2.0,
        stationarity=1e3,
    )
    assert np.all(k2.steps == -1)


@pytest.mark.parametrize(
    "arr, name",
    [
        (np.zeros((0, 5)), "gradient_norms"),  # empty forget/example set
        (np.zeros((3, 0)), "gradient_norms"),
        (np.zeros(5), "gradient_norms"),
        (-np.ones((2, 2)), "gradient_norms"),
        (np.full((2, 2), np.nan), "gradient_norms"),
    ],
)
def test_bad_norm_arrays(arr, name):
    with pytest.raises(InvalidParameterError, match=name):
        P.subsampled_gaussian_rdp(arr, clip_gradient=1.0, sample_rate=0.1, noise_multiplier=1.0)


def test_bad_scalar_inputs():
    g = np.ones((2, 3))
    with pytest.raises(InvalidParameterError, match="orders"):
        P.subsampled_gaussian_rdp(
            g, clip_gradient=1.0, sample_rate=0.1, noise_multiplier=1.0, orders=[2.5]
        )
    with pytest.raises(InvalidParameterError, match="sample_rate"):
        P.subsampled_gaussian_rdp(g, clip_gradient=1.0, sample_rate=0.0, noise_multiplier=1.0)
    with pytest.raises(InvalidParameterError, match="noise_multiplier"):
        P.subsampled_gaussian_rdp(g, clip_gradient=1.0, sample_rate=0.1, noise_multiplier=0.0)
    with pytest.raises(InvalidParameterError, match="clip_gradient"):
        P.subsampled_gaussian_rdp(g, clip_gradient=0.0, sample_rate=0.1, noise_multiplier=1.0)
    with pytest.raises(InvalidParameterError, match="noise_std"):
        P.noisy_gd_rdp(g, learning_rate=0.1, noise_std=[1.0, 2.0], dataset_size=10)
    with pytest.raises(InvalidParameterError, match="gradient_differences"):
        P.noisy_gd_rdp(np.zeros((0, 3)), learning_rate=0.1, noise_std=1.0, dataset_size=10)


def test_loss_barrier_is_a_labelled_diagnostic():
    def convex(theta):
        return np.array([np.sum(theta**2), np.sum((theta - 1) ** 2)])  # two groups

    out = P.loss_barrier(convex, np.zeros(3), np.ones(3), grid=11)
    assert out.kind == BoundKind.ESTIMATE and not certifies(out.kind)
    assert "not a bound" in out.note
    assert out.value.shape == (2,) and np.all(np.abs(out.value) < 1e-12)

    def double_well(theta):
        return float((theta[0] ** 2 - 1.0) ** 2)

    bw = P.loss_barrier(double_well, np.array([-1.0]), np.array([1.0]), grid=[0.5])
    assert float(bw.value[0]) == pytest.approx(1.0)
    with pytest.raises(InvalidParameterError, match="loss"):
        P.loss_barrier(3.0, np.zeros(2), np.ones(2))
    with pytest.raises(InvalidParameterError, match="theta_b"):
        P.loss_barrier(double_well, np.zeros(2), np.ones(3))


@settings(max_examples=30, deadline=None)
@given(
    alpha=st.integers(2, 40),
    q=st.floats(1e-4, 0.9),
    z=st.floats(0.5, 5.0),
    s=st.floats(0.05, 1.0),
)
def test_step_rdp_never_below_the_mpmath_binomial_sum(alpha, q, z, s):
    """The shared log-A table carries a float64 allowance: per-instance values are UPPER bounds
    (without it, gammaln cancellation put some 1e-10 relative below the exact sum)."""
    got = P.subsampled_gaussian_step_rdp(
        [alpha], sensitivity_ratio=s, sample_rate=q, noise_multiplier=z
    )
    with mp.workdps(40):
        exact = mp_subsampled_rdp(alpha, q, z, s)
    assert float(got[0]) >= exact
    assert float(got[0]) == pytest.approx(exact, rel=1e-9, abs=1e-13)


# ---------------------------------------------------------------------------------------------
# extreme inputs: subnormal, huge and overflowing arguments never give NaN or a rounded-down
# upper bound (RuntimeWarnings are errors here)


@pytest.fixture
def _warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


@pytest.mark.usefixtures("_warnings_are_errors")
def test_u6_noisy_gd_coefficient_never_underflows_to_zero():
    r = per_instance.noisy_gd_rdp(
        np.array([[1.0]]), learning_rate=1e-200, noise_std=1.0, dataset_size=1
    )
    assert r.linear_coefficient[0] > 0.0
    # tiny learning rate times huge gradient: an exact 0.5, not 0 (w_t alone underflows)
    r = per_instance.noisy_gd_rdp(
        np.array([[1e200, 0.0]]), learning_rate=1e-200, noise_std=1.0, dataset_size=1
    )
    assert r.linear_coefficient[0] == pytest.approx(0.5, rel=1e-11)
    assert r.linear_coefficient[0] >= 0.5


@pytest.mark.usefixtures("_warnings_are_errors")
def test_n5_noisy_gd_rdp_no_nan_at_extreme_scales():
    r = per_instance.noisy_gd_rdp(
        np.array([[1.0]]), learning_rate=1.7e308, noise_std=1.7e308, dataset_size=1
    )
    assert r.rdp[0, 0] == pytest.approx(1.0, rel=1e-11)
    r = per_instance.noisy_gd_rdp(
        np.array([[0.0]]), learning_rate=5e-324, noise_std=5e-324, dataset_size=1
    )
    assert r.rdp[0, 0] == 0.0
    r = per_instance.noisy_gd_rdp(
        np.array([[1e300]]), learning_rate=1.0, noise_std=1e-300, dataset_size=1
    )
    assert r.linear_coefficient[0] == math.inf


@pytest.mark.usefixtures("_warnings_are_errors")
def test_n4_subsampled_gaussian_step_rdp_tiny_noise_is_inf():
    out = per_instance.subsampled_gaussian_step_rdp(
        [2], sensitivity_ratio=1.0, sample_rate=0.5, noise_multiplier=1e-160
    )
    assert out[0] == math.inf
    out = per_instance.subsampled_gaussian_step_rdp(
        [2], sensitivity_ratio=0.0, sample_rate=5e-324, noise_multiplier=5e-324
    )
    assert out[0] == 0.0
    out = per_instance.subsampled_gaussian_step_rdp(
        [2, 3], sensitivity_ratio=1.0, sample_rate=1.0, noise_multiplier=1e-154
    )
    assert not np.any(np.isnan(out)) and out[1] == math.inf


@pytest.mark.usefixtures("_warnings_are_errors")
def test_c6_subsampled_gaussian_rdp_tiny_noise_or_clip():
    r = per_instance.subsampled_gaussian_rdp(
        np.array([[1.0], [0.0]]),
        clip_gradient=1.0,
        sample_rate=0.5,
        noise_multiplier=1e-160,
        grid_size=5,
    )
    assert np.all(r.rdp[0] == math.inf) and np.all(r.rdp[1] == 0.0)
    r = per_instance.subsampled_gaussian_rdp(
        np.array([[1.0]]), clip_gradient=5e-324, sample_rate=0.5, noise_multiplier=1e-3, grid_size=5
    )
    exact = per_instance.subsampled_gaussian_step_rdp(
        r.orders, sensitivity_ratio=1.0, sample_rate=0.5, noise_multiplier=1e-3
    )
    assert np.all(r.rdp[0] >= exact * (1 - 1e-12))
    # q = 1 with a grid whose top nodes overflow: +inf only where a step reaches them
    r = per_instance.subsampled_gaussian_rdp(
        np.array([[1.0], [1e-5], [0.0]]),
        clip_gradient=1.0,
        sample_rate=1.0,
        noise_multiplier=1e-154,
        grid_size=50,
        orders=[2, 3, 64],
    )
    assert not np.any(np.isnan(r.rdp))
    assert r.rdp[0, 1] == math.inf and np.isfinite(r.rdp[1, 0]) and np.all(r.rdp[2] == 0.0)


# -- the sparse chord sum (one entry per step) against independent references ----------------


def _interp_reference(g, orders, q, z, grid):
    """Independent route: the chord through the exact nodes is np.interp over the node table
    (values from mpmath at 50 digits), summed step by step in math.fsum."""
    u_max = 0.5 / z / z
    nodes = np.linspace(0.0, u_max, grid)
    s_nodes = np.sqrt(2.0 * nodes) * z  # sensitivity ratio at each node
    out = np.empty((g.shape[0], len(orders)))
    u = 0.5 * (np.minimum(g, 1.0) / z) ** 2
    for j, a in enumerate(orders):
        table = np.array([mp_subsampled_rdp(a, q, z, min(s, 1.0)) for s in s_nodes])
        for i in range(g.shape[0]):
            out[i, j] = math.fsum(np.interp(u[i], nodes, table))
    return out


@pytest.mark.parametrize("steps, grid", [(13, 17), (40, 65), (3000, 33)])
def test_sparse_chord_sum_matches_interpolation_and_is_never_below(steps, grid):
    """Same chord, independent code: identical up to the documented upward allowances
    (never below; above by the 1e-12 table allowance plus the ~1e-11 float64 error of the
    node values, so at most 1e-10); block size does not change the result."""
    rng = np.random.default_rng(11)
    g = rng.uniform(0.0, 1.4, size=(5, steps))
    orders, q, z = [2, 5, 16], 0.05, 1.3
    ref = _interp_reference(g, orders, q, z, grid)
    kw = dict(clip_gradient=1.0, sample_rate=q, noise_multiplier=z, orders=orders, grid_size=grid)
    res = P.subsampled_gaussian_rdp(g, **kw).rdp
    assert np.all(res >= ref) and np.all(res <= ref * (1 + 1e-10))
    for blk in (1, 2, 7):
        np.testing.assert_array_equal(
            P.subsampled_gaussian_rdp(g, block_examples=blk, **kw).rdp, res
        )
    # and above the exact per-step sum (mpmath), as an upper bound must be
    if steps <= 40:
        exact = math.fsum(mp_subsampled_rdp(16, q, z, min(x, 1.0)) for x in g[0])
        assert res[0, 2] >= exact
