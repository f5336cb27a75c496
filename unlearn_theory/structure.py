r"""Certificates that use structure declared by the user (docs/declared_assumptions.md §1–§2).

Every route here is optional and is taken only when the spec carries the declaration; the
certificate is then the minimum of the declared route and the assumption-free one (both are
valid under the declaration), and it records the declaration. The default stays
assumption-free.

1. Gradient clipping, loss declared convex and L-smooth with an inert clip
   (``GradientClippingSpec.assume_convex_smooth = L``). The declaration: every loss the run
   differentiates (each step's mini-batch retain loss) is convex and L-smooth, and its gradient
   norm never exceeds clip_gradient, so the clip never changes a gradient (e.g. a loss that is
   clip_gradient-Lipschitz). Then the step x ↦ ρ_t x − γ_t ∇f_t(x) is κ_t-Lipschitz with

       κ_t = max(ρ_t, γ_t L − ρ_t)         (ρ_t = 1 − γ_t λ_t; κ_t = ρ_t when γ_t L ≤ 2ρ_t),

   (co-coercivity of ∇f: ⟨∇f(x) − ∇f(y), x − y⟩ ≥ ‖∇f(x) − ∇f(y)‖²/L), so the shifted-Rényi
   bookkeeping runs with contraction κ_t and no shift: Z_{t+1} = κ_t Z_t − a_t, and

       D_α ≤ α·a,   a = 2C0² / Σ_t σ_t² ∏_{k≤t} κ_k^{−2}        [UPPER, both directions]

   (the Cauchy–Schwarz allocation, valid for every schedule since there is no shift). The same
   allocation gives μ-GDP with μ = √(2a) (shifted interpolation, Bok, Su & Altschuler 2024,
   arXiv 2403.00278, with ρ_t → κ_t and no shift; docs/declared_assumptions.md §1 step 6); the
   certificate is the smaller of the exact Gaussian profile at μ and the Rényi conversion of
   α·a [UPPER]. T = 1 is exactly a Gaussian mechanism with μ = 2C0 κ_0/σ_0. With an active clip the step is NOT
   non-expansive in dimension ≥ 2 for any γ > 0 (docs/declared_assumptions.md §1.4 gives a
   2-D quadratic where it expands a distance by 10 % at γ = 1/L): the inert clip is part of the declaration.

2. Model clipping with a gradient clip C1 (``ModelClippingSpec.clip_gradient``; an operation
   of the run, recorded in its update rule). The step map
   φ_t(x) = Π_{C2}(ρx − γΠ_{C1}(g_t(x))) satisfies ‖φ_t(x) − φ_t(y)‖ ≤ min(ρ‖x − y‖ + 2γC1, 2C2)
   for any gradient field, so the shifted-Rényi bookkeeping applies with the cap 2C2; the
   hockey-stick recursion of docs/theory.md §5.3 can then continue from the resulting
   (ε, δ_k) at step k. The certificate is the minimum over k of that hybrid (k = 0: the
   assumption-free recursion). The Dobrushin coefficient itself cannot use C1: it is a sup over
   all input pairs, which the unbounded Gaussian noise puts arbitrarily far apart.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp

from . import _validate as v
from . import contraction, conversions, gaussian, iteration
from ._logspace import log_expm1
from .errors import NumericalPrecisionError

__all__ = [
    "convex_smooth_contractions",
    "convex_smooth_coefficient",
    "convex_smooth_epsilon",
    "clipped_model_prefix_coefficients",
    "clipped_model_log_delta",
    "clipped_model_epsilon",
]

# relative inflation of every coefficient (rounding of the sums and logs below)
_REL_MARGIN = 1e-12


# ---------------------------------------------------------------------------------------------
# 1. gradient clipping under a declared convex, L-smooth loss with an inert clip


def convex_smooth_contractions(*, smoothness, learning_rate, weight_decay) -> np.ndarray:
    """κ_t = max(ρ_t, γ_t L − ρ_t), ρ_t = 1 − γ_t λ_t (arrays or scalars; rounded upward)."""
    L = v.check_nonnegative("smoothness", smoothness)
    lr = np.atleast_1d(np.asarray(learning_rate, dtype=np.float64))
    wd = np.atleast_1d(np.asarray(weight_decay, dtype=np.float64))
    lr, wd = np.broadcast_arrays(lr, wd)
    rho = np.array([iteration.contraction_factor(a, b) for a, b in zip(lr.tolist(), wd.tolist())])
    kappa = np.maximum(rho, lr * L - rho)
    return np.nextafter(kappa, np.inf)


def convex_smooth_coefficient(
    *, smoothness, clip_initial, learning_rate, weight_decay, noise_std, steps
) -> float:
    """a with D_α ≤ α·a for every α > 1 under the declaration of this module's item 1 [UPPER].

    a = 2C0² / Σ_t σ_t² ∏_{k≤t} κ_k^{−2}, computed in log space; +inf when every σ_t is 0.
    Scalars are broadcast to ``steps`` entries.
    """
    c0 = v.check_positive("clip_initial", clip_initial)
    steps = v.check_int("steps", steps, minimum=1)
    sig = np.broadcast_to(np.asarray(noise_std, dtype=np.float64), (steps,))
    lr = np.broadcast_to(np.asarray(learning_rate, dtype=np.float64), (steps,))
    wd = np.broadcast_to(np.asarray(weight_decay, dtype=np.float64), (steps,))
    kappa = convex_smooth_contractions(smoothness=smoothness, learning_rate=lr, weight_decay=wd)
    log_k = np.cumsum(np.log(kappa))  # Σ_{k≤t} log κ_k
    with np.errstate(divide="ignore"):
        terms = 2.0 * np.log(sig) - 2.0 * log_k
    if np.all(terms == -np.inf):
        return math.inf
    log_a = math.log(2.0 * c0 * c0) - float(logsumexp(terms))
    return math.exp(log_a) * (1.0 + _REL_MARGIN)


def convex_smooth_epsilon(
    *,
    delta,
    smoothness,
    clip_initial,
    learning_rate,
    weight_decay,
    noise_std,
    steps,
    analysis="best",
) -> tuple[float, dict]:
    """Certified ε [UPPER] of the declared route and its details (T = 1: exact Gaussian).

    T ≥ 2: the coefficient a of :func:`convex_smooth_coefficient` is converted by
    ``iteration.certified_epsilon(a, delta=delta, analysis=analysis)``: "best" is the smaller
    of the Gaussian-DP route (μ = √(2a), exact Gaussian profile; the shifted-interpolation
    theorem with ρ_t → κ_t and s_t = 0, docs/declared_assumptions.md §1.3) and the Rényi
    conversion of α·a; "renyi" reproduces the Rényi-only certificate.
    """
    d = v.check_delta(delta)
    iteration.check_analysis(analysis)
    steps = v.check_int("steps", steps, minimum=1)
    if steps == 1:
        kappa = float(
            convex_smooth_contractions(
                smoothness=smoothness,
                learning_rate=np.ravel(learning_rate)[0],
                weight_decay=np.ravel(weight_decay)[0],
            )[0]
        )
        sigma = float(np.ravel(noise_std)[0])
        if sigma <= 0.0:
            raise NumericalPrecisionError("a noiseless single step certifies no finite epsilon")
        mu = 2.0 * v.check_positive("clip_initial", clip_initial) * kappa / sigma
        eps = float(gaussian.epsilon(d, mu=mu))
        return eps, {"mu": mu, "route": "gaussian_profile(T=1, mu=2*C0*kappa/noise_std)"}
    a = convex_smooth_coefficient(
        smoothness=smoothness,
        clip_initial=clip_initial,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        noise_std=noise_std,
        steps=steps,
    )
    if not math.isfinite(a):
        raise NumericalPrecisionError("no noisy step: no finite epsilon")
    b = iteration.certified_epsilon(a, delta=d, analysis=analysis)
    if b.details["route"] == "gaussian_dp":
        route = (
            "shifted_interpolation_gdp(kappa=max(rho, lr*L - rho), no shift)+exact_gaussian_profile"
        )
    else:
        route = "shifted_renyi(kappa=max(rho, lr*L - rho), no shift)+improved_conversion"
    return b.value, {
        "coefficient": a,
        "order": b.order,
        "route": route,
        "conversion_route": b.details["route"],
        "renyi_epsilon": b.details.get("renyi_epsilon"),
        "gaussian_dp_epsilon": b.details.get("gaussian_dp_epsilon"),
    }


def certify_convex_smooth(accountant, spec, *, delta, assumption_free, analysis="best"):
    """The gradient-clipping certificate under ``spec.assume_convex_smooth`` (L): the smaller
    of the declared route and ``assumption_free(spec, delta=delta)``, recording both.
    ``analysis`` ("best", "gaussian_dp", "renyi") selects the declared route's conversion."""
    free = assumption_free(spec, delta=delta)
    eps, info = convex_smooth_epsilon(
        analysis=analysis,
        delta=delta,
        smoothness=spec.assume_convex_smooth,
        clip_initial=spec.clip_initial,
        learning_rate=spec.learning_rate,
        weight_decay=spec.weight_decay,
        noise_std=spec.noise_std,
        steps=spec.steps,
    )
    declared = {
        "assume_convex_smooth": spec.assume_convex_smooth,
        "meaning": "every loss the run differentiates is convex and L-smooth and its gradient "
        "norm never exceeds clip_gradient (the clip never acts)",
    }
    free_details = {k: val for k, val in free.details.items() if k != "order"}
    details = dict(
        declared_assumptions=declared,
        assumption_free_epsilon=free.epsilon,
        assumption_free_details=free_details,
    )
    if eps >= free.epsilon:  # the declaration does not help here: the assumption-free value
        details.update(free_details)
        return accountant.certified(
            spec,
            free.epsilon,
            delta=delta,
            accountant=free.accountant,
            order=free.details.get("order"),
            details=details,
        )
    if "coefficient" in info:
        details["coefficient"] = info["coefficient"]
        details["route"] = info["conversion_route"]
        details["renyi_epsilon"] = info["renyi_epsilon"]
        if info["gaussian_dp_epsilon"] is not None:
            details["gaussian_dp_epsilon"] = info["gaussian_dp_epsilon"]
        details["flat_alpha_epsilon"] = iteration.flat_alpha_epsilon(
            info["coefficient"], delta=delta
        )
    else:
        details["mu"] = info["mu"]
    return accountant.certified(
        spec,
        eps,
        delta=delta,
        accountant=f"declared convex L-smooth loss: {info['route']}",
        order=info.get("order"),
        details=details,
    )


def declared_convex_smooth(params):
    """The validated ``assume_convex_smooth`` of plan parameters (None when not declared)."""
    val = params.get("assume_convex_smooth")
    return None if val is None else v.check_nonnegative("assume_convex_smooth", val)


def convex_smooth_noise_start(default_noise, smoothness, epsilon, delta, steps, problem, a_max):
    """Starting noise for the planner's calibration under the declaration: the smaller of the
    assumption-free noise and the declared route's (a ∝ 1/σ² at constant σ: σ = √(a(1)/a_max);
    T = 1: σ = 2C0κ/mu(ε, δ)). The planner re-certifies whatever it returns."""
    if steps == 1:
        kappa = float(
            convex_smooth_contractions(
                smoothness=smoothness,
                learning_rate=problem["learning_rate"],
                weight_decay=problem["weight_decay"],
            )[0]
        )
        own = (
            2.0 * problem["clip_initial"] * kappa / float(gaussian.mu(epsilon=epsilon, delta=delta))
        )
    else:
        a1 = convex_smooth_coefficient(
            smoothness=smoothness,
            clip_initial=problem["clip_initial"],
            learning_rate=problem["learning_rate"],
            weight_decay=problem["weight_decay"],
            noise_std=1.0,
            steps=steps,
        )
        own = math.sqrt(a1 / a_max)
    return min(default_noise, own * (1.0 + 1e-12))


# ---------------------------------------------------------------------------------------------
# 2. model clipping with a gradient clip C1


def _geometric_sums(m: int, rho: float) -> tuple[float, float, float]:
    """(ρ^m, Σ_{j<m} ρ^j, Σ_{j<m} ρ^{2j}) without cancellation (ρ in (0, 1])."""
    if m == 0:
        return 1.0, 0.0, 0.0
    if rho >= 1.0:
        return 1.0, float(m), float(m)
    lr = math.log(rho)
    return (
        math.exp(m * lr),
        math.expm1(m * lr) / math.expm1(lr),
        math.expm1(2 * m * lr) / math.expm1(2 * lr),
    )


def lead_then_constant_coefficient(distance, lead_var, m, rho, shift, var) -> float:
    """Coefficient of a feasible shift allocation [UPPER; equal to the exact optimum]: start at
    distance D, one noise-only step of variance ``lead_var`` (0: none), then m steps
    Z ← ρZ + s − a with noise variance ``var``.

    The hull points after the lead step form a concave chain (increment slopes s/(σ²ρ^{m−u})
    decrease), so the optimum is the chord from the origin when the lead point lies above it,
    else the two segments "spend D at the lead noise, then the constant chord for the shifts":
        chord: B²/(2Y),  B = Dρ^m + sΣρ^j,  Y = lead_var·ρ^{2m} + var·Σρ^{2j};
        split: D²/(2 lead_var) + (sΣρ^j)²/(2 var Σρ^{2j}).
    Both are costs of feasible allocations (Z_t ≥ 0 throughout), hence valid coefficients."""
    rm, s1, s2 = _geometric_sums(m, rho)
    big_b = distance * rm + shift * s1
    y = lead_var * rm * rm + var * s2
    if y <= 0.0:
        return math.inf if big_b > 0.0 else 0.0
    chord = big_b * big_b / (2.0 * y)
    if lead_var <= 0.0:
        return chord * (1.0 + _REL_MARGIN)
    split = distance * distance / (2.0 * lead_var)
    if m > 0:
        split += (shift * s1) ** 2 / (2.0 * var * s2)
    if distance * y >= big_b * lead_var * rm:  # lead point above the chord: the chord is feasible
        return min(chord, split) * (1.0 + _REL_MARGIN)
    return split * (1.0 + _REL_MARGIN)


def clipped_model_prefix_coefficients(
    *,
    clip_initial,
    clip_model,
    clip_gradient,
    learning_rate,
    weight_decay,
    noise_std,
    steps,
    initial_noise_std=None,
) -> np.ndarray:
    """A[k] for k = 0..steps: the shifted-Rényi coefficient (D_α ≤ α·A[k]) of the model-clipping
    iterate after k noisy steps, with per-step distance map h(z) = min(ρz + 2γC1, 2C2) [UPPER].

    A[k] = min( A0(k), min_{m<k} A(m) ): A0(k) starts from 2C0 (through the σ0 noise if any);
    A(m) restarts from the cap 2C2 just before a step's noise and follows m more steps (every
    such allocation is feasible: the cap bounds the distance after every map). Each is the cost
    of a feasible allocation (:func:`lead_then_constant_coefficient`). Entry 0 is +inf unless
    σ0 > 0 (then the single Gaussian (2C0)²/(2σ0²)).
    """
    c0 = v.check_positive("clip_initial", clip_initial)
    c2 = v.check_positive("clip_model", clip_model)
    c1 = v.check_nonnegative("clip_gradient", clip_gradient)
    lr = v.check_positive("learning_rate", learning_rate)
    wd = v.check_nonnegative("weight_decay", weight_decay)
    sig = v.check_positive("noise_std", noise_std)
    steps = v.check_int("steps", steps, minimum=1)
    v.check_decay_product(lr, wd)
    s0 = float(initial_noise_std) if initial_noise_std else 0.0
    rho = iteration.contraction_factor(lr, wd)
    shift = 2.0 * lr * c1
    var, var0 = sig * sig, s0 * s0
    out = np.full(steps + 1, math.inf)
    if s0 > 0:
        out[0] = lead_then_constant_coefficient(2.0 * c0, var0, 0, rho, shift, var)
    restart = math.inf
    for k in range(1, steps + 1):
        a0 = lead_then_constant_coefficient(2.0 * c0, var0, k, rho, shift, var)
        # restart from the cap 2C2 before one step's noise, then k − 1 more steps
        restart = min(
            restart, lead_then_constant_coefficient(2.0 * c2, var, k - 1, rho, shift, var)
        )
        out[k] = min(a0, restart)
    return out


def _candidate_prefixes(steps: int) -> list[int]:
    if steps <= 64:
        return list(range(0, steps + 1))
    ks = set(range(0, 33)) | {int(round(x)) for x in np.geomspace(33, steps, 32)}
    return sorted(k for k in ks if k <= steps)


def clipped_model_log_delta(
    *,
    epsilon,
    clip_initial,
    clip_model,
    clip_gradient,
    learning_rate,
    weight_decay,
    noise_std,
    steps,
    initial_noise_std=None,
    prefix_coefficients=None,
    stop_below=-math.inf,
    first_k=None,
    candidates=None,
    values=None,
) -> tuple[float, int]:
    """log δ_T at ``epsilon`` of model clipping with a gradient clip [UPPER], and the best k.

    For each k: δ_k from the shifted-Rényi prefix (improved conversion of α·A[k]), then T − k
    refined hockey-stick steps (docs/theory.md §5.3, which accept any upper bound δ_k); k = 0 is
    the assumption-free recursion. Returns (min over k, argmin k). ``stop_below``: return as
    soon as a value ≤ it is found (still a valid upper bound); ``first_k``: try it first;
    ``candidates``: the prefix lengths k to try (default: all for T ≤ 64, else ~60 spread
    ones; any subset is sound); ``values``: a dict that receives log δ_T per k tried."""
    eps = v.check_epsilon(epsilon)
    steps = v.check_int("steps", steps, minimum=0)
    base = contraction.model_clipping_log_deltas(
        epsilon=eps,
        clip_initial=clip_initial,
        clip_model=clip_model,
        noise_std=noise_std,
        steps=steps,
        initial_noise_std=initial_noise_std,
    )
    best, best_k = float(base[-1]), 0
    if steps == 0 or best <= stop_below:
        return best, 0
    a = prefix_coefficients
    if a is None:
        a = clipped_model_prefix_coefficients(
            clip_initial=clip_initial,
            clip_model=clip_model,
            clip_gradient=clip_gradient,
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            noise_std=noise_std,
            steps=steps,
            initial_noise_std=initial_noise_std,
        )
    r = 2.0 * clip_model / noise_std
    log_em1 = float(log_expm1(eps)) if eps > 0 else -math.inf
    lt_plain = contraction._plain_per_step(eps, r)
    order = _candidate_prefixes(steps) if candidates is None else list(candidates)
    if first_k is not None and first_k in order:
        order = [first_k] + [k for k in order if k != first_k]
    for k in order:
        if k == 0 or not math.isfinite(a[k]):
            continue
        log_d = conversions.linear_log_delta(float(a[k]), epsilon=eps).value
        log_d = min(log_d, float(base[k]))  # both bound δ_k: keep the smaller
        for _ in range(steps - k):
            if log_d <= stop_below:
                break
            plain = log_d + lt_plain
            plain += 4e-16 * abs(plain)  # the sum's rounding (lt_plain is rounded upward)
            log_d = min(contraction._refined_step(log_d, eps, log_em1, r), plain)
        if values is not None:
            values[k] = log_d
        if log_d < best:
            best, best_k = log_d, k
        if best <= stop_below:
            break
    return best, best_k


def clipped_model_epsilon(
    *,
    delta,
    clip_initial,
    clip_model,
    clip_gradient,
    learning_rate,
    weight_decay,
    noise_std,
    steps,
    initial_noise_std=None,
    rtol=1e-9,
) -> tuple[float, int]:
    """Smallest ε (relative ``rtol``, feasible side) with :func:`clipped_model_log_delta` ≤ log δ
    [UPPER on ε], and the prefix length k used at that ε. Never above the assumption-free ε."""
    d = v.check_delta(delta)
    log_t = math.log(d)
    free = contraction.model_clipping_epsilon(
        delta=d,
        clip_initial=clip_initial,
        clip_model=clip_model,
        noise_std=noise_std,
        steps=steps,
        initial_noise_std=initial_noise_std,
        rtol=rtol,
    )
    if steps == 0 or free == 0.0:
        return free, 0
    a = clipped_model_prefix_coefficients(
        clip_initial=clip_initial,
        clip_model=clip_model,
        clip_gradient=clip_gradient,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        noise_std=noise_std,
        steps=steps,
        initial_noise_std=initial_noise_std,
    )
    kw = dict(
        clip_initial=clip_initial,
        clip_model=clip_model,
        clip_gradient=clip_gradient,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        noise_std=noise_std,
        steps=steps,
        initial_noise_std=initial_noise_std,
        prefix_coefficients=a,
    )

    # coarse search over ε with every k (relative 1e-2), then shortlist the best k there and
    # refine on the shortlist: any subset of k is sound, and near the answer the best k moves
    # little with ε
    def coarse_ok(e, per_k=None):
        return clipped_model_log_delta(epsilon=e, stop_below=log_t, values=per_k, **kw)[0] <= log_t

    if not coarse_ok(free * (1.0 - 10 * rtol)):
        return free, 0
    hi, lo = free, 0.0
    while hi - lo > 1e-2 * hi:
        mid = 0.5 * (lo + hi)
        if coarse_ok(mid):
            hi = mid
        else:
            lo = mid
    per_k = {}
    clipped_model_log_delta(epsilon=hi, values=per_k, **kw)
    shortlist = sorted(per_k, key=per_k.get)[:4]
    last = {"k": None}

    def ok(e):
        val, k = clipped_model_log_delta(
            epsilon=e, stop_below=log_t, first_k=last["k"], candidates=shortlist, **kw
        )
        if val <= log_t:
            last["k"] = k
        return val <= log_t

    if ok(0.0):
        return 0.0, last["k"]
    ok(hi)  # (hi certified in the coarse stage; set the k to try first)
    while hi - lo > rtol * hi:
        mid = 0.5 * (lo + hi)
        if ok(mid):
            hi = mid
        else:
            lo = mid
    ok(hi)
    return hi, last["k"]
