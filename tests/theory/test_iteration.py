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

from .test_gaussian import DPS, _ratio
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
