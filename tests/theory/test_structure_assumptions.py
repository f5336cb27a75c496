"""Upward rounding of the Gaussian profile, the model-clipping floor, mu at huge ε, and the
certificates that use declared structure (docs/declared_assumptions.md)."""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import load_script
from unlearn_theory import InvalidParameterError, certify, contraction, gaussian, plan, structure
from unlearn_theory import expected_sensitivity as es
from unlearn_theory.methods import GradientClippingSpec, ModelClippingSpec, spec_from_dict
from unlearn_theory.update_rule import ClipGradient
from verification.toys import GradientClippingChain, ModelClippingGrid

exact_delta = load_script("make_gaussian_oracles").exact_delta

# ---------------------------------------------------------------------------------------------
# A. gaussian.log_delta rounds upward; mu at huge ε; the refined recursion has no floor


def test_log_delta_far_tail_case_of_the_audit_is_not_below_the_exact_value():
    eps, m = 0.526, 3.537e-5  # log δ ≈ −1.1e8; was one ulp (1.5e-8 nats) low
    ours = gaussian.log_delta(eps, mu=m)
    with mp.workdps(60):
        exact = mp.log(exact_delta(eps, m))
        assert mp.mpf(ours) >= exact
        assert mp.mpf(ours) - exact <= 1e-14 * abs(exact)  # a relative nudge, not a shortcut


@settings(max_examples=150, deadline=None)
@given(eps=st.floats(0.0, 1e3), log10_mu=st.floats(-5.0, 3.0))
def test_log_delta_is_never_below_the_mpmath_value(eps, log10_mu):
    m = 10.0**log10_mu
    ours = gaussian.log_delta(eps, mu=m)
    with mp.workdps(60):
        exact = mp.log(exact_delta(eps, m))
        assert mp.mpf(ours) >= exact, (eps, m)
        assert mp.mpf(ours) - exact <= 4e-12 + 1e-14 * abs(exact)
    # the scalar and the vectorised paths agree and both round upward
    assert float(gaussian.log_delta(np.array([eps]), mu=np.array([m]))[0]) >= float(exact)
    d = gaussian.delta(eps, mu=m)
    assert mp.mpf(d) >= mp.exp(exact) * (1 - mp.mpf("1e-15")) or d == 5e-324


def test_mu_at_huge_and_infinite_epsilon():
    assert gaussian.mu(epsilon=math.inf, delta=1e-5) == math.inf
    for eps in (1e300, 1.2e308, float(np.finfo(np.float64).max)):
        m = gaussian.mu(epsilon=eps, delta=1e-5)
        assert math.isfinite(m) and m > 0
        assert gaussian.log_delta(eps, mu=m) <= math.log(1e-5)
        assert m == pytest.approx(math.sqrt(2.0) * math.sqrt(eps), rel=1e-12)
    out = gaussian.mu(epsilon=np.array([1.0, 1.3e308, np.inf]), delta=1e-5)
    assert out[0] == gaussian.mu(epsilon=1.0, delta=1e-5) and math.isfinite(out[1])
    assert out[2] == math.inf
    for bad in (-math.inf, math.nan):
        with pytest.raises(InvalidParameterError, match="epsilon"):
            gaussian.mu(epsilon=bad, delta=1e-5)


@settings(max_examples=40, deadline=None)
@given(
    eps=st.floats(0.0, 1e3),
    log10_r=st.floats(-3.0, 1.0),
    steps=st.integers(1, 60),
    log10_s0=st.one_of(st.none(), st.floats(-1.0, 4.0)),
)
def test_refined_never_above_plain_including_below_the_old_floor(eps, log10_r, steps, log10_s0):
    kw = dict(
        epsilon=eps,
        clip_initial=1.0,
        clip_model=1.0,
        noise_std=2.0 / 10.0**log10_r,
        steps=steps,
        initial_noise_std=None if log10_s0 is None else 10.0**log10_s0,
    )
    refined = contraction.model_clipping_log_deltas(**kw)
    plain = contraction.plain_log_deltas(**kw)
    assert np.all(np.isfinite(refined)) and np.all(np.isfinite(plain))
    assert np.all(refined <= plain)
    assert np.all(np.diff(refined) <= 0)


def test_refined_goes_below_minus_1e6_and_stays_below_plain():
    kw = dict(epsilon=10.0, clip_initial=1.0, clip_model=1.0, noise_std=200.0, steps=20)
    refined = contraction.model_clipping_log_deltas(initial_noise_std=50.0, **kw)
    plain = contraction.plain_log_deltas(initial_noise_std=50.0, **kw)
    assert refined[-1] < -1e6 and plain[-1] < -1e6  # the old floor is gone
    assert np.all(refined <= plain)


# ---------------------------------------------------------------------------------------------
# B1. gradient clipping with a declared convex, L-smooth loss (inert clip)

_GC = dict(clip_initial=1.0, clip_gradient=1.0, learning_rate=0.1, weight_decay=1.0)


@pytest.mark.parametrize("steps", [1, 5, 20])
def test_convex_smooth_route_on_the_zero_field_toy(steps):
    toy = GradientClippingChain(noise_std=1.0, steps=steps, field="zero", **_GC)
    exact = toy.epsilon(1e-5)
    free = certify("gradient_clipping", delta=1e-5, **toy.certify_kwargs())
    declared = certify(
        "gradient_clipping", delta=1e-5, assume_convex_smooth=0.0, **toy.certify_kwargs()
    )
    assert declared.epsilon >= exact * (1 - 1e-12)  # never below the exact value
    assert declared.epsilon < free.epsilon  # strictly tighter
    assert declared.details["declared_assumptions"]["assume_convex_smooth"] == 0.0
    assert declared.details["assumption_free_epsilon"] == free.epsilon
    if steps == 1:  # exactly a Gaussian with mu = 2 C0 rho / s
        assert declared.epsilon == pytest.approx(exact, rel=1e-9)
    if steps == 20:  # the Gaussian-DP conversion is exact here (measured 1 + 6e-13);
        # the Rényi-only declared route was 1.10
        assert free.epsilon / exact > 10 and declared.epsilon / exact < 1.0 + 1e-6
        assert declared.details["route"] == "gaussian_dp"
        renyi = certify(
            "gradient_clipping",
            delta=1e-5,
            assume_convex_smooth=0.0,
            analysis="renyi",
            **toy.certify_kwargs(),
        )
        assert renyi.epsilon / exact > 1.09 and renyi.details["route"] == "renyi"


@settings(max_examples=30, deadline=None)
@given(
    c0=st.floats(0.1, 10),
    lr=st.floats(1e-3, 0.5),
    wd=st.floats(0.0, 1.9),
    s=st.floats(0.05, 5),
    steps=st.integers(2, 200),
    smooth=st.floats(0.0, 50.0),
    log10_delta=st.floats(-10, -2),
)
def test_convex_smooth_declared_route_never_above_its_renyi_only_form(
    c0, lr, wd, s, steps, smooth, log10_delta
):
    kw = dict(
        delta=10.0**log10_delta,
        smoothness=smooth,
        clip_initial=c0,
        learning_rate=lr,
        weight_decay=wd,
        noise_std=s,
        steps=steps,
    )
    best, info = structure.convex_smooth_epsilon(**kw)
    renyi, rinfo = structure.convex_smooth_epsilon(analysis="renyi", **kw)
    assert best <= renyi
    assert rinfo["conversion_route"] == "renyi" and info["coefficient"] == rinfo["coefficient"]


@pytest.mark.parametrize("curvature", [0.5, 3.0, 5.0, 17.0])
def test_convex_smooth_route_dominates_the_quadratic_toy(curvature):
    # f = curvature/2 (x - a)^2: convex, L-smooth with L = curvature; the toy runs unclipped,
    # the declared regime (clip inert)
    toy = GradientClippingChain(
        noise_std=0.7, steps=12, field="quadratic", curvature=curvature, anchor=0.3, **_GC
    )
    exact = toy.epsilon(1e-6)
    declared = certify(
        "gradient_clipping", delta=1e-6, assume_convex_smooth=curvature, **toy.certify_kwargs()
    )
    assert declared.epsilon >= exact * (1 - 1e-12)


@settings(max_examples=40, deadline=None)
@given(
    c0=st.floats(0.1, 10),
    c1=st.floats(0.0, 10),
    lr=st.floats(1e-3, 0.5),
    wd=st.floats(0.0, 1.9),
    s=st.floats(0.05, 5),
    steps=st.integers(1, 200),
    smooth=st.floats(0.0, 50.0),
)
def test_convex_smooth_route_never_above_the_default(c0, c1, lr, wd, s, steps, smooth):
    kw = dict(clip_initial=c0, clip_gradient=c1, learning_rate=lr, weight_decay=wd, noise_std=s)
    kw["steps"] = steps
    free = certify("gradient_clipping", delta=1e-5, **kw).epsilon
    declared = certify("gradient_clipping", delta=1e-5, assume_convex_smooth=smooth, **kw)
    assert declared.epsilon <= free


def test_convex_smooth_coefficient_matches_the_allocator_with_contraction_kappa():
    # with L = 0 and C1 = 0 the route is the assumption-free bound with no shift (same engine)
    a = structure.convex_smooth_coefficient(
        smoothness=0.0,
        clip_initial=2.0,
        learning_rate=0.1,
        weight_decay=2.0,
        noise_std=0.5,
        steps=30,
    )
    from unlearn_theory import iteration

    b = iteration.constant_coefficient(
        steps=30,
        noise_std=0.5,
        clip_initial=2.0,
        clip_gradient=0.0,
        learning_rate=0.1,
        weight_decay=2.0,
    )
    assert a == pytest.approx(b, rel=1e-9) and a >= b * (1 - 1e-12)


def test_convex_smooth_declaration_is_validated_and_recorded():
    with pytest.raises(InvalidParameterError, match="assume_convex_smooth"):
        GradientClippingSpec(
            clip_initial=1.0,
            clip_gradient=1.0,
            learning_rate=0.1,
            steps=3,
            noise_std=1.0,
            assume_convex_smooth=-1.0,
        )
    spec = GradientClippingSpec(
        clip_initial=1.0,
        clip_gradient=1.0,
        learning_rate=0.1,
        steps=3,
        noise_std=1.0,
        assume_convex_smooth=2.0,
    )
    assert spec_from_dict(spec.to_dict()) == spec
    assert (
        GradientClippingSpec(
            clip_initial=1.0, clip_gradient=1.0, learning_rate=0.1, steps=3, noise_std=1.0
        ).assume_convex_smooth
        is None
    )  # default: assumption-free


def test_an_active_clip_breaks_non_expansiveness_in_two_dimensions():
    # why the inert clip is part of the declaration: f(x) = ½ xᵀAx convex and 1-smooth, γ = 1/L,
    # yet x ↦ x − γ Π_C(∇f(x)) expands this pair's distance (docs/declared_assumptions.md §1.4)
    a = np.diag([1.0, 0.1])

    def step(x, c=0.5):
        g = a @ x
        n = np.linalg.norm(g)
        return x - (g if n <= c else g * c / n)

    x, y = np.array([-0.42, -2.84]), np.array([-0.47, -2.89])
    assert np.linalg.norm(step(x) - step(y)) > 1.10 * np.linalg.norm(x - y)


# ---------------------------------------------------------------------------------------------
# B2. model clipping with a gradient clip C1


def test_clip_gradient_is_an_op_of_the_update_rule():
    spec = ModelClippingSpec(
        clip_initial=1.0,
        clip_model=1.0,
        noise_std=1.0,
        steps=2,
        learning_rate=0.1,
        clip_gradient=0.5,
    )
    assert any(isinstance(op, ClipGradient) for op in spec.update_rule().phases[0].ops)
    assert spec_from_dict(spec.to_dict()) == spec
    with pytest.raises(InvalidParameterError, match="clip_gradient"):
        ModelClippingSpec(
            clip_initial=1.0, clip_model=1.0, noise_std=1.0, steps=2, clip_gradient=-1.0
        )


def test_clipped_model_route_is_strictly_tighter_where_contraction_is_weak():
    kw = dict(
        clip_initial=10.0,
        clip_model=10.0,
        noise_std=1.0,
        steps=50,
        learning_rate=0.01,
        weight_decay=0.0,
    )
    free = certify("model_clipping", delta=1e-5, **kw).epsilon
    clipped = certify("model_clipping", delta=1e-5, clip_gradient=1.0, **kw)
    assert clipped.epsilon < 0.2 * free
    assert clipped.details["shifted_renyi_prefix_steps"] > 0


@pytest.mark.parametrize("steps", [3, 8])
def test_clipped_model_route_dominates_the_saturating_sign_toy(steps):
    # g = C1 sign(x − a): |g| = C1, so the clip is inert and the toy is a run of the method
    toy = ModelClippingGrid(
        noise_std=0.5,
        steps=steps,
        clip_initial=2.0,
        clip_model=2.0,
        learning_rate=0.05,
        field="sign",
        clip_gradient=1.0,
        anchor=0.1,
        cells=1500,
    )
    kw = toy.certify_kwargs()
    cert = certify("model_clipping", delta=1e-4, clip_gradient=1.0, learning_rate=0.05, **kw)
    free = certify("model_clipping", delta=1e-4, **kw).epsilon
    assert cert.epsilon <= free
    for direction in ("PQ", "QP"):
        exact = float(toy.delta(cert.epsilon, direction))
        err = float(toy.delta_error_estimate(cert.epsilon, direction))
        assert exact - err <= 1e-4, (direction, exact, err)


@settings(max_examples=15, deadline=None)
@given(
    c0=st.floats(0.5, 5),
    c2=st.floats(0.5, 5),
    s=st.floats(0.3, 3),
    steps=st.integers(1, 12),
    c1=st.floats(0.0, 3.0),
    lr=st.floats(1e-3, 0.2),
)
def test_clipped_model_route_never_above_the_default(c0, c2, s, steps, c1, lr):
    kw = dict(clip_initial=c0, clip_model=c2, noise_std=s, steps=steps, learning_rate=lr)
    free = certify("model_clipping", delta=1e-5, **kw).epsilon
    clipped = certify("model_clipping", delta=1e-5, clip_gradient=c1, **kw).epsilon
    assert clipped <= free


def test_prefix_coefficient_closed_form_equals_the_exact_allocator():
    from unlearn_theory import iteration

    rng = np.random.default_rng(3)
    for _ in range(60):
        d = rng.uniform(0.05, 5)
        lead = float(rng.choice([0.0, rng.uniform(0.1, 3)]))
        m = int(rng.integers(0 if lead else 1, 25))
        lr, wd, c1, s = rng.uniform(1e-3, 0.5), rng.uniform(0, 1.9), rng.uniform(0, 5), 0.7
        n_lead = 1 if lead else 0
        sched = iteration.Schedule.from_arrays(
            learning_rate=[0.0] * n_lead + [lr] * m,
            weight_decay=[0.0] * n_lead + [wd] * m,
            clip_gradient=[0.0] * n_lead + [c1] * m,
            noise_std=[lead] * n_lead + [s] * m,
            clip_initial=d,
            steps=n_lead + m,
        )
        exact = iteration.constrained_coefficient(sched).coefficient
        closed = structure.lead_then_constant_coefficient(
            2 * d, lead * lead, m, iteration.contraction_factor(lr, wd), 2 * lr * c1, s * s
        )
        assert closed >= exact * (1 - 1e-9) and closed == pytest.approx(exact, rel=1e-9)


# ---------------------------------------------------------------------------------------------
# B3. expected sensitivity (output perturbation with a declared E||θ_U − θ_R||)


def _mixture_vs_point_delta(eps, p, r, direction):
    """Exact δ of U = (1−p)N(0,1) + pN(r,1) against R = N(0,1) (mpmath closed forms)."""
    g = mp.exp(eps)
    if direction == "UR":  # μU − γ μR = p(N_r − γ' N_0), γ' = 1 + (γ − 1)/p
        return p * exact_delta(float(mp.log(1 + (g - 1) / p)), r)
    # R − γU = φ·[1 − γ(1−p) − γ p e^{rt − r²/2}]_+
    c = 1 - g * (1 - p)
    if c <= 0:
        return mp.mpf(0)
    t0 = (mp.log(c / (g * p)) + r * r / 2) / r
    return c * mp.ncdf(t0) - g * p * mp.ncdf(t0 - r)


@pytest.mark.parametrize("p,r", [(0.05, 2.0), (0.2, 1.0), (0.01, 4.0), (0.5, 0.3)])
def test_expected_sensitivity_bound_dominates_a_mixture_toy(p, r):
    # E D = p r; the certificate at that mean (and the sure bound r) is >= the exact δ
    x = p * r
    with mp.workdps(40):
        for eps in (0.0, 0.3, 1.0, 3.0):
            bound = es.delta(eps, expected_mu=x, max_mu=r)
            for direction in ("UR", "RU"):
                assert mp.mpf(bound) >= _mixture_vs_point_delta(eps, p, r, direction)


def test_expected_sensitivity_bound_is_attained_by_separated_worlds():
    # two worlds: mass w at distance r* apart, the rest identical and far away: δ = w θ(r*)
    eps = 1.0
    r_lo, r_hi = es.tangent_point(eps)
    r = 0.5 * (r_lo + r_hi)
    w = 0.05
    x = w * r
    bound = es.delta(eps, expected_mu=x)
    with mp.workdps(40):
        attained = w * exact_delta(eps, r)
        far = mp.mpf(60)  # the common component: identical in both worlds, 60 σ away

        def integrand(t):
            pu = w * mp.npdf(t - r) + (1 - w) * mp.npdf(t - far)
            pr = w * mp.npdf(t) + (1 - w) * mp.npdf(t - far)
            return max(pu - mp.e**eps * pr, 0)

        exact = mp.quad(integrand, [-12, 0, r / 2 + eps / r, r, 12, far - 12, far + 12])
    assert mp.mpf(bound) >= exact
    assert float(abs(exact / attained - 1)) < 1e-8
    assert bound <= float(attained) * (1 + 1e-5)  # tight: the supremum is w θ(r*)


@settings(max_examples=40, deadline=None)
@given(
    c0=st.floats(0.1, 10),
    frac=st.floats(1e-4, 1.0),
    s=st.floats(0.05, 20),
    log10_delta=st.floats(-12, -2),
)
def test_expected_sensitivity_never_above_the_default(c0, frac, s, log10_delta):
    d = 10.0**log10_delta
    free = certify("output_perturbation", delta=d, clip_initial=c0, noise_std=s).epsilon
    declared = certify(
        "output_perturbation",
        delta=d,
        clip_initial=c0,
        noise_std=s,
        expected_sensitivity=frac * 2 * c0,
    )
    assert declared.epsilon <= free * (1 + 1e-9)
    assert declared.details["assumption_free_epsilon"] == pytest.approx(free, rel=1e-12)


@settings(max_examples=12, deadline=None)
@given(x=st.floats(1e-4, 5.0), eps=st.floats(0.0, 8.0))
def test_majorant_is_below_the_markov_route_and_above_the_mean_gaussian(x, eps):
    ld = es.log_delta(eps, expected_mu=x)
    assert ld <= es.markov_log_delta(eps, expected_mu=x) + 1e-12
    assert ld >= gaussian.log_delta(eps, mu=x) - 1e-12  # a point mass at x is allowed


def test_expected_sensitivity_plan_is_strictly_tighter_and_records_the_declaration():
    free = plan("output_perturbation", epsilon=1.0, delta=1e-5, clip_initial=1.0)
    declared = plan(
        "output_perturbation",
        epsilon=1.0,
        delta=1e-5,
        clip_initial=1.0,
        expected_sensitivity=0.1,
    )
    assert declared.noise_std < free.noise_std
    assert declared.epsilon <= 1.0
    assert declared.spec.expected_sensitivity == 0.1
    assert "declared_assumptions" in declared.to_json()
    with pytest.raises(InvalidParameterError, match="expected_sensitivity"):
        certify(
            "output_perturbation",
            delta=1e-5,
            clip_initial=1.0,
            noise_std=1.0,
            expected_sensitivity=0.0,
        )


def test_plan_with_the_convex_smooth_declaration_calibrates_less_noise():
    kw = dict(clip_initial=1.0, clip_gradient=1.0, learning_rate=0.1, weight_decay=1.0)
    for steps in (1, 20):
        free = plan("gradient_clipping", epsilon=1.0, delta=1e-5, steps=steps, **kw)
        declared = plan(
            "gradient_clipping",
            epsilon=1.0,
            delta=1e-5,
            steps=steps,
            assume_convex_smooth=0.0,
            **kw,
        )
        assert declared.noise_std < free.noise_std and declared.epsilon <= 1.0
        assert declared.spec.assume_convex_smooth == 0.0
        assert certify(declared.spec, delta=1e-5).epsilon == declared.epsilon
