"""Tests for unlearn_theory.iteration: shifted-Rényi (PABI) engine, exact shift allocation."""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from unlearn_theory import iteration as it
from unlearn_theory.errors import InvalidParameterError

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
