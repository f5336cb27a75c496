"""Langevin unlearning (PNSGD / LU), the deletion odometer and the "langevin" planner method.

Oracles: exact Gaussian chains (noisy GD on quadratics without projection, where every law is
Gaussian and D_α has a closed form) and mpmath (50 digits) for the PABI coefficient.
"""

from __future__ import annotations

import math
import warnings

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unlearn_theory import certify, langevin, planning
from unlearn_theory import langevin as L
from unlearn_theory.errors import InvalidParameterError
from unlearn_theory.methods.langevin import Langevin as LangevinAccountant

from .test_gaussian import DPS, mp_eps

BASE = dict(
    learning_rate=0.1, strong_convexity=1.0, smoothness=2.0, lipschitz=1.0, dataset_size=100
)


# ---------------------------------------------------------------------------------------------
# exact toy: full-batch noisy GD on f(x; d) = ½(x − d)ᵀH(x − d), no projection.
# x ← x − ηH(x − d̄) + s·ξ. Per-example gradient difference H(d − d′), norm ≤ 2M.
# Stationary law N(d̄, s²(I − A²)⁻¹), A = I − ηH (diagonal in H's eigenbasis).


def exact_stationary_unlearning(alpha, *, h, u, eta, s, n, steps):
    """D_α(U‖R) exactly: U = K steps on D′ from π_D, R = π_{D′} (equal covariances)."""
    h = np.asarray(h, float)
    beta = 1.0 - eta * h
    gap = beta**steps * (u / h) / n  # A^K H⁻¹u/n in the eigenbasis
    prec = (1.0 - beta**2) / s**2  # Σ⁻¹
    return alpha * 0.5 * float(np.sum(gap * gap * prec))


@settings(max_examples=40, deadline=None)
@given(
    m=st.floats(0.05, 2.0),
    ratio=st.floats(1.0, 20.0),
    eta_frac=st.floats(0.05, 0.99),
    steps=st.integers(1, 300),
    n=st.integers(2, 1000),
    noise_std=st.floats(0.01, 3.0),
    dirs=st.lists(st.floats(-1, 1), min_size=3, max_size=3),
    alpha=st.floats(1.01, 200.0),
)
def test_pabi_bound_dominates_exact_gaussian_chain(
    m, ratio, eta_frac, steps, n, noise_std, dirs, alpha
):
    Lsm = m * ratio
    eta = eta_frac * 2.0 / Lsm  # anywhere in (0, 2/L): c = max(1 − ηm, ηL − 1)
    h = np.array([m, 0.5 * (m + Lsm), Lsm])
    u = np.asarray(dirs) + 1e-3
    M = 1.0
    u = 2.0 * M * u / np.linalg.norm(u)  # worst-case norm 2M
    exact = exact_stationary_unlearning(alpha, h=h, u=u, eta=eta, s=noise_std, n=n, steps=steps)
    prob = dict(learning_rate=eta, strong_convexity=m, smoothness=Lsm, lipschitz=M, dataset_size=n)
    bound = L.unlearning_rdp(alpha, steps=steps, noise_std=noise_std, **prob)
    assert bound >= exact * (1 - 1e-10)
    paper = L.unlearning_rdp(
        alpha, steps=steps, noise_std=noise_std, convention="paper", form="paper", **prob
    )
    assert paper >= bound * (1 - 1e-12)


def test_injected_convention_is_tight_on_one_dimensional_chain():
    """1-D, many steps: bound/exact → 1, so any bound using MORE variance than injected fails."""
    m, eta, s, n, K = 1.0, 0.2, 0.3, 50, 200
    prob = dict(learning_rate=eta, strong_convexity=m, smoothness=m, lipschitz=1.0, dataset_size=n)
    for alpha in (1.5, 4.0, 32.0):
        exact = exact_stationary_unlearning(
            alpha, h=[m], u=np.array([2.0]), eta=eta, s=s, n=n, steps=K
        )
        bound = L.unlearning_rdp(alpha, steps=K, noise_std=s, **prob)
        assert exact <= bound <= exact * (1 + 1e-11) / (1 - (1 - eta * m) ** (2 * K))
        # paper convention (variance ησ² = s²/2) doubles every value
        paper = L.unlearning_rdp(alpha, steps=K, noise_std=s, convention="paper", **prob)
        assert paper == pytest.approx(2 * bound, rel=1e-11)
        # a bound that used twice the injected variance would be unsound
        assert 0.5 * bound < exact


def test_noise_scale_statistics_match_the_convention():
    """Simulated chain with s = √(2ητ): stationary variance s²/(1 − c²) = τ/(m(1 − ηm/2))."""
    rng = np.random.default_rng(np.random.SeedSequence(20261202))
    m, eta, tau = 1.0, 0.1, 0.5
    s = L.noise_std_from_temperature(temperature=tau, learning_rate=eta)
    assert L.temperature_from_noise_std(noise_std=s, learning_rate=eta) == pytest.approx(tau)
    x = np.zeros(20000)
    c = 1 - eta * m
    for _ in range(300):
        x = c * x + s * rng.standard_normal(x.size)
    target = tau / (m * (1 - eta * m / 2))
    assert np.var(x) == pytest.approx(target, rel=0.03)
    assert s * s / (1 - c * c) == pytest.approx(target, rel=1e-12)


@settings(max_examples=30, deadline=None)
@given(
    m=st.floats(0.05, 2.0),
    ratio=st.floats(1.0, 20.0),
    eta_frac=st.floats(0.05, 1.0),
    steps=st.integers(0, 300),
    n=st.integers(2, 500),
    noise_std=st.floats(0.01, 3.0),
    alpha=st.floats(1.05, 100.0),
)
def test_lsi_bound_dominates_exact_gaussian_chain(m, ratio, eta_frac, steps, n, noise_std, alpha):
    Lsm = m * ratio
    eta = eta_frac / Lsm  # the LSI theorem needs η ≤ 1/L
    h = np.array([m, Lsm])
    u = np.array([2.0, 0.0])  # worst direction for the slow mode (m)
    exact = exact_stationary_unlearning(alpha, h=h, u=u, eta=eta, s=noise_std, n=n, steps=steps)
    prob = dict(
        learning_rate=eta, strong_convexity=m, smoothness=Lsm, lipschitz=1.0, dataset_size=n
    )
    bound = L.unlearning_rdp(alpha, steps=steps, noise_std=noise_std, route="lsi", **prob)
    assert bound >= exact * (1 - 1e-10)


def test_pabi_coefficient_against_mpmath():
    mp.mp.dps = 50
    for z, n, c, var in [(0.3, 7, 0.9, 0.04), (2.0, 10**6, 1 - 1e-9, 1.0), (1e-3, 1, 0.5, 1e-4)]:
        a = L.pabi_coefficient(z, steps=n, contraction=c, variance=var)
        Z, C, V = mp.mpf(z), mp.mpf(c), mp.mpf(var)
        oracle = Z**2 * C ** (2 * n) * (1 - C**2) / (2 * V * (1 - C ** (2 * n)))
        assert a == pytest.approx(float(oracle), rel=1e-9)
        last = L.pabi_coefficient(z, steps=n, contraction=c, variance=var, allocation="last")
        assert last == pytest.approx(float(Z**2 * C ** (2 * n) / (2 * V)), rel=1e-9)
    # c = 1 (m = 0): Cor. 3.10 form Z²/(2vN)
    assert L.pabi_coefficient(2.0, steps=4, contraction=1.0, variance=0.5) == pytest.approx(1.0)


def test_distance_tracker_lemma_3_3_and_cor_3_7():
    p = L.LangevinProblem.create(**BASE, batch_size=10, radius=5.0)
    c, B = p.contraction, p.batches_per_epoch
    e = 2 * 0.1 * 1.0 / 10
    assert p.distance(3) == pytest.approx(e * (1 - c ** (3 * B)) / (1 - c**B), rel=1e-12)
    assert p.distance(None) == pytest.approx(e / (1 - c**B), rel=1e-12)
    assert p.distance(0) == 0.0
    # full batch: Z_B = 2M/(nm) (the minimiser's sensitivity)
    q = L.LangevinProblem.create(**BASE)
    assert q.distance(None) == pytest.approx(2 * 1.0 / (100 * 1.0), rel=1e-12)
    # the 2R cap
    r = L.LangevinProblem.create(**BASE, radius=1e-3)
    assert r.distance(None) == pytest.approx(2e-3)
    # uneven batches: the smallest batch sets the per-epoch gap
    u = L.LangevinProblem.create(**{**BASE, "dataset_size": 105}, batch_size=10)
    assert u.batches_per_epoch == 11 and u.smallest_batch == 5


@settings(max_examples=25, deadline=None)
@given(
    epochs=st.integers(1, 20),
    T=st.integers(1, 200),
    b=st.sampled_from([1, 5, 20, 100]),
    alpha=st.floats(1.05, 50.0),
)
def test_finite_training_tight_form_never_above_published(epochs, T, b, alpha):
    steps = epochs * (100 // b)  # whole epochs
    prob = dict(**BASE, batch_size=b, radius=2.0, training_epochs=T, steps=steps, noise_std=0.2)
    for conv in ("injected", "paper"):
        tight = L.unlearning_rdp(alpha, convention=conv, **prob)
        paper = L.unlearning_rdp(alpha, convention=conv, form="paper", **prob)
        assert tight <= paper * (1 + 1e-12)


def test_curves_are_curves_and_epsilon_monotone_in_steps():
    c = L.unlearning_curve(steps=5, noise_std=0.05, **BASE)
    vals = c(np.array([2.0, 4.0, 8.0]))
    assert vals.shape == (3,) and np.all(np.diff(vals) > 0)
    assert c.linear_coefficient is not None and c.kind == "upper"
    lsi = L.unlearning_curve(steps=5, noise_std=0.05, route="lsi", **BASE)
    assert lsi.linear_coefficient is None
    prev = math.inf
    for k in (0, 1, 2, 5, 10, 50):
        e = float(L.certified_epsilon(delta=1e-5, steps=k, noise_std=0.05, route="lsi", **BASE))
        assert e <= prev
        prev = e


@settings(max_examples=15, deadline=None)
@given(eps=st.floats(0.2, 5.0), noise=st.floats(0.005, 0.5), route=st.sampled_from(["pabi", "lsi"]))
def test_steps_needed_is_minimal_and_certifies(eps, noise, route):
    k = L.steps_needed(epsilon=eps, delta=1e-5, noise_std=noise, route=route, **BASE)
    assert (
        float(L.certified_epsilon(delta=1e-5, steps=k, noise_std=noise, route=route, **BASE)) <= eps
    )
    if k > 0:
        e_prev = float(
            L.certified_epsilon(delta=1e-5, steps=k - 1, noise_std=noise, route=route, **BASE)
        )
        assert e_prev > eps


@settings(max_examples=15, deadline=None)
@given(
    eps=st.floats(0.2, 5.0),
    steps=st.integers(1, 100),
    route=st.sampled_from(["pabi", "lsi"]),
    T=st.sampled_from([None, 30]),
)
def test_noise_for_steps_never_overshoots(eps, steps, route, T):
    prob = dict(**BASE, radius=1.0, training_epochs=T, route=route)
    s = L.noise_std_for_steps(epsilon=eps, delta=1e-5, steps=steps, **prob)
    assert float(L.certified_epsilon(delta=1e-5, steps=steps, noise_std=s, **prob)) <= eps
    assert float(L.certified_epsilon(delta=1e-5, steps=steps, noise_std=s * 0.99, **prob)) > eps


# ---------------------------------------------------------------------------------------------
# odometer


def test_odometer_dominates_exact_sequential_chain():
    """1-D quadratic, worst-case replacements in one direction: exact per-request D_α."""
    m, eta, s, n, M = 1.0, 0.2, 0.05, 100, 1.0
    prob = dict(learning_rate=eta, strong_convexity=m, smoothness=m, lipschitz=M, dataset_size=n)
    odo = L.DeletionOdometer(epsilon=1.0, delta=1e-5, noise_std=s, **prob)
    beta = 1 - eta * m
    v_inf = s * s / (1 - beta * beta)
    offset = 0.0  # mean of the current model minus the mean of the current reference
    for _ in range(6):
        rec = odo.request()
        offset = beta**rec.steps * (offset + 2 * M / (n * m))  # reference moves by 2M/(nm)
        for alpha in (1.5, 3.0, 20.0):
            exact = alpha * offset**2 / (2 * v_inf)
            assert alpha * rec.coefficient >= exact * (1 - 1e-12)
        assert rec.epsilon <= 1.0
        # the exact pair is a Gaussian shift: the certified ε (Gaussian-DP route) is above its ε
        assert rec.route == "gaussian_dp" and rec.epsilon >= mp_eps(1e-5, offset / math.sqrt(v_inf))


def test_odometer_composition_and_budget_refusal():
    odo = L.DeletionOdometer(
        epsilon=1.0, delta=1e-5, noise_std=0.05, total_epsilon=2.5, max_total_steps=1000, **BASE
    )
    recs = []
    with pytest.raises(L.BudgetExceededError):
        for _ in range(50):
            recs.append(odo.request())
    assert len(recs) >= 2
    # cumulative = composition (sum of the linear coefficients), never below any part
    assert recs[-1].cumulative_coefficient == pytest.approx(sum(r.coefficient for r in recs))
    cum = [r.cumulative_epsilon for r in recs]
    assert all(b >= a for a, b in zip(cum, cum[1:]))
    assert all(r.cumulative_epsilon >= r.epsilon for r in recs)
    # the refused request changed nothing
    before = (odo.records, odo.residual_distance, odo.total_steps)
    with pytest.raises(L.BudgetExceededError):
        odo.request()
    assert (odo.records, odo.residual_distance, odo.total_steps) == before
    # W∞ recursion Z^{(s+1)} = c^{N_s} Z^{(s)} + Z_B (no projection here), never beyond the
    # stationary sum Z_B/(1 − c^{N_min}); distances need not grow once the step counts differ
    z = [r.distance for r in recs]
    c = L.contraction_factor(learning_rate=0.1, strong_convexity=1.0, smoothness=2.0)
    z_b = z[0]
    for prev, nxt in zip(recs, recs[1:]):
        assert nxt.distance == pytest.approx(c**prev.steps * prev.distance + z_b, rel=1e-12)
    n_min = min(r.steps for r in recs)
    assert max(z) <= z_b / (1 - c**n_min) * (1 + 1e-12)
    # the per-request certificates are the Gaussian-DP route; the Rényi route is kept available
    assert {r.route for r in recs} == {"gaussian_dp"}
    renyi = L.DeletionOdometer(
        epsilon=1.0, delta=1e-5, noise_std=0.05, analysis="renyi", **BASE
    ).request()
    assert renyi.route == "renyi" and renyi.epsilon > recs[0].epsilon


def test_odometer_step_budget_and_bad_requests():
    odo = L.DeletionOdometer(epsilon=1.0, delta=1e-5, noise_std=0.05, max_total_steps=3, **BASE)
    with pytest.raises(L.BudgetExceededError, match="max_total_steps"):
        odo.request(steps=10)
    assert odo.records == ()
    with pytest.raises(InvalidParameterError, match="forget_size"):
        odo.request(0)
    with pytest.raises(InvalidParameterError, match="steps"):
        odo.request(steps=0)
    rec = odo.preview()
    assert odo.records == () and rec.index == 1
    assert issubclass(L.BudgetExceededError, Exception)


# ---------------------------------------------------------------------------------------------
# bad inputs


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(learning_rate=1.0), "learning_rate"),  # η = 2/L
        (dict(learning_rate=1.5), "learning_rate"),
        (dict(strong_convexity=-0.1), "strong_convexity"),
        (dict(strong_convexity=3.0), "strong_convexity"),  # m > L
        (dict(smoothness=0.0), "smoothness"),
        (dict(lipschitz=0.0), "lipschitz"),
        (dict(dataset_size=0), "dataset_size"),
        (dict(batch_size=101), "batch_size"),
        (dict(forget_size=0), "forget_size"),
        (dict(radius=-1.0), "radius"),
    ],
)
def test_bad_problem_inputs(kwargs, name):
    with pytest.raises(InvalidParameterError, match=name):
        L.unlearning_curve(steps=3, noise_std=0.1, **{**BASE, **kwargs})


def test_bad_route_inputs():
    with pytest.raises(InvalidParameterError, match="learning_rate"):  # η > 1/L for LSI
        L.unlearning_curve(steps=3, noise_std=0.1, route="lsi", **{**BASE, "learning_rate": 0.7})
    with pytest.raises(InvalidParameterError, match="strong_convexity"):
        L.unlearning_curve(steps=3, noise_std=0.1, route="lsi", **{**BASE, "strong_convexity": 0.0})
    with pytest.raises(InvalidParameterError, match="batch_size"):
        L.unlearning_curve(steps=3, noise_std=0.1, route="lsi", batch_size=10, **BASE)
    with pytest.raises(InvalidParameterError, match="radius"):  # m = 0, T = ∞, no projection
        L.unlearning_curve(steps=3, noise_std=0.1, **{**BASE, "strong_convexity": 0.0})
    with pytest.raises(InvalidParameterError, match="radius"):  # finite T needs 2R
        L.unlearning_curve(steps=3, noise_std=0.1, training_epochs=5, **BASE)
    with pytest.raises(InvalidParameterError, match="noise_std"):
        L.unlearning_curve(steps=3, noise_std=0.0, **BASE)
    with pytest.raises(InvalidParameterError, match="convention"):
        L.unlearning_curve(steps=3, noise_std=0.1, convention="half", **BASE)
    with pytest.raises(InvalidParameterError, match="learning_rate"):
        L.contraction_factor(
            learning_rate=0.6, strong_convexity=1, smoothness=2, theorem_range=True
        )
    with pytest.raises(InvalidParameterError, match="orders"):
        L.unlearning_rdp(1.0, steps=3, noise_std=0.1, **BASE)


def test_mini_batch_needs_whole_epochs():
    prob = dict(**BASE, batch_size=30)  # 4 batches per epoch (30, 30, 30, 10)
    with pytest.raises(InvalidParameterError, match="multiple of batches_per_epoch"):
        L.unlearning_curve(steps=6, noise_std=0.1, **prob)
    k = L.steps_needed(epsilon=1.0, delta=1e-5, noise_std=0.02, **prob)
    assert k % 4 == 0 and k > 0
    assert float(L.certified_epsilon(delta=1e-5, steps=k, noise_std=0.02, **prob)) <= 1.0
    assert float(L.certified_epsilon(delta=1e-5, steps=k - 4, noise_std=0.02, **prob)) > 1.0
    odo = L.DeletionOdometer(epsilon=1.0, delta=1e-5, noise_std=0.02, **prob)
    assert odo.request().steps % 4 == 0
    with pytest.raises(InvalidParameterError, match="multiple"):
        odo.request(steps=5)


def test_m_zero_uses_cor_3_10():
    prob = {**BASE, "strong_convexity": 0.0, "radius": 1.0}
    a = L.unlearning_curve(steps=8, noise_std=0.5, **prob).linear_coefficient
    assert a == pytest.approx((2 * 1.0) ** 2 / (2 * 0.25 * 8))  # Z = 2R (capped), Z²/(2s²N)


# ---------------------------------------------------------------------------------------------
# planner method


@pytest.fixture()
def registered():
    planning.register_method(LangevinAccountant(), replace=True)
    yield


@settings(max_examples=10, deadline=None)
@given(eps=st.floats(0.3, 4.0), steps=st.integers(1, 60))
def test_plan_certifies_its_target(eps, steps):
    planning.register_method(LangevinAccountant(), replace=True)
    p = planning.plan("langevin", epsilon=eps, delta=1e-5, steps=steps, **BASE)
    assert p.certifies_target and p.epsilon <= eps and p.bound_kind == "upper"
    c = planning.certify("langevin", delta=1e-5, noise_std=p.noise_std, steps=p.steps, **BASE)
    assert c.epsilon <= eps


def test_plan_modes(registered):
    tight = planning.plan("langevin", epsilon=1.0, delta=1e-5, steps=10, **BASE)
    paper = planning.plan("langevin", epsilon=1.0, delta=1e-5, steps=10, accounting="paper", **BASE)
    assert paper.noise_std > tight.noise_std  # published forms are conservative here
    assert paper.epsilon <= 1.0 and paper.paper_noise_std == paper.noise_std
    by_noise = planning.plan("langevin", epsilon=1.0, delta=1e-5, noise_std=0.02, **BASE)
    fewer = planning.certify(
        "langevin", delta=1e-5, noise_std=0.02, steps=by_noise.steps - 1, **BASE
    )
    assert by_noise.epsilon <= 1.0 < fewer.epsilon
    lsi = planning.plan("langevin", epsilon=1.0, delta=1e-5, steps=10, route="lsi", **BASE)
    assert lsi.epsilon <= 1.0
    assert planning.UnlearningPlan.from_json(tight.to_json()) == tight
    with pytest.raises(InvalidParameterError, match="steps"):
        planning.plan("langevin", epsilon=1.0, delta=1e-5, **BASE)
    with pytest.raises(InvalidParameterError, match="lipschitz"):
        planning.plan(
            "langevin",
            epsilon=1.0,
            delta=1e-5,
            steps=3,
            learning_rate=0.1,
            strong_convexity=1.0,
            smoothness=2.0,
            dataset_size=10,
        )
    with pytest.raises(InvalidParameterError, match="learning_rate"):
        planning.certify(
            "langevin", delta=1e-5, noise_std=0.1, steps=3, **{**BASE, "learning_rate": 1.0}
        )
    assert LangevinAccountant().applicable(BASE)


# ---------------------------------------------------------------------------------------------
# near-exact check with the projection: 1-D projected Langevin by grid propagation
# (docs/theory.md §12.6 item 7): cell masses on [−R, R] plus atoms at ±R, Φ-difference kernel.


def _projected_kernel(centers, edges, radius, eta, m, dbar, s):
    from scipy.special import ndtr

    src = np.concatenate([[-radius], centers, [radius]])  # atoms first/last
    mu = src - eta * m * (src - dbar)
    cdf = ndtr((edges[None, :] - mu[:, None]) / s)  # (sources, edges)
    K = np.empty((src.size, src.size))
    K[:, 0] = cdf[:, 0]
    K[:, 1:-1] = np.diff(cdf, axis=1)
    K[:, -1] = 1.0 - cdf[:, -1]
    return K


def _grid_renyi(p, q, alpha):
    mask = (p > 0) | (q > 0)
    with np.errstate(divide="ignore"):
        la = alpha * np.log(p[mask]) + (1 - alpha) * np.log(q[mask])
    from scipy.special import logsumexp

    return float(logsumexp(la)) / (alpha - 1)


@pytest.mark.parametrize("T, N", [(3, 1), (5, 3), (12, 6)])
def test_finite_training_bound_dominates_projected_grid_chain(T, N):
    m, eta, n, M, R, s = 1.0, 0.3, 10, 1.0, 1.0, 0.3
    dbar = 0.1
    dprime = dbar + 2 * M / (n * m)  # worst-case replacement
    G = 1600
    edges = np.linspace(-R, R, G + 1)
    centers = 0.5 * (edges[1:] + edges[:-1])
    KD = _projected_kernel(centers, edges, R, eta, m, dbar, s)
    KP = _projected_kernel(centers, edges, R, eta, m, dprime, s)
    start = np.zeros(G + 2)
    start[1 + G // 2] = 1.0  # (near) point mass at 0, inside the ball
    nu_T, nu_T_prime = start.copy(), start.copy()
    for _ in range(T):
        nu_T, nu_T_prime = nu_T @ KD, nu_T_prime @ KP
    U = nu_T.copy()
    for _ in range(N):
        U = U @ KP
    prob = dict(
        learning_rate=eta, strong_convexity=m, smoothness=m, lipschitz=M, dataset_size=n, radius=R
    )
    for alpha in (1.5, 2.0, 4.0, 10.0):
        exact = max(_grid_renyi(U, nu_T_prime, alpha), _grid_renyi(nu_T_prime, U, alpha))
        bound = L.unlearning_rdp(alpha, steps=N, noise_std=s, training_epochs=T, **prob)
        assert bound >= exact * 1.01


def test_well_trained_bound_dominates_projected_grid_chain():
    m, eta, n, M, R, s = 1.0, 0.3, 10, 1.0, 1.0, 0.3
    dbar, dprime = 0.1, 0.1 + 2 * M / (n * m)
    G = 1600
    edges = np.linspace(-R, R, G + 1)
    centers = 0.5 * (edges[1:] + edges[:-1])
    KD = _projected_kernel(centers, edges, R, eta, m, dbar, s)
    KP = _projected_kernel(centers, edges, R, eta, m, dprime, s)
    pi_d = np.full(G + 2, 1.0 / (G + 2))
    pi_p = pi_d.copy()
    for _ in range(400):  # stationary laws (c^400 is negligible)
        pi_d, pi_p = pi_d @ KD, pi_p @ KP
    prob = dict(
        learning_rate=eta, strong_convexity=m, smoothness=m, lipschitz=M, dataset_size=n, radius=R
    )
    U = pi_d.copy()
    for N in range(1, 8):
        U = U @ KP
        for alpha in (1.5, 4.0):
            exact = max(_grid_renyi(U, pi_p, alpha), _grid_renyi(pi_p, U, alpha))
            bound = L.unlearning_rdp(alpha, steps=N, noise_std=s, **prob)
            assert bound >= exact * 1.01


# ---------------------------------------------------------------------------------------------
# extreme inputs: subnormal, huge and overflowing arguments never give NaN or a rounded-down
# upper bound (RuntimeWarnings are errors here)


PROBLEM = dict(
    learning_rate=0.1, strong_convexity=1.0, smoothness=2.0, lipschitz=1.0, dataset_size=100
)


@pytest.fixture
def _warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


@pytest.mark.usefixtures("_warnings_are_errors")
def test_u6_pabi_coefficient_never_underflows_to_zero():
    # true value 5e-401 (c = 1) and ~1e-400 (c < 1): below float64, so the smallest positive
    a = langevin.pabi_coefficient(1e-200, steps=1, contraction=1.0, variance=1.0)
    assert a > 0.0
    assert langevin.pabi_coefficient(1e-200, steps=3, contraction=0.5, variance=1.0) > 0.0
    assert langevin.pabi_coefficient(1.0, steps=10**6, contraction=0.5, variance=1.0) > 0.0


@pytest.mark.usefixtures("_warnings_are_errors")
def test_pabi_coefficient_is_upper_against_mpmath_at_extreme_scales():
    for z, n, c, var in [(1e-150, 3, 0.5, 1e-10), (1e150, 7, 0.9, 1e290), (1e-100, 1, 1.0, 1e-5)]:
        a = langevin.pabi_coefficient(z, steps=n, contraction=c, variance=var)
        with mp.workdps(40):
            Z, C, V = mp.mpf(z), mp.mpf(c), mp.mpf(var)
            if c == 1.0:
                exact = Z**2 / (2 * V * n)
            else:
                exact = Z**2 * C ** (2 * n) * (1 - C**2) / (2 * V * (1 - C ** (2 * n)))
        assert mp.mpf(a) >= exact
        assert mp.mpf(a) <= exact * (1 + mp.mpf("1e-11"))


@pytest.mark.usefixtures("_warnings_are_errors")
def test_n2_pabi_coefficient_inf_over_inf():
    a = langevin.pabi_coefficient(1e300, steps=1, contraction=1.0, variance=1.7e308)
    assert a == pytest.approx(0.5 * 1e300 * (1e300 / 1.7e308), rel=1e-10)  # Z²/(2v), was NaN


@pytest.mark.usefixtures("_warnings_are_errors")
def test_c5_pabi_coefficient_subnormal_variance_overflows_to_inf():
    assert langevin.pabi_coefficient(1e-3, steps=1, contraction=0.5, variance=5e-324) == math.inf


@pytest.mark.usefixtures("_warnings_are_errors")
def test_n3_temperature_and_noise_std_conversions():
    t = langevin.temperature_from_noise_std(noise_std=1e300, learning_rate=1.7e308)
    assert t == pytest.approx(0.5 * 1e300 * (1e300 / 1.7e308), rel=1e-12)  # was NaN
    with pytest.raises(InvalidParameterError, match="noise_std"):
        langevin.temperature_from_noise_std(noise_std=1e-300, learning_rate=1.7e308)
    with pytest.raises(InvalidParameterError, match="temperature"):
        langevin.noise_std_from_temperature(temperature=1.7e308, learning_rate=1.7e308)
    # was a silent 0.0: √(2·5e-324·5e-324) ≈ 7.07e-324 rounds to the smallest positive float
    assert langevin.noise_std_from_temperature(temperature=5e-324, learning_rate=5e-324) == 5e-324
    # σ² = (5e-324)²/2 underflows to 0: an error naming the argument, not a silent 0.0
    with pytest.raises(InvalidParameterError, match="noise_std"):
        langevin.temperature_from_noise_std(noise_std=5e-324, learning_rate=1.0)
    s = langevin.noise_std_from_temperature(temperature=1e-300, learning_rate=1e-8)
    assert s == pytest.approx(math.sqrt(2e-308), rel=1e-15)


@pytest.mark.usefixtures("_warnings_are_errors")
@pytest.mark.parametrize("route", ["pabi", "lsi"])
def test_c5_certified_epsilon_with_tiny_noise_is_inf_not_a_crash(route):
    eps = float(
        langevin.certified_epsilon(delta=1e-5, steps=10, noise_std=1e-170, route=route, **PROBLEM)
    )
    assert eps == math.inf


@pytest.mark.usefixtures("_warnings_are_errors")
def test_c5_certified_epsilon_huge_radius_paper_form():
    eps = float(
        langevin.certified_epsilon(
            delta=1e-5,
            steps=1,
            noise_std=1e-150,
            learning_rate=0.9999999999999999,
            strong_convexity=1e-8,
            smoothness=1.0,
            lipschitz=1e300,
            dataset_size=100,
            radius=1.7e308,
            form="paper",
        )
    )
    assert eps == math.inf


@pytest.mark.usefixtures("_warnings_are_errors")
def test_c5_lsi_curve_with_subnormal_temperature_is_finite_upper():
    kw = dict(steps=10, route="lsi", training_epochs=3, **PROBLEM)
    small = langevin.unlearning_rdp(2.0, noise_std=1e-155, **kw)
    unit = langevin.unlearning_rdp(2.0, noise_std=1.0, **kw)
    # ρ scales as 1/noise_std²: exactly 1e310 times the unit-noise value (beyond float64)
    assert math.isfinite(small)
    assert math.log(small) - math.log(unit) >= 310 * math.log(10.0) - 1e-9


@pytest.mark.usefixtures("_warnings_are_errors")
def test_c5_noise_std_for_steps_extreme_targets_recertify():
    for te in (3, None):
        kw = dict(steps=10, training_epochs=te, radius=1.0, **PROBLEM)
        s = langevin.noise_std_for_steps(epsilon=1.7e308, delta=5e-324, **kw)
        assert s > 0
        eps = float(langevin.certified_epsilon(delta=5e-324, noise_std=s, **kw))
        assert eps <= 1.7e308


@pytest.mark.usefixtures("_warnings_are_errors")
def test_c5_deletion_odometer_with_tiny_noise_raises_library_error():
    odo = langevin.DeletionOdometer(epsilon=1.0, delta=1e-5, noise_std=1e-170, **PROBLEM)
    with pytest.raises(InvalidParameterError, match="steps"):
        odo.request(1, steps=10)


# ---------------------------------------------------------------------------------------------
# the certificate dominates the exact Gaussian laws of noisy GD on a 1-D quadratic (mpmath)


@pytest.mark.parametrize("route", ["pabi", "lsi"])
@pytest.mark.parametrize(
    "m, eta, n, k, s, delta",
    [
        (0.5, 0.5, 100, 5, 0.3, 1e-5),
        (2.0, 0.1, 10, 0, 1.0, 1e-8),
        (0.05, 1.0, 1000, 50, 0.05, 1e-3),
    ],
)
def test_langevin_dominates_exact_quadratic(route, m, eta, n, k, s, delta):
    """PNGD (no projection) on f(x; d) = m/2 (x − c_d)², replacement moving the mean centre by
    2M/(nm): both laws are N(·, s²/(1 − c²)) in the well-trained regime, μ = c^K·2M/(nm)·√(1−c²)/s."""
    M = 1.0
    r = certify(
        "langevin",
        delta=delta,
        noise_std=s,
        steps=k,
        learning_rate=eta,
        strong_convexity=m,
        smoothness=m,
        lipschitz=M,
        dataset_size=n,
        route=route,
    )
    with mp.workdps(DPS):
        c = 1 - mp.mpf(eta) * m
        mu = c**k * (2 * mp.mpf(M) / (n * m)) * mp.sqrt(1 - c**2) / s
        assert r.epsilon >= mp_eps(delta, mu)


# ---------------------------------------------------------------------------------------------
# Gaussian DP on the PABI route (docs/gdp_amplification_by_iteration.md)

GRID = dict(m=1.0, eta=0.3, n=10, M=1.0, R=1.0, s=0.3)


def _grid_laws(T, N, *, stationary=False):
    """Projected 1-D chain on a grid: U (N steps on D′ from training on D) and R (training on
    D′), with T training steps from a point mass at 0 (or the stationary laws)."""
    m, eta, n, M, R, s = (GRID[k] for k in ("m", "eta", "n", "M", "R", "s"))
    dbar = 0.1
    dprime = dbar + 2 * M / (n * m)  # worst-case replacement
    G = 1600
    edges = np.linspace(-R, R, G + 1)
    centers = 0.5 * (edges[1:] + edges[:-1])
    KD = _projected_kernel(centers, edges, R, eta, m, dbar, s)
    KP = _projected_kernel(centers, edges, R, eta, m, dprime, s)
    if stationary:
        nu, nu_p = np.full(G + 2, 1.0 / (G + 2)), np.full(G + 2, 1.0 / (G + 2))
        T = 90  # c^90 = 0.7^90 < 1e-13: the stationary laws to far below the grid error
    else:
        nu = np.zeros(G + 2)
        nu[1 + G // 2] = 1.0
        nu_p = nu.copy()
    for _ in range(T):
        nu, nu_p = nu @ KD, nu_p @ KP
    U = nu.copy()
    for _ in range(N):
        U = U @ KP
    return U, nu_p


def _grid_hockey(p, q, eps):
    return float(np.sum(np.maximum(p - math.exp(eps) * q, 0.0)))


GRID_PROBLEM = dict(
    learning_rate=0.3, strong_convexity=1.0, smoothness=1.0, lipschitz=1.0, dataset_size=10
)


@pytest.mark.parametrize("T, N", [(None, 2), (3, 1), (5, 3), (12, 6)])
def test_gaussian_dp_route_dominates_projected_grid_chain(T, N):
    """Both directions: the grid chain's hockey-stick divergence at the certified ε stays below
    δ (with a 1% allowance for the O(h²) grid), for the well-trained and the finite-T routes; the
    certificate is the Gaussian-DP route and is below the Rényi (weak-triangle) route."""
    U, R = _grid_laws(T or 0, N, stationary=T is None)
    prob = dict(GRID_PROBLEM, radius=1.0)
    for delta in (1e-2, 1e-5):
        b = L.certified_epsilon(delta=delta, steps=N, noise_std=0.3, training_epochs=T, **prob)
        r = L.certified_epsilon(
            delta=delta, steps=N, noise_std=0.3, training_epochs=T, analysis="renyi", **prob
        )
        assert b.details["route"] == "gaussian_dp" and b.value < r.value
        for p, q in ((U, R), (R, U)):
            assert _grid_hockey(p, q, b.value) <= delta * 1.01


@settings(max_examples=40, deadline=None)
@given(
    m=st.floats(0.05, 2.0),
    ratio=st.floats(1.0, 10.0),
    eta_frac=st.floats(0.05, 0.99),
    n=st.integers(2, 200),
    b_frac=st.floats(0.1, 1.0),
    radius=st.floats(0.1, 10.0),
    T=st.one_of(st.none(), st.integers(0, 30)),
    epochs=st.integers(0, 20),
    s=st.floats(0.01, 3.0),
    log_delta=st.floats(-12.0, -2.0),
)
def test_gaussian_dp_route_never_above_renyi_or_published(
    m, ratio, eta_frac, n, b_frac, radius, T, epochs, s, log_delta
):
    """The PABI certificate (min of routes) is never above the shifted-Rényi / weak-triangle
    route nor the published Thm 3.2 / Cor. 3.7 forms; the GDP μ of the finite-T route is the sum
    of its two legs."""
    smooth = m * ratio
    b = max(1, int(b_frac * n))
    prob = dict(
        learning_rate=eta_frac * 2.0 / smooth,
        strong_convexity=m,
        smoothness=smooth,
        lipschitz=1.0,
        dataset_size=n,
        batch_size=b,
        radius=radius,
    )
    steps = epochs * -(-n // b)
    delta = 10.0**log_delta
    kw = dict(steps=steps, noise_std=s, training_epochs=T, **prob)
    best = L.certified_epsilon(delta=delta, **kw).value
    renyi = L.certified_epsilon(delta=delta, analysis="renyi", **kw).value
    paper = L.certified_epsilon(delta=delta, form="paper", **kw).value
    assert best <= renyi and best <= paper
    curve = L.unlearning_curve(**kw)
    if T is not None:
        legs = curve.details
        mu_sum = legs["gaussian_dp_mu_unlearning_leg"] + legs["gaussian_dp_mu_training_leg"]
        assert curve.gaussian_dp_mu >= mu_sum and curve.gaussian_dp_mu <= mu_sum * (1 + 1e-15)


def test_gaussian_dp_well_trained_is_tight_on_exact_quadratic_chain():
    """Well-trained PNGD on f(x; d) = m/2 (x − c_d)² (no projection): exact μ = c^K·Z·√(1−c²)/s
    with Z = 2M/(nm); the Gaussian-DP bound is μ/√(1 − c^{2K}): never below the exact ε
    (mpmath) and within 1e-6 of it once c^{2K} is negligible; the Rényi route is > 5% above."""
    m, eta, n, s, M, delta = 0.5, 0.5, 100, 0.3, 1.0, 1e-5
    for k in (1, 5, 40):
        r = certify(
            "langevin",
            delta=delta,
            noise_std=s,
            steps=k,
            learning_rate=eta,
            strong_convexity=m,
            smoothness=m,
            lipschitz=M,
            dataset_size=n,
        )
        renyi = certify(
            "langevin",
            delta=delta,
            analysis="renyi",
            noise_std=s,
            steps=k,
            learning_rate=eta,
            strong_convexity=m,
            smoothness=m,
            lipschitz=M,
            dataset_size=n,
        )
        with mp.workdps(DPS):
            c = 1 - mp.mpf(eta) * m
            mu = c**k * (2 * mp.mpf(M) / (n * m)) * mp.sqrt(1 - c**2) / s
            exact = mp_eps(delta, mu)
            bound_mu = mu / mp.sqrt(1 - c ** (2 * k))
        assert (
            r.details["analysis_route"] == "gaussian_dp" and "stationary" in r.details["reference"]
        )
        assert r.epsilon >= exact and r.epsilon >= mp_eps(delta, bound_mu)
        assert float(r.details["gaussian_dp_mu"]) == pytest.approx(float(bound_mu), rel=1e-12)
        if k == 40:
            assert r.epsilon <= float(exact) * (1 + 1e-6)
        assert renyi.epsilon > r.epsilon * 1.05


@settings(max_examples=60, deadline=None)
@given(mu1=st.floats(0.01, 5.0), mu2=st.floats(0.01, 5.0), eps=st.floats(0.0, 15.0))
def test_tradeoff_triangle_beats_the_hockey_stick_triangle(mu1, mu2, eps):
    """T(P,Q) ≥ G_μ₁, T(Q,R) ≥ G_μ₂ ⇒ T(P,R) ≥ G_{μ₁+μ₂}; the hockey-stick triangle inequality
    δ(ε) ≤ δ₁(ε₁) + e^{ε₁}δ₂(ε − ε₁) on the same legs is never below it (the chain N(0), N(μ₁),
    N(μ₁+μ₂) attains the f-DP bound), checked over a grid of splits ε₁."""
    from unlearn_theory import gaussian

    direct = float(gaussian.delta(eps, mu=mu1 + mu2))
    e1 = np.linspace(0.0, eps, 201)
    hs = gaussian.delta(e1, mu=mu1) + np.exp(e1) * gaussian.delta(eps - e1, mu=mu2)
    assert direct <= float(np.min(hs)) * (1 + 1e-9)


def test_certificate_states_its_reference_chain():
    """Finite training compares with the retrained model ν_T(D′), not the retrained-then-unlearned
    chain; the ε against the latter (unlearning leg only) is reported beside it."""
    kw = dict(GRID_PROBLEM, radius=1.0, noise_std=0.3, steps=60, training_epochs=12)
    r = certify("langevin", delta=1e-5, **kw)
    assert "NOT the retrained-then-unlearned" in r.details["reference"]
    other = r.details["epsilon_vs_retrained_then_unlearned"]
    assert 0.0 <= other < r.epsilon
    lsi = certify("langevin", delta=1e-5, route="lsi", noise_std=0.3, steps=10, **BASE)
    assert lsi.details["analysis_route"] == "renyi" and "retrained" in lsi.details["reference"]
    with pytest.raises(InvalidParameterError, match="analysis"):
        certify(
            "langevin",
            delta=1e-5,
            route="lsi",
            analysis="gaussian_dp",
            noise_std=0.3,
            steps=10,
            **BASE,
        )


@pytest.mark.parametrize("T", [None, 12])
def test_gaussian_dp_plans_certify_and_need_less_noise(T):
    kw = dict(GRID_PROBLEM, radius=1.0, training_epochs=T)
    steps = 60 if T else 6
    p = planning.plan("langevin", epsilon=1.0, delta=1e-5, steps=steps, **kw)
    assert p.epsilon <= 1.0 and p.details["analysis_route"] == "gaussian_dp"
    renyi_noise = L.noise_std_for_steps(
        epsilon=1.0, delta=1e-5, steps=steps, analysis="renyi", **kw
    )
    gdp_noise = L.noise_std_for_steps(
        epsilon=1.0, delta=1e-5, steps=steps, analysis="gaussian_dp", **kw
    )
    assert p.noise_std <= renyi_noise and p.noise_std == pytest.approx(gdp_noise, rel=1e-9)
    assert certify(p.spec, delta=1e-5, analysis="renyi").epsilon > 1.0
