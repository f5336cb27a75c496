"""Tests for unlearn_theory.iteration: shifted-Rényi (PABI) engine, exact shift allocation."""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from unlearn_theory import certify, iteration
from unlearn_theory import iteration as it
from unlearn_theory.errors import InvalidParameterError, NumericalPrecisionError

from .test_gaussian import DPS, _ratio, mp_eps
from .test_planning import EDGE, GC

P = dict(clip_initial=20.0, clip_gradient=10.0, learning_rate=0.01, weight_decay=50.0)


def _mp_coefficient(T, s, c0, c1, lr, wd):
    """50-digit oracle of B²/(2σ²W) from the defining sums (no closed forms)."""
    with mp.workdps(50):
        rho = 1 - mp.mpf(lr) * mp.mpf(wd)
        B = 2 * mp.mpf(c0) * rho**T + sum(2 * mp.mpf(lr) * c1 * rho**k for k in range(T))
        W = sum(rho ** (2 * k) for k in range(T))
        return B**2 / (2 * mp.mpf(s) ** 2 * W)


@pytest.mark.parametrize("T", [1, 2, 7, 40])
@pytest.mark.parametrize("wd", [0.0, 5.0, 50.0])
def test_constant_coefficient_matches_mpmath(T, wd):
    kw = dict(P, weight_decay=wd)
    got = it.constant_coefficient(steps=T, noise_std=0.7, **kw)
    want = float(_mp_coefficient(T, 0.7, 20.0, 10.0, 0.01, wd))
    assert want <= got <= want * (1 + 1e-11)
    sched = it.constant_schedule(steps=T, noise_std=0.7, **kw)
    alloc = it.constrained_coefficient(sched)
    assert alloc.closed_form_valid  # constant parameters: Z_t >= 0 automatically
    assert want <= alloc.coefficient <= want * (1 + 1e-10)


def test_T1_is_gaussian_shift():
    b = it.constant_B(steps=1, **P)
    assert b == pytest.approx(2 * 20 * 0.5 + 2 * 0.01 * 10)
    a = it.constant_coefficient(steps=1, noise_std=0.3, **P)
    assert a == pytest.approx(b**2 / (2 * 0.3**2), rel=1e-12)


@pytest.mark.parametrize("T,wd", [(1, 3.0), (5, 3.0), (30, 0.0), (200, 10.0)])
def test_zero_gradient_exactness_anchor(T, wd):
    """C1 = 0: the chain is Gaussian; exact D_α/α = (2C0 ρ^T)²/(2σ² Σ ρ^{2k})."""
    lr, s, c0 = 0.01, 0.5, 3.0
    # exact law by propagating mean difference and variance step by step
    m, var = 2 * c0, 0.0
    for _ in range(T):
        m *= 1 - lr * wd
        var = (1 - lr * wd) ** 2 * var + s**2
    exact = m * m / (2 * var)
    sched = it.constant_schedule(
        steps=T, noise_std=s, clip_initial=c0, clip_gradient=0.0, learning_rate=lr, weight_decay=wd
    )
    got = it.constrained_coefficient(sched).coefficient
    assert got == pytest.approx(exact, rel=1e-10)
    assert got >= exact * (1 - 1e-14)


@pytest.mark.parametrize("h", [0.5, 2.0, 10.0])
def test_quadratic_chain_is_dominated(h):
    """Quadratic loss, clipping inactive: exact Gaussian chain with factor ρ − γh ≤ ρ."""
    T, lr, wd, s, c0 = 20, 0.01, 5.0, 0.3, 2.0
    cfac = 1 - lr * wd - lr * h
    exact = (2 * c0 * cfac**T) ** 2 / (2 * s * s * sum(cfac ** (2 * k) for k in range(T)))
    bound = it.constant_coefficient(
        steps=T,
        noise_std=s,
        clip_initial=c0,
        clip_gradient=h * c0,
        learning_rate=lr,
        weight_decay=wd,
    )
    assert exact <= bound


def _random_schedule(rng, T):
    return it.Schedule.from_arrays(
        learning_rate=rng.uniform(0.0, 0.1, T),
        weight_decay=rng.uniform(0.0, 5.0, T),
        clip_gradient=rng.uniform(0.0, 3.0, T),
        noise_std=rng.uniform(0.05, 2.0, T),
        clip_initial=rng.uniform(0.0, 3.0),
    )


def _qp(sched):
    """Reference solver: SLSQP on the Z-parametrisation (small T only)."""
    T = sched.steps
    rho, s, v = sched.contraction, sched.shift, sched.noise_std**2
    z0 = 2 * sched.clip_initial

    def shifts(z):
        zz = np.concatenate([[z0], z, [0.0]])
        return rho * zz[:-1] + s - zz[1:]

    def cost(z):
        return float(np.sum(shifts(z) ** 2 / (2 * v)))

    cons = [{"type": "ineq", "fun": shifts}]
    best = math.inf
    for start in (np.zeros(T - 1), np.full(T - 1, z0)):
        res = minimize(
            cost,
            start,
            method="SLSQP",
            bounds=[(0, None)] * (T - 1),
            constraints=cons,
            options={"ftol": 1e-14, "maxiter": 500},
        )
        if res.success and np.all(shifts(res.x) >= -1e-9):
            best = min(best, res.fun)
    return best


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), T=st.integers(2, 9))
def test_allocation_is_optimal_feasible_and_dominates_closed_form(seed, T):
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    sched = _random_schedule(rng, T)
    alloc = it.constrained_coefficient(sched)
    # feasibility of the returned shifts, checked by an independent forward recursion
    assert it.verify_allocation(sched, alloc.shifts)
    energy = float(np.sum(alloc.shifts**2 / (2 * sched.noise_std**2)))
    assert energy == pytest.approx(alloc.coefficient, rel=1e-9)
    # constrained optimum >= unconstrained closed form; equal when the closed form is valid
    assert alloc.coefficient >= alloc.closed_form * (1 - 1e-12)
    if alloc.closed_form_valid:
        assert alloc.coefficient == pytest.approx(alloc.closed_form, rel=1e-10)
    # optimality against a generic QP solver
    qp = _qp(sched)
    assert alloc.coefficient <= qp * (1 + 1e-6) + 1e-12
    assert alloc.coefficient >= qp * (1 - 1e-4) - 1e-9


def test_closed_form_invalid_example():
    """Little to shift early, large clip late: the closed form needs Z_t < 0 (not certified)."""
    sched = it.Schedule.from_arrays(
        learning_rate=0.1,
        weight_decay=0.0,
        clip_gradient=[0.0, 0.0, 50.0],
        noise_std=1.0,
        clip_initial=0.1,
    )
    alloc = it.constrained_coefficient(sched)
    assert not alloc.closed_form_valid
    assert alloc.coefficient > alloc.closed_form * 1.5
    # the optimal allocation spends all of 2C0 in the first steps and the last shift at the end
    assert alloc.segments[-1] == 3 and len(alloc.segments) > 2
    assert it.verify_allocation(sched, alloc.shifts)
    # the closed form's shifts violate Z_t >= 0
    w = np.array([1.0, 1.0, 1.0])
    b = 0.2 + 2 * 0.1 * 50.0
    cf = b * w / 3.0
    assert not it.verify_allocation(sched, cf)


def test_noiseless_final_step_is_infinite():
    sched = it.Schedule.from_arrays(
        learning_rate=0.1,
        weight_decay=0.0,
        clip_gradient=1.0,
        noise_std=[1.0, 0.0],
        clip_initial=1.0,
    )
    assert it.constrained_coefficient(sched).coefficient == math.inf


def test_noiseless_middle_step_gets_no_shift():
    sched = it.Schedule.from_arrays(
        learning_rate=0.1,
        weight_decay=1.0,
        clip_gradient=1.0,
        noise_std=[1.0, 0.0, 1.0],
        clip_initial=1.0,
    )
    alloc = it.constrained_coefficient(sched)
    assert alloc.shifts[1] == 0.0 and math.isfinite(alloc.coefficient)
    assert it.verify_allocation(sched, alloc.shifts)


def test_long_schedule_log_space():
    """ρ^T underflows float64; the coefficient stays finite and positive."""
    sched = it.constant_schedule(
        steps=5000,
        noise_std=1.0,
        clip_initial=1.0,
        clip_gradient=0.0,
        learning_rate=0.5,
        weight_decay=1.0,
    )
    a = it.constrained_coefficient(sched).coefficient
    assert a >= 0.0 and math.isfinite(a)


def _brute_best_T(kw, N):
    vals = [
        it.constant_B(steps=t, **kw) ** 2
        / it.constant_W(steps=t, learning_rate=kw["learning_rate"], weight_decay=kw["weight_decay"])
        for t in range(1, N + 1)
    ]
    return int(np.argmin(vals)) + 1


@pytest.mark.parametrize(
    "kw",
    [
        dict(clip_initial=1.0, clip_gradient=10.0, learning_rate=0.01, weight_decay=1.0),
        dict(clip_initial=5.0, clip_gradient=1.0, learning_rate=0.05, weight_decay=0.0),
        dict(clip_initial=2.0, clip_gradient=3.0, learning_rate=0.02, weight_decay=0.7),
    ],
)
def test_integer_optimal_steps_among_candidates(kw):
    t_star = it.optimal_steps_real(**kw)
    assert math.isfinite(t_star)
    best = _brute_best_T(kw, int(3 * t_star) + 5)
    assert best in it.candidate_steps(max_steps=10**6, **kw)


def test_no_interior_optimum_plateau():
    kw = dict(clip_initial=20.0, clip_gradient=10.0, learning_rate=0.01, weight_decay=50.0)
    assert it.optimal_steps_real(**kw) == math.inf
    cands = it.candidate_steps(max_steps=10_000, **kw)
    assert max(cands) < 10_000


def test_weight_decay_continuity_tight():
    base = dict(clip_initial=1.0, clip_gradient=2.0, learning_rate=0.01)
    a0 = it.constant_coefficient(steps=50, noise_std=0.5, weight_decay=0.0, **base)
    for wd in (1e-6, 1e-9, 1e-12):
        a = it.constant_coefficient(steps=50, noise_std=0.5, weight_decay=wd, **base)
        assert a == pytest.approx(a0, rel=1e-4)
    assert it.optimal_steps_real(weight_decay=1e-9, **base) == pytest.approx(
        it.optimal_steps_real(weight_decay=0.0, **base), rel=1e-5
    )


@pytest.mark.parametrize(
    "kw,name",
    [
        (dict(learning_rate=-1.0), "learning_rate"),
        (dict(weight_decay=200.0), "weight_decay"),
        (dict(noise_std=float("inf")), "noise_std"),
        (dict(steps=0), "steps"),
        (dict(clip_gradient="x"), "clip_gradient"),
    ],
)
def test_bad_input_names_argument(kw, name):
    base = dict(P, steps=5, noise_std=1.0)
    base.update(kw)
    with pytest.raises(InvalidParameterError, match=name):
        it.constant_coefficient(**base)


def test_schedule_length_mismatch():
    with pytest.raises(InvalidParameterError, match="steps"):
        it.Schedule.from_arrays(
            learning_rate=[0.1, 0.1],
            weight_decay=0.0,
            clip_gradient=[1.0, 1.0, 1.0],
            noise_std=1.0,
            clip_initial=1.0,
        )


# ---------------------------------------------------------------------------------------------
# extreme inputs: the real-valued optimal step count at subnormal weight decay


@pytest.mark.parametrize("wd", EDGE)
def test_optimal_steps_tiny_weight_decay_tends_to_the_lambda_zero_value(wd):
    t0 = iteration.optimal_steps_real(**GC, weight_decay=0.0)
    t = iteration.optimal_steps_real(**GC, weight_decay=wd)
    assert t == pytest.approx(t0, rel=1e-9)


def test_optimal_steps_matches_log_formula_where_it_is_accurate():
    wd = 1e-3  # γλ = 1e-6: the log-ratio form is accurate to ~1e-10 here
    exact = math.log1p(-wd * 1.0 / 10.0) / math.log1p(-0.001 * wd)
    assert iteration.optimal_steps_real(**GC, weight_decay=wd) == pytest.approx(exact, rel=1e-12)


# ---------------------------------------------------------------------------------------------
# coefficients against exact values (mpmath): time-varying schedules, the allocation QP,
# trailing noiseless steps, tiny increments, contraction rounding near γλ = 1


def test_time_varying_pure_weight_decay_is_exact():
    """Zero gradients, time-varying (γ_t, λ_t, σ_t): X_T − Y_T = 2C0∏ρ_t exactly, variance
    Σ_t w_t²σ_t²; the certified coefficient equals a_exact = (2C0∏ρ)²/(2Σw²σ²) to 1e-10 and is
    never below it."""
    rng = np.random.default_rng(np.random.SeedSequence(20261202))
    for _ in range(30):
        T = int(rng.integers(1, 30))
        lr = 10 ** rng.uniform(-3, 0, T)
        gl = rng.uniform(0, 0.9, T) * (rng.random(T) > 0.3)
        sig = 10 ** rng.uniform(-1, 1, T) * (rng.random(T) > 0.2)
        sig[-1] = max(sig[-1], 0.5)
        c0 = float(10 ** rng.uniform(-1, 1))
        sch = iteration.Schedule.from_arrays(
            learning_rate=lr,
            weight_decay=gl / lr,
            clip_gradient=0.0,
            noise_std=sig,
            clip_initial=c0,
        )
        with mp.workdps(DPS):
            rho = [1 - mp.mpf(x) * (mp.mpf(g) / mp.mpf(x)) for x, g in zip(lr, gl)]
            w = [mp.fprod(rho[t + 1 :]) for t in range(T)]
            exact = (2 * mp.mpf(c0) * mp.fprod(rho)) ** 2 / (
                2 * mp.fsum((w[t] * mp.mpf(sig[t])) ** 2 for t in range(T))
            )
        coef = iteration.constrained_coefficient(sch).coefficient
        assert coef >= exact
        assert _ratio(coef, exact) <= 1 + 1e-10


def test_schedule_allocation_is_feasible_and_not_beaten_by_a_qp():
    """Time-varying schedules (σ_t = 0 steps included): the returned shifts keep Z_t ≥ 0, end at
    Z_T = 0, cost ≤ the certified coefficient, and an SLSQP solve of the constrained QP (seeded
    with the library's shifts and random points) finds nothing smaller than the coefficient."""
    rng = np.random.default_rng(np.random.SeedSequence(5))
    n_invalid_closed_form = 0
    for _ in range(60):
        T = int(rng.integers(2, 7))
        lr = 10 ** rng.uniform(-2, 0, T)
        gl = rng.uniform(0, 0.9, T) * (rng.random(T) > 0.3)
        c1 = 10 ** rng.uniform(-1, 1, T) * (rng.random(T) > 0.2)
        sig = 10 ** rng.uniform(-1, 1, T) * (rng.random(T) > 0.15)
        sig[-1] = max(sig[-1], 0.3)
        c0 = float(10 ** rng.uniform(-1, 1))
        sch = iteration.Schedule.from_arrays(
            learning_rate=lr, weight_decay=gl / lr, clip_gradient=c1, noise_std=sig, clip_initial=c0
        )
        al = iteration.constrained_coefficient(sch)
        n_invalid_closed_form += not al.closed_form_valid
        assert iteration.verify_allocation(sch, al.shifts, rtol=1e-8)
        nz = sig > 0
        cost = float(np.sum(al.shifts[nz] ** 2 / (2 * sig[nz] ** 2)))
        assert cost <= al.coefficient * (1 + 1e-9)
        assert al.coefficient >= al.closed_form * (1 - 1e-12)
        rho, s = sch.contraction, sch.shift

        def zs(a, rho=rho, s=s, c0=c0):
            z, out = 2 * c0, []
            for t in range(len(a)):
                z = rho[t] * z + s[t] - a[t]
                out.append(z)
            return np.array(out)

        cons = [
            {"type": "eq", "fun": lambda a, zs=zs: zs(a)[-1]},
            {"type": "ineq", "fun": lambda a, zs=zs: zs(a)[:-1]},
        ]
        bounds = [(0, None) if sig[t] > 0 else (0, 0) for t in range(T)]
        for x0 in (al.shifts, rng.uniform(0, 2 * c0 + s.sum(), T) * nz):
            res = minimize(
                lambda a, nz=nz, sig=sig: np.sum(a[nz] ** 2 / (2 * sig[nz] ** 2)),
                x0,
                bounds=bounds,
                constraints=cons,
                method="SLSQP",
                options={"ftol": 1e-15, "maxiter": 500},
            )
            z = zs(res.x)
            if res.success and np.all(z[:-1] >= -1e-10) and abs(z[-1]) <= 1e-10:
                assert res.fun >= al.coefficient * (1 - 1e-6)
    assert n_invalid_closed_form > 0  # the constrained path was exercised


@pytest.mark.parametrize("tiny", [1e-3, 1e-14, 1e-16, 1e-20])
def test_shift_after_last_noisy_step_is_never_finite(tiny):
    """Regression (fixed in iteration.constrained_coefficient): a final noiseless step with any
    positive clip shift needs a shift after the last noise, so the shifted-Rényi bound is +inf
    (different oracles can make the outputs mutually singular). Before the fix, a shift below
    1e-15 relative to 2C0 was lost in the rounded U_t and a finite ε (10.72 at δ = 1e-5) came back.
    """
    sch = iteration.Schedule.from_arrays(
        learning_rate=1.0,
        weight_decay=0.0,
        clip_gradient=[0.0, tiny],
        noise_std=[1.0, 0.0],
        clip_initial=1.0,
    )
    assert iteration.constrained_coefficient(sch).coefficient == math.inf
    with pytest.raises(NumericalPrecisionError):
        certify(
            "gradient_clipping",
            delta=1e-5,
            noise_std=[1.0, 0.0],
            steps=2,
            clip_initial=1.0,
            clip_gradient=[0.0, tiny],
            learning_rate=1.0,
            weight_decay=0.0,
        )
    # noiseless trailing steps with weight decay only (no shift) stay finite
    sch = iteration.Schedule.from_arrays(
        learning_rate=1.0,
        weight_decay=[0.0, 0.5],
        clip_gradient=[1.0, 0.0],
        noise_std=[1.0, 0.0],
        clip_initial=1.0,
    )
    assert math.isfinite(iteration.constrained_coefficient(sch).coefficient)


@pytest.mark.parametrize("sigma_last", [1e-3, 1.3e-3, 1.7e-3, 2e-3, 1e-2])
def test_schedule_allocation_resolves_tiny_increments(sigma_last):
    """Regression (fixed in iteration.constrained_coefficient): σ = [1e5, σ₁], C1 = [0, 5], γ = 1,
    λ = 0, C0 = 1. The last step's ΔY = σ₁² is ~1 ulp of the cumulative Y = 1e10, so the edge
    energy taken from differences of cumulative sums was wrong by O(1): at σ₁ = 1.3e-3 the
    certified coefficient was 2.2518e7 against the allocation problem's optimum 2.9586e7 (24 %
    BELOW the proven bound), at σ₁ = 1e-3 it was +inf. Exact optimum: A₁ = min(2, 12Y₁/(Y₁+σ₁²)),
    a* = A₁²/(2Y₁) + (12 − A₁)²/(2σ₁²)."""
    sch = iteration.Schedule.from_arrays(
        learning_rate=1.0,
        weight_decay=0.0,
        clip_gradient=[0.0, 5.0],
        noise_std=[1e5, sigma_last],
        clip_initial=1.0,
    )
    al = iteration.constrained_coefficient(sch)
    with mp.workdps(DPS):
        y1, v = mp.mpf(1e5) ** 2, mp.mpf(sigma_last) ** 2
        a1 = min(mp.mpf(2), 12 * y1 / (y1 + v))
        exact = a1**2 / (2 * y1) + (12 - a1) ** 2 / (2 * v)
    assert al.coefficient >= exact and _ratio(al.coefficient, exact) <= 1 + 1e-9
    assert iteration.verify_allocation(sch, al.shifts, rtol=1e-9)


def test_schedule_allocation_matches_high_precision_hull_on_extreme_schedules():
    """σ_t over 12 decades, C1_t over 12 decades, γλ up to 1 − 1e-12, σ_t = 0 steps: the
    coefficient is never below the 80-digit lower-convex-hull optimum (computed here with the
    library's float ρ_t, see the ρ-rounding finding below) and the shifts are feasible."""
    rng = np.random.default_rng(np.random.SeedSequence(41))
    for _ in range(40):
        T = int(rng.choice([2, 5, 12]))
        lr = 10 ** rng.uniform(-4, 0, T)
        gl = np.where(
            rng.random(T) < 0.2,
            1 - 10 ** rng.uniform(-12, -1, T),
            rng.uniform(0, 0.5, T) * (rng.random(T) > 0.5),
        )
        c1 = 10 ** rng.uniform(-6, 6, T) * (rng.random(T) > 0.3)
        sig = 10 ** rng.uniform(-6, 6, T) * (rng.random(T) > 0.3)
        sig[-1] = max(sig[-1], 1e-3)
        c0 = float(10 ** rng.uniform(-6, 6))
        sch = iteration.Schedule.from_arrays(
            learning_rate=lr, weight_decay=gl / lr, clip_gradient=c1, noise_std=sig, clip_initial=c0
        )
        al = iteration.constrained_coefficient(sch)
        with mp.workdps(80):
            rho = [mp.mpf(float(r)) for r in sch.contraction]
            s = [mp.mpf(float(x)) for x in sch.shift]
            w = [mp.fprod(rho[t + 1 :]) for t in range(T)]
            xs, ys = [mp.mpf(0)], [mp.mpf(0)]
            u, y = 2 * mp.mpf(c0) * mp.fprod(rho), mp.mpf(0)
            for t in range(T):
                u += w[t] * s[t]
                y += (w[t] * mp.mpf(float(sig[t]))) ** 2
                xs.append(y)
                ys.append(u)
            if any(xs[t] >= xs[T] and ys[t] < ys[T] for t in range(1, T)):
                assert al.coefficient == math.inf
                continue
            hull = [0]
            for t in range(1, T + 1):
                if xs[t] <= xs[hull[-1]] and t < T:
                    continue
                while len(hull) >= 2:
                    i, j = hull[-2], hull[-1]
                    cross = (xs[j] - xs[i]) * (ys[t] - ys[i]) - (ys[j] - ys[i]) * (xs[t] - xs[i])
                    if cross <= 0:
                        hull.pop()
                    else:
                        break
                hull.append(t)
            opt = mp.fsum(
                (ys[j] - ys[i]) ** 2 / (2 * (xs[j] - xs[i])) for i, j in zip(hull[:-1], hull[1:])
            )
        assert al.coefficient >= opt
        assert iteration.verify_allocation(sch, al.shifts, rtol=1e-8)


def test_contraction_rounding_near_gamma_lambda_one():
    """Was a finding: ρ = 1 − γλ formed in float64 lost relative accuracy near γλ = 1; ρ is
    now formed from the exact product and rounded up (iteration.contraction_factor)."""
    lr, wd = 0.3, 3.33333333333  # γλ = 1 − 1.0e-12 (exact product), ρ ≈ 1e-12
    with mp.workdps(DPS):
        rho = 1 - mp.mpf(lr) * mp.mpf(wd)
        sched_exact = (2 * rho * rho) ** 2 / (2 * (rho * rho + 1))
        const_exact = (2 * rho**3) ** 2 / (2 * (1 + rho**2 + rho**4))
    sch = iteration.Schedule.from_arrays(
        learning_rate=lr, weight_decay=wd, clip_gradient=0.0, noise_std=[1.0, 1.0], clip_initial=1.0
    )
    const = iteration.constant_coefficient(
        steps=3,
        noise_std=1.0,
        clip_initial=1.0,
        clip_gradient=0.0,
        learning_rate=lr,
        weight_decay=wd,
    )
    assert iteration.constrained_coefficient(sch).coefficient >= sched_exact
    assert const >= const_exact


# ---------------------------------------------------------------------------------------------
# Gaussian DP from the same shift allocation (docs/gdp_amplification_by_iteration.md)


def _gc_cert(toy, delta, analysis="best"):
    return certify("gradient_clipping", delta=delta, analysis=analysis, **toy.certify_kwargs())


@pytest.mark.parametrize(
    "T, lr, wd, c0, c1, s, delta",
    [
        (10, 1e-3, 500.0, 1.0, 100.0, 1.3, 1e-5),  # the CIFAR-10 configuration
        (5, 0.01, 50.0, 20.0, 10.0, 5.0, 1e-5),
        (40, 0.05, 2.0, 1.0, 0.5, 0.2, 1e-8),
        (3, 0.1, 0.0, 2.0, 1.0, 1.0, 1e-3),
    ],
)
def test_gaussian_dp_route_is_exact_on_the_saturating_chain(T, lr, wd, c0, c1, s, delta):
    """Worst case of the bounded-perturbation maps (opposite saturating clipped gradients from
    ±C0): both laws are Gaussian with μ = B/(σ√W), which the Gaussian-DP route reproduces, so
    the certified ε is the exact one (mpmath oracle, both directions); the Rényi route is several
    percent above it."""
    from verification.toys import GradientClippingChain

    toy = GradientClippingChain(
        noise_std=s, steps=T, clip_initial=c0, clip_gradient=c1, learning_rate=lr, weight_decay=wd
    )
    best, renyi = _gc_cert(toy, delta), _gc_cert(toy, delta, "renyi")
    assert best.details["route"] == "gaussian_dp" and best.accountant == it.GAUSSIAN_DP_SOURCE
    assert best.details["mu"] == pytest.approx(toy.mu, rel=1e-12)
    exact = mp_eps(delta, toy.mu)
    assert best.epsilon >= exact  # never below the exact value
    assert _ratio(best.epsilon, exact) <= 1 + 1e-9  # and equal to it on the worst case
    for direction in ("PQ", "QP"):
        assert float(toy.delta(best.epsilon, direction=direction)) <= delta * (1 + 1e-9)
    assert renyi.epsilon > best.epsilon * 1.03


def test_gaussian_dp_reproduces_bok_su_altschuler_noisy_gd():
    """Noisy GD with c-contractive steps, per-step sensitivity s and noise σ from equal starts
    (C0 = 0): the shift allocation gives μ = μ₁·√((1+c)/(1−c)·(1−c^T)/(1+c^T)), μ₁ = s/σ, the
    exact f-DP of Bok, Su & Altschuler 2024 (arXiv 2403.00278) for strongly convex noisy GD."""
    for T, lr, wd in [(1, 0.1, 1.0), (7, 0.1, 1.0), (50, 0.01, 20.0), (300, 0.5, 0.1)]:
        c1, sigma = 3.0, 0.7
        a = it.constant_coefficient(
            steps=T,
            noise_std=sigma,
            clip_initial=0.0,
            clip_gradient=c1,
            learning_rate=lr,
            weight_decay=wd,
        )
        with mp.workdps(DPS):
            c = 1 - mp.mpf(lr) * mp.mpf(wd)
            mu1 = 2 * mp.mpf(lr) * c1 / sigma
            want = mu1 * mp.sqrt((1 + c) / (1 - c) * (1 - c**T) / (1 + c**T))
        got = it.gaussian_dp_mu(a)
        assert got >= want and _ratio(got, want) <= 1 + 1e-11


def test_gaussian_dp_route_is_exact_on_time_varying_pure_weight_decay():
    """Zero gradients, time-varying schedule: exact μ = 2C0∏ρ_t/√(Σ w_t²σ_t²); the Gaussian-DP
    certificate of the schedule equals the exact ε (mpmath) to 1e-9 and is never below it."""
    rng = np.random.default_rng(np.random.SeedSequence(20261204))
    for _ in range(8):
        T = int(rng.integers(2, 12))
        lr = 10 ** rng.uniform(-2, -0.5, T)
        gl = rng.uniform(0, 0.8, T)
        sig = 10 ** rng.uniform(-0.5, 0.5, T)
        c0 = float(10 ** rng.uniform(-1, 0))
        spec = dict(
            clip_initial=c0,
            clip_gradient=tuple([0.0] * T),
            learning_rate=tuple(lr.tolist()),
            weight_decay=tuple((gl / lr).tolist()),
            noise_std=tuple(sig.tolist()),
            steps=T,
        )
        r = certify("gradient_clipping", delta=1e-6, **spec)
        with mp.workdps(DPS):
            rho = [1 - mp.mpf(x) * (mp.mpf(g) / mp.mpf(x)) for x, g in zip(lr, gl)]
            w = [mp.fprod(rho[t + 1 :]) for t in range(T)]
            mu = (
                2
                * mp.mpf(c0)
                * mp.fprod(rho)
                / mp.sqrt(mp.fsum((w[t] * mp.mpf(sig[t])) ** 2 for t in range(T)))
            )
        exact = mp_eps(1e-6, mu)
        assert r.details["route"] == "gaussian_dp" and "schedule" in r.accountant
        assert r.epsilon >= exact and _ratio(r.epsilon, exact) <= 1 + 1e-9


@settings(max_examples=60, deadline=None)
@given(
    T=st.integers(1, 60),
    lr=st.floats(1e-3, 0.3),
    gl=st.floats(0.0, 0.9),
    c0=st.floats(0.05, 20.0),
    c1=st.floats(0.0, 20.0),
    s=st.floats(0.05, 20.0),
    log_delta=st.floats(-14.0, -2.0),
    field=st.sampled_from(["saturating", "zero", "quadratic"]),
)
def test_gaussian_dp_route_never_above_renyi_never_below_exact(
    T, lr, gl, c0, c1, s, log_delta, field
):
    """The certificate is the minimum of the routes (never above the shifted-Rényi one) and
    never below the exact ε of the worst-case / zero / quadratic toys, in both directions."""
    from verification.toys import GradientClippingChain

    delta = 10.0**log_delta
    wd = gl / lr
    curvature = 0.5 * (1 - gl) / lr  # |1 − γ(λ + h)| ≤ ρ for the quadratic field
    toy = GradientClippingChain(
        noise_std=s,
        steps=T,
        clip_initial=c0,
        clip_gradient=c1,
        learning_rate=lr,
        weight_decay=wd,
        field=field,
        curvature=curvature,
    )
    best, renyi = _gc_cert(toy, delta), _gc_cert(toy, delta, "renyi")
    gdp = _gc_cert(toy, delta, "gaussian_dp")
    assert best.epsilon <= renyi.epsilon and best.epsilon <= gdp.epsilon
    assert best.epsilon == min(renyi.epsilon, gdp.epsilon)
    if toy.mu > 0:
        assert best.epsilon >= mp_eps(delta, toy.mu)
        for direction in ("PQ", "QP"):
            assert float(toy.delta(best.epsilon, direction=direction)) <= delta * (1 + 1e-9)


@settings(max_examples=25, deadline=None)
@given(
    eps=st.floats(0.05, 20.0),
    log_delta=st.floats(-12.0, -2.0),
    setting=st.sampled_from(["cifar", "arch", "interior", "lambda0"]),
)
def test_gaussian_dp_plans_certify_and_never_need_more_noise(eps, log_delta, setting):
    """Plans at (ε, δ): the certificate never overshoots the target, the Gaussian-DP budget
    μ(ε, δ)²/2 is at least the Rényi one, and the planned noise is at most the Rényi plan's."""
    from unlearn_theory import plan

    kw = {
        "cifar": dict(
            clip_initial=1.0, clip_gradient=100.0, learning_rate=1e-3, weight_decay=500.0
        ),
        "arch": dict(P),
        "interior": dict(
            clip_initial=1.0, clip_gradient=10.0, learning_rate=1e-3, weight_decay=5.0
        ),
        "lambda0": dict(clip_initial=1.0, clip_gradient=10.0, learning_rate=1e-3, weight_decay=0.0),
    }[setting]
    delta = 10.0**log_delta
    p = plan("gradient_clipping", epsilon=eps, delta=delta, max_steps=2000, **kw)
    assert p.epsilon <= eps
    a_gdp = it.max_gaussian_dp_coefficient(epsilon=eps, delta=delta)
    assert a_gdp >= it.max_coefficient(epsilon=eps, delta=delta)
    assert float(it.gaussian_dp_epsilon(a_gdp, delta=delta)) <= eps
    if p.steps > 1:
        renyi_noise = it.noise_std_for_coefficient(
            it.max_coefficient(epsilon=eps, delta=delta), steps=p.steps, **kw
        )
        assert p.noise_std <= renyi_noise


def test_analysis_option_is_validated_and_routes_are_recorded():
    spec = dict(P, noise_std=5.0, steps=11)
    with pytest.raises(InvalidParameterError, match="analysis"):
        certify("gradient_clipping", delta=1e-5, analysis="gdp", **spec)
    with pytest.raises(InvalidParameterError, match="analysis"):
        it.certified_epsilon(0.1, delta=1e-5, analysis="exact")
    r = certify("gradient_clipping", delta=1e-5, analysis="renyi", **spec)
    assert r.details["route"] == "renyi" and r.order > 1 and "gaussian_dp_epsilon" not in r.details
    g = certify("gradient_clipping", delta=1e-5, analysis="gaussian_dp", **spec)
    assert g.details["route"] == "gaussian_dp" and g.order is None
    b = certify("gradient_clipping", delta=1e-5, **spec)
    assert b.epsilon == g.epsilon < r.epsilon
    assert b.details["renyi_epsilon"] == r.epsilon
    # a = 0 and a = +inf
    assert it.certified_epsilon(0.0, delta=1e-5).value == 0.0
    assert it.gaussian_dp_mu(math.inf) == math.inf
