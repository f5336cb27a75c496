r"""Privacy amplification by iteration (shifted Rényi) for gradient clipping (docs/theory.md §6).

Update (Koloskova et al. 2025, arXiv 2506.06985, eq. (3) [2nd]), t = 0..T−1:

    x_0 = Π_{C0}(x̂);   x_{t+1} = ρ_t x_t − γ_t Π_{C1,t}(g_t(x_t)) + N(0, σ_t² I),   ρ_t = 1 − γ_t λ_t.

Ingredients (Feldman, Mironov, Talwar & Thakurta 2018, arXiv 1808.06651): the shift reduction
D_α^{(z)}(μ∗N ‖ ν∗N) ≤ D_α^{(z+a)}(μ‖ν) + α a²/(2σ²), and the contraction reduction for maps with
the bounded-perturbation property ‖φ(x) − φ'(y)‖ ≤ ρ‖x − y‖ + s, s = 2γC1 (any two gradient
oracles; no smoothness or convexity).

Bookkeeping: Z_0 = 2C0, Z_{t+1} = ρ_t Z_t + s_t − a_t with shifts a_t ≥ 0, Z_t ≥ 0 for every t and
Z_T = 0; then, for every α > 1 and in both directions [UPPER],

    D_α(X_T ‖ Y_T) ≤ α · Σ_t a_t²/(2σ_t²) =: α · a.

Exact solution of the allocation problem (derived here; write-up in docs/optimal_steps.md).
With w_t = ∏_{k=t+1}^{T−1} ρ_k put

    Y_t = Σ_{u<t} w_u² σ_u²,    U_t = 2C0·∏_{k<T} ρ_k + Σ_{u<t} w_u s_u,    A_t = Σ_{u<t} w_u a_u.

Then Z_t ≥ 0 ⟺ A_t ≤ U_t, Z_T = 0 ⟺ A_T = U_T, a_t ≥ 0 ⟺ A non-decreasing, and the cost is
Σ_t (ΔA_t)²/(2ΔY_t): the discrete Dirichlet energy of the path t ↦ (Y_t, A_t) from (0, 0) to
(Y_T, U_T) that stays below the points (Y_t, U_t). Its minimiser is the *lower convex hull*
(taut string) of {(0, 0)} ∪ {(Y_t, U_t)}, and the optimal coefficient is

    a* = Σ_{hull edges} (ΔU)²/(2ΔY)      (exact; O(T) after sorting, which the Y_t already are).

When every point lies on or above the chord from (0, 0) to (Y_T, U_T) the hull is that chord and
a* = B²/(2 Σ_t w_t² σ_t²) with B = U_T: the Cauchy–Schwarz closed form of docs/theory.md §6.3. For
constant (ρ, s, σ) this always holds; for time-varying schedules it may not, and then the closed
form is NOT justified (it is smaller than the constrained optimum). Steps with σ_t = 0 have
ΔY = 0 and receive no shift; if a shift is still needed after the last noisy step, a* = +inf.

Constant parameters (ρ = 1 − γλ, 0 ≤ γλ < 1):
    B = 2C0 ρ^T + 2C1(1 − ρ^T)/λ   (λ = 0: B = 2C0 + 2γC1T),
    W = (1 − ρ^{2T})/(γλ(2 − γλ))   (λ = 0: W = T),    a = B²/(2σ²W).

Gaussian DP from the same shifts (shifted interpolation; proof in
docs/gdp_amplification_by_iteration.md). The same bookkeeping run in f-DP (Bok, Su & Altschuler
2024, arXiv 2403.00278, whose shifted interpolated processes this is, extended here to the
bounded-perturbation maps and the constrained allocation) shows that the pair of last iterates is
μ-GDP with

    μ = √(Σ_t a_t²/σ_t²) = √(2a)      [UPPER, both directions],

for every feasible allocation, so for the optimal one too. μ-GDP is equivalent to the exact
Gaussian profile δ(ε; μ) (Dong, Roth & Su 2019, arXiv 1905.02383, Cor. 2.13), which is never
above the RDP conversion of the curve α·a = α·μ²/2 (that conversion is an upper bound for every
pair with this curve, the Gaussian pair included). :func:`certified_epsilon` takes the smaller
of the two and records which route won (``analysis="renyi"`` / ``"gaussian_dp"`` force one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from scipy.special import logsumexp

from . import _validate as v
from . import conversions, gaussian
from .bounds import Bound, BoundKind
from .errors import InvalidParameterError, NumericalPrecisionError

__all__ = [
    "Schedule",
    "Allocation",
    "constant_schedule",
    "closed_form_coefficient",
    "constrained_coefficient",
    "schedule_coefficient",
    "constant_B",
    "constant_W",
    "constant_coefficient",
    "optimal_steps_real",
    "candidate_steps",
    "noise_std_for_coefficient",
    "flat_alpha_noise_std",
    "flat_alpha_epsilon",
    "flat_alpha_coefficient",
    "FLAT_ALPHA_ORDERS",
    "verify_allocation",
    "linear_epsilon",
    "max_coefficient",
    "mironov_max_coefficient",
    "mironov_linear_epsilon",
    "ANALYSES",
    "check_analysis",
    "gaussian_dp_mu",
    "gaussian_dp_epsilon",
    "certified_epsilon",
    "max_gaussian_dp_coefficient",
    "max_certified_coefficient",
]

# Relative inflation of every certified coefficient: exceeds the accumulated float64 error of
# the sums and logs below (a few ulps times log T), so the coefficient is an upper bound.
_REL_MARGIN = 1e-12


@dataclass(frozen=True)
class Schedule:
    """Per-step parameters of a gradient-clipping run (arrays of length T) and C0.

    ``learning_rate``, ``weight_decay``, ``clip_gradient``, ``noise_std`` are float arrays of equal
    length T ≥ 1 (γ_t, λ_t, C1_t, σ_t); ``clip_initial`` is C0. Validity: γ_t ≥ 0, λ_t ≥ 0,
    0 ≤ γ_t λ_t < 1, C1_t ≥ 0, σ_t ≥ 0, C0 ≥ 0.
    """

    learning_rate: np.ndarray
    weight_decay: np.ndarray
    clip_gradient: np.ndarray
    noise_std: np.ndarray
    clip_initial: float

    @classmethod
    def from_arrays(
        cls, *, learning_rate, weight_decay, clip_gradient, noise_std, clip_initial, steps=None
    ) -> Schedule:
        """Build and validate a schedule; scalars are broadcast to ``steps`` entries."""
        c0 = v.check_nonnegative("clip_initial", clip_initial)
        arrays = {
            "learning_rate": learning_rate,
            "weight_decay": weight_decay,
            "clip_gradient": clip_gradient,
            "noise_std": noise_std,
        }
        conv = {k: v.as_float_array(k, a) for k, a in arrays.items()}
        lengths = {a.size for a in conv.values() if a.ndim > 0}
        if steps is not None:
            steps = v.check_int("steps", steps, minimum=1)
            lengths.add(steps)
        if len(lengths) > 1:
            raise InvalidParameterError(
                "steps", steps, f"schedule arrays have inconsistent lengths {sorted(lengths)}"
            )
        n = lengths.pop() if lengths else 1
        if n < 1:
            raise InvalidParameterError("steps", n, "must be >= 1")
        out = {}
        for k, a in conv.items():
            if a.ndim > 1:
                raise InvalidParameterError(k, arrays[k], "must be a scalar or 1-D array")
            if np.any(a < 0):
                raise InvalidParameterError(k, arrays[k], "must be >= 0")
            out[k] = np.broadcast_to(a, (n,)).astype(np.float64).copy()
        gl = out["learning_rate"] * out["weight_decay"]
        if np.any(gl >= 1.0):
            raise InvalidParameterError(
                "weight_decay", weight_decay, "learning_rate * weight_decay must be < 1"
            )
        for a in out.values():
            a.setflags(write=False)
        return cls(clip_initial=c0, **out)

    @property
    def steps(self) -> int:
        return int(self.noise_std.size)

    @property
    def contraction(self) -> np.ndarray:
        """ρ_t = 1 − γ_t λ_t, rounded upward (see :func:`contraction_factor`)."""
        return np.array(
            [
                contraction_factor(lr, wd)
                for lr, wd in zip(self.learning_rate.tolist(), self.weight_decay.tolist())
            ],
            dtype=np.float64,
        )

    @property
    def shift(self) -> np.ndarray:
        """s_t = 2 γ_t C1_t."""
        return 2.0 * self.learning_rate * self.clip_gradient


@dataclass(frozen=True)
class Allocation:
    """Result of the shift-allocation problem.

    coefficient: a with D_α ≤ α·a for all α > 1, both directions [UPPER], inflated by a relative
    margin for rounding. closed_form: the unconstrained Cauchy–Schwarz value B²/(2Σ w²σ²) (equal
    to ``coefficient`` when ``closed_form_valid``; otherwise smaller and NOT certified).
    shifts: the optimal a_t. segments: the step indices where Z_t = 0 is active (hull vertices).
    """

    coefficient: float
    closed_form: float
    closed_form_valid: bool
    shifts: np.ndarray
    segments: tuple[int, ...]
    kind: BoundKind = BoundKind.UPPER

    def __post_init__(self):
        object.__setattr__(self, "kind", BoundKind.parse(self.kind))

    @property
    def bound(self) -> Bound:
        """``coefficient`` as a Bound (the linear Rényi coefficient a, D_α ≤ α·a)."""
        return Bound(
            self.coefficient,
            self.kind,
            source="iteration.constrained_coefficient (shift allocation, shifted Rényi)",
            details={"quantity": "linear Renyi coefficient", "closed_form": self.closed_form},
        )


def constant_schedule(
    *, steps, learning_rate, weight_decay, clip_gradient, noise_std, clip_initial
) -> Schedule:
    """Schedule with the same (γ, λ, C1, σ) at every step."""
    steps = v.check_int("steps", steps, minimum=1)
    for name, val in (
        ("learning_rate", learning_rate),
        ("weight_decay", weight_decay),
        ("clip_gradient", clip_gradient),
        ("noise_std", noise_std),
    ):
        v.check_nonnegative(name, val)
    return Schedule.from_arrays(
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        clip_gradient=clip_gradient,
        noise_std=noise_std,
        clip_initial=clip_initial,
        steps=steps,
    )


def _log_points(schedule: Schedule):
    """log w_t, log(w_t s_t), log(w_t² σ_t²), log(2C0 ∏ρ) -- all finite or -inf."""
    rho = schedule.contraction
    with np.errstate(divide="ignore"):
        log_rho = np.log(rho)
        # log w_t = Σ_{k=t+1}^{T-1} log ρ_k (suffix sums, exclusive)
        suffix = np.concatenate([np.cumsum(log_rho[::-1])[::-1][1:], [0.0]])
        log_s = np.log(schedule.shift)
        log_v = 2.0 * np.log(schedule.noise_std)
        log_c0 = math.log(2.0 * schedule.clip_initial) if schedule.clip_initial > 0 else -math.inf
    log_prod = float(np.sum(log_rho))
    return suffix, suffix + log_s, 2.0 * suffix + log_v, log_c0 + log_prod


def closed_form_coefficient(schedule: Schedule) -> float:
    """Unconstrained optimum B²/(2 Σ_t w_t² σ_t²) (docs/theory.md §6.3), computed in log space.

    This is a LOWER bound on the constrained optimum and is certified only when every
    intermediate Z_t stays ≥ 0 (see :func:`constrained_coefficient`). +inf if B > 0 and no noise.
    """
    _, log_ws, log_wv, log_init = _log_points(schedule)
    log_b = float(logsumexp(np.concatenate([[log_init], log_ws])))
    log_w = float(logsumexp(log_wv))
    if log_b == -math.inf:
        return 0.0
    if log_w == -math.inf:
        return math.inf
    return math.exp(min(2.0 * log_b - math.log(2.0) - log_w, 700.0))


def constrained_coefficient(schedule: Schedule) -> Allocation:
    """Exact optimum of min Σ a_t²/(2σ_t²) s.t. a_t ≥ 0, Z_t ≥ 0, Z_T = 0 [UPPER on D_α/α].

    Lower convex hull of {(0,0)} ∪ {(Y_t, U_t)}, t = 1..T (module docstring). The values are
    scaled by a common factor (the largest point) before the hull, which leaves the hull and the
    energy ratio invariant; the energy is then computed in log space.
    """
    log_w, log_ws, log_wv, log_init = _log_points(schedule)
    T = schedule.steps
    # Scale: divide U by e^{mU} and Y by e^{mY}; energy scales by e^{2mU - mY}.
    mu_ = float(logsumexp(np.concatenate([[log_init], log_ws])))
    my = float(logsumexp(log_wv))
    if mu_ == -math.inf:
        zeros = np.zeros(T)
        return Allocation(0.0, 0.0, True, zeros, (0, T))
    if my == -math.inf:
        return Allocation(math.inf, math.inf, False, np.full(T, math.inf), (0, T))
    dU = np.exp(log_ws - mu_)
    dY = np.exp(log_wv - my)
    U = np.concatenate([[math.exp(log_init - mu_)], math.exp(log_init - mu_) + np.cumsum(dU)])
    Y = np.concatenate([[0.0], np.cumsum(dY)])
    # point t (t=0..T) is (Y_t, U_t), except that the start of the path is (0, 0).
    xs = Y
    ys = U.copy()
    ys[0] = 0.0
    # A shift needed after the last noisy step -> infinite divergence. Decided exactly on the
    # schedule (a positive shift after the last noisy step, however small, cannot be absorbed;
    # the rounded cumulative U_t/Y_t cannot decide it: they may merge distinct points or
    # separate equal ones). Other noiseless stretches are checked on exact local sums below.
    last_noisy = int(np.flatnonzero(schedule.noise_std > 0)[-1])
    if np.any(schedule.shift[last_noisy + 1 :] > 0):
        closed = closed_form_coefficient(schedule)
        return Allocation(math.inf, closed, False, np.full(T, math.inf), (0, T))
    hull: list[int] = [0]
    for t in range(1, T + 1):
        if xs[t] <= xs[hull[-1]]:
            # same abscissa (σ = 0 steps): the lower point dominates; keep the earlier (lower) one
            if t < T:
                continue
            hull.pop()
        while len(hull) >= 2:
            i, j = hull[-2], hull[-1]
            # remove j if it lies on or above the segment i -> t
            cross = (xs[j] - xs[i]) * (ys[t] - ys[i]) - (ys[j] - ys[i]) * (xs[t] - xs[i])
            if cross <= 0.0:
                hull.pop()
            else:
                break
        hull.append(t)
    # The hull above works on cumulative sums, which cannot resolve an increment far below the
    # running total (e.g. a small σ_t after a large one): ΔY or ΔU of an edge taken as a
    # difference of cumulative sums can be wrong by O(1) and the energy then UNDER-estimates the
    # optimum. So every edge is re-derived from segment-local sums of the increments (no
    # cancellation), and checked for feasibility (the path A stays below every U_t inside the
    # edge); an infeasible edge is split at its most violated point (a vertex of the true lower
    # hull), which only raises the energy. The result is the energy of a feasible path.
    init = math.exp(log_init - mu_)
    edges = []
    stack = list(zip(hull[:-1], hull[1:]))[::-1]
    while stack:
        i, j = stack.pop()
        ly = np.cumsum(dY[i:j])  # Y_t − Y_i, t = i+1..j
        lu = np.cumsum(dU[i:j]) + (init if i == 0 else 0.0)  # U_t − A_i (A_0 = 0, A_i = U_i)
        dy, du = float(ly[-1]), float(lu[-1])
        if dy <= 0.0:
            if du > 0.0:  # a shift is needed with no noise left in this stretch
                closed = closed_form_coefficient(schedule)
                return Allocation(math.inf, closed, False, np.full(T, math.inf), (0, T))
            edges.append((i, j, 0.0, 0.0, 0.0))
            continue
        slope = du / dy
        if j - i > 1:
            viol = slope * ly[:-1] - lu[:-1]
            k = int(np.argmax(viol))
            if viol[k] > 1e-13 * max(du, float(np.max(lu))):
                m = i + 1 + k
                stack.append((m, j))
                stack.append((i, m))
                continue
        edges.append((i, j, dy, du, slope))
    hull = [0] + [e[1] for e in edges]
    # energy = Σ ΔU²/(2ΔY) over hull edges, in log space, then unscaled.
    terms = []
    shifts = np.zeros(T)
    for i, j, dy, du, slope in edges:
        if du > 0.0:
            terms.append(2.0 * math.log(du) - math.log(2.0) - math.log(dy))
        # a_t = slope·w_t σ_t² (unscaled: slope·e^{mU-mY}·w_t σ_t²)
        idx = np.arange(i, j)
        with np.errstate(divide="ignore"):
            log_sd = np.log(schedule.noise_std[idx])
        shifts[idx] = slope * np.exp(mu_ - my + log_w[idx] + 2 * log_sd)
    log_energy = (float(logsumexp(terms)) if terms else -math.inf) + 2.0 * mu_ - my
    coef = math.exp(min(log_energy, 700.0)) * (1.0 + _REL_MARGIN * (1.0 + math.log1p(T)))
    closed = closed_form_coefficient(schedule)
    valid = hull == [0, T]
    return Allocation(coef, closed, valid, shifts, tuple(hull))


def schedule_coefficient(schedule: Schedule) -> float:
    """Certified linear Rényi coefficient a (curve α ↦ α·a, both directions) [UPPER]."""
    return constrained_coefficient(schedule).coefficient


def verify_allocation(schedule: Schedule, shifts, *, rtol: float = 1e-9) -> bool:
    """Independent check: forward recursion Z_{t+1} = ρ_t Z_t + s_t − a_t keeps Z_t ≥ 0, a_t ≥ 0
    and ends at Z_T ≈ 0 (relative tolerance ``rtol`` of the largest Z)."""
    a = np.asarray(shifts, dtype=np.float64)
    if np.any(a < 0) or not np.all(np.isfinite(a)):
        return False
    z = schedule.clip_initial * 2.0
    scale = max(z, float(np.max(schedule.shift, initial=0.0)), 1e-300)
    zs = []
    for rho, s, at in zip(schedule.contraction, schedule.shift, a):
        z = rho * z + s - at
        zs.append(z)
        scale = max(scale, abs(z))
    zs = np.asarray(zs)
    tol = rtol * scale
    return bool(np.all(zs[:-1] >= -tol) and abs(zs[-1]) <= tol)


# ---------------------------------------------------------------------------------------------
# constant parameters


def _check_constant(clip_initial, clip_gradient, learning_rate, weight_decay):
    c0 = v.check_nonnegative("clip_initial", clip_initial)
    c1 = v.check_nonnegative("clip_gradient", clip_gradient)
    lr = v.check_positive("learning_rate", learning_rate)
    wd = v.check_nonnegative("weight_decay", weight_decay)
    if lr * wd >= 1.0:
        raise InvalidParameterError(
            "weight_decay", weight_decay, "learning_rate * weight_decay must be < 1"
        )
    return c0, c1, lr, wd


def contraction_factor(learning_rate: float, weight_decay: float) -> float:
    """ρ = 1 − γλ from the exact product of the two floats, rounded UP to a float.

    Forming γλ in float64 first is a large RELATIVE error in ρ when γλ is close to 1 (e.g.
    γλ = 1 − 1e-12); ρ larger means less contraction, i.e. more privacy loss, so rounding up
    is the conservative side. γλ ≤ 0.5 needs no care (1 − γλ is then well conditioned) but
    takes the same path for simplicity.
    """
    gl = learning_rate * weight_decay
    if gl == 0.0:
        return 1.0
    exact = 1 - Fraction(learning_rate) * Fraction(weight_decay)
    rho = float(exact)
    if Fraction(rho) < exact:
        rho = math.nextafter(rho, math.inf)
    return rho


def _log_contraction(learning_rate: float, weight_decay: float) -> float:
    """log ρ (upward-rounded ρ; log1p where ρ is close to 1, log where it is not)."""
    gl = learning_rate * weight_decay
    if gl <= 0.5:
        return math.log1p(-gl) + 4e-16 * gl  # tiny upward allowance for the rounded product
    return math.log(contraction_factor(learning_rate, weight_decay))


def constant_B(*, steps, clip_initial, clip_gradient, learning_rate, weight_decay) -> float:
    """B = 2C0 ρ^T + 2γC1 Σ_{k<T} ρ^k = 2C0ρ^T + 2C1(1−ρ^T)/λ (λ = 0: 2C0 + 2γC1T)."""
    c0, c1, lr, wd = _check_constant(clip_initial, clip_gradient, learning_rate, weight_decay)
    T = v.check_int("steps", steps, minimum=1)
    gl = lr * wd
    if gl == 0.0:
        return 2.0 * c0 + 2.0 * lr * c1 * T
    log_rho = _log_contraction(lr, wd)
    rho_t = math.exp(T * log_rho)
    geo = -math.expm1(T * log_rho) / gl  # Σ_{k<T} ρ^k = (1 − ρ^T)/(γλ)
    return 2.0 * c0 * rho_t + 2.0 * lr * c1 * geo


def constant_W(*, steps, learning_rate, weight_decay) -> float:
    """W = Σ_{k<T} ρ^{2k} = (1 − ρ^{2T})/(γλ(2 − γλ)) (λ = 0: W = T)."""
    lr = v.check_positive("learning_rate", learning_rate)
    wd = v.check_nonnegative("weight_decay", weight_decay)
    T = v.check_int("steps", steps, minimum=1)
    gl = lr * wd
    if gl >= 1.0:
        raise InvalidParameterError(
            "weight_decay", weight_decay, "learning_rate * weight_decay must be < 1"
        )
    if gl == 0.0:
        return float(T)
    # W = Σ_{k<T} ρ^{2k} = (1 − ρ^{2T})/(1 − ρ²), with the upward-rounded ρ
    log_rho = _log_contraction(lr, wd)
    one_minus_rho2 = -math.expm1(2.0 * log_rho)
    return -math.expm1(2.0 * T * log_rho) / one_minus_rho2


def constant_coefficient(
    *, steps, noise_std, clip_initial, clip_gradient, learning_rate, weight_decay
) -> float:
    """a = B²/(2σ²W) for constant parameters [UPPER, certified: Z_t ≥ 0 holds automatically].

    Inflated by the same relative rounding margin as :func:`constrained_coefficient`; +inf when
    it exceeds float range (searches compare against it; certifying callers refuse it through
    :func:`require_finite_coefficient`).
    """
    s = v.check_positive("noise_std", noise_std)
    b, w = _constant_B_W(steps, clip_initial, clip_gradient, learning_rate, weight_decay)
    try:
        return (b / s) ** 2 / (2.0 * w) * (1.0 + 1e-13)
    except OverflowError:  # B/σ beyond 1e154: +inf, which callers that certify must refuse
        return math.inf


def require_finite_coefficient(coefficient: float, what: str) -> float:
    """Return ``coefficient``, or raise NumericalPrecisionError when it overflowed to +inf."""
    if not coefficient < math.inf:
        raise NumericalPrecisionError(
            f"the Renyi coefficient of {what} overflows float range: "
            "no finite epsilon can be certified"
        )
    return coefficient


def _constant_B_W(steps, clip_initial, clip_gradient, learning_rate, weight_decay):
    """(B, W) of :func:`constant_B` and :func:`constant_W` for one constant schedule."""
    b = constant_B(
        steps=steps,
        clip_initial=clip_initial,
        clip_gradient=clip_gradient,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
    )
    return b, constant_W(steps=steps, learning_rate=learning_rate, weight_decay=weight_decay)


def noise_std_for_coefficient(
    coefficient, *, steps, clip_initial, clip_gradient, learning_rate, weight_decay
) -> float:
    """Smallest σ with B²/(2σ²W) ≤ coefficient, rounded up (feasible side): σ = B/√(2W a)."""
    a = v.check_positive("coefficient", coefficient)
    b, w = _constant_B_W(steps, clip_initial, clip_gradient, learning_rate, weight_decay)
    s = b / math.sqrt(2.0 * w * a) * (1.0 + 1e-12)
    # feasible side: step up until the certified coefficient is <= the budget
    for _ in range(64):
        if (
            constant_coefficient(
                steps=steps,
                noise_std=s,
                clip_initial=clip_initial,
                clip_gradient=clip_gradient,
                learning_rate=learning_rate,
                weight_decay=weight_decay,
            )
            <= a
        ):
            return s
        s *= 1.0 + 1e-12
    raise NumericalPrecisionError(
        "could not land noise_std on the feasible side"
    )  # pragma: no cover


def optimal_steps_real(*, clip_initial, clip_gradient, learning_rate, weight_decay) -> float:
    """Real minimiser T* of B²/W over T > 0 (docs/theory.md §6.4), or +inf if B²/W decreases in T.

    λ > 0: T* = log(1 − λC0/C1)/log(1 − γλ) when λC0 < C1, else +inf (no interior optimum).
    λ = 0: T* = C0/(γC1). Derivation: docs/optimal_steps.md (checked symbolically).
    """
    c0, c1, lr, wd = _check_constant(clip_initial, clip_gradient, learning_rate, weight_decay)
    if c0 == 0.0:
        return 0.0
    if c1 == 0.0:
        return math.inf
    if wd == 0.0:
        try:
            return c0 / lr / c1
        except (OverflowError, ZeroDivisionError):
            return math.inf
    if wd * c0 >= c1:
        return math.inf
    x, y = wd * c0 / c1, lr * wd
    if x < 1e-12 and y < 1e-12:
        # Tiny λ (possibly subnormal, where log1p(−γλ) rounds to 0): the ratio of logs is
        # (x/y)(1 + (x − y)/2 + O(λ²)) with x/y = C0/(γC1) free of λ; the O(λ²) term is < 1e-24.
        try:
            return c0 / lr / c1 * (1.0 + 0.5 * (x - y))
        except (OverflowError, ZeroDivisionError):
            return math.inf
    den = math.log1p(-y)
    if den == 0.0:  # γλ underflowed although λC0/C1 did not: T* ≈ x/y beyond float range
        return math.inf
    return math.log1p(-x) / den


def candidate_steps(
    *, clip_initial, clip_gradient, learning_rate, weight_decay, max_steps, plateau_rtol=1e-2
) -> list[int]:
    """Integer step counts worth evaluating: ⌊T*⌋, ⌈T*⌉ (clipped to [1, max_steps]), 1, and, if
    B²/W is decreasing (no interior optimum), the smallest T with B²/W within ``plateau_rtol``
    of its limit (capped by ``max_steps`` and, when λ > 0, by the T where ρ^T reaches 1e-150).
    The planner recomputes σ for each and keeps the best.
    """
    max_steps = v.check_int("max_steps", max_steps, minimum=1)
    t_star = optimal_steps_real(
        clip_initial=clip_initial,
        clip_gradient=clip_gradient,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
    )
    gl = learning_rate * weight_decay
    if gl > 0.0:
        # keep ρ^T ≥ e^{-345} (≈ 1e-150): beyond it B²/W has converged to many digits, and B
        # cannot underflow to 0 when C1 is 0 or subnormal.
        cap = -345.0 / math.log1p(-gl)
        if cap < max_steps:
            max_steps = max(1, math.floor(cap))
    cands = {1}
    if math.isfinite(t_star):
        for t in (math.floor(t_star), math.ceil(t_star)):
            cands.add(int(min(max(t, 1), max_steps)))
    else:
        if gl == 0.0 or clip_gradient == 0.0:
            cands.add(max_steps)
        else:
            # B²/W → (2C1/λ)²·γλ(2−γλ) as T → ∞; pick the first T within plateau_rtol of it.
            # (compared in log space: B and the limit overflow together for huge clip norms)
            def log_ratio(t):
                b, w = _constant_B_W(t, clip_initial, clip_gradient, learning_rate, weight_decay)
                return 2.0 * math.log(b) - math.log(w)

            log_limit = (
                2.0 * (math.log(2.0) + math.log(clip_gradient) - math.log(weight_decay))
                + math.log(gl)
                + math.log(2.0 - gl)
                + math.log1p(plateau_rtol)
            )
            lo, hi = 1, max_steps
            if log_ratio(hi) > log_limit:
                cands.add(hi)
            else:
                while lo < hi:
                    mid = (lo + hi) // 2
                    if log_ratio(mid) <= log_limit:
                        hi = mid
                    else:
                        lo = mid + 1
                cands.add(lo)
    return sorted(cands)


#: order grid of the flat-α reproduction: 1.1..10.9 by 0.1, then the integers 11..256
FLAT_ALPHA_ORDERS = np.concatenate([1.0 + np.arange(1, 100) / 10.0, np.arange(11.0, 257.0)])


def _flat_alpha_slack(orders, log_delta):
    """log(1 − 1/α) − (log δ + log α)/(α − 1): the improved conversion's order-dependent part."""
    return np.log1p(-1.0 / orders) - (log_delta + np.log(orders)) / (orders - 1.0)


def flat_alpha_epsilon(coefficient, *, delta, orders=None) -> float:
    """REPRODUCES A PUBLISHED MISTAKE (docs/theory.md §13.1), for exposure only; never certifies.

    The label a program prints when the coefficient a of D_α ≤ α·a is fed to the improved
    RDP→DP conversion as if D_α = a at every order ("flat α"), as the authors' code does with its
    "Rényi ε" (docs/primary_sources.md §1.2):
    ε_label = min_α [a + log(1 − 1/α) − (log δ + log α)/(α − 1)] over ``orders`` (default
    :data:`FLAT_ALPHA_ORDERS`), clamped at 0. The true certified ε of the curve α·a is
    :func:`linear_epsilon` (several times larger at δ = 1e-5).
    """
    a = v.check_nonnegative("coefficient", coefficient)
    d = v.check_delta(delta)
    grid = FLAT_ALPHA_ORDERS if orders is None else v.check_orders(orders)
    return max(0.0, float(np.min(a + _flat_alpha_slack(np.atleast_1d(grid), math.log(d)))))


def flat_alpha_coefficient(*, epsilon, delta, orders=None) -> float:
    """The coefficient a whose flat-α label (:func:`flat_alpha_epsilon`) equals ``epsilon``:
    a = max_α [ε − log(1 − 1/α) + (log δ + log α)/(α − 1)]. REPRODUCES A PUBLISHED MISTAKE."""
    eps = v.check_positive("epsilon", epsilon)
    d = v.check_delta(delta)
    grid = FLAT_ALPHA_ORDERS if orders is None else v.check_orders(orders)
    a = float(np.max(eps - _flat_alpha_slack(np.atleast_1d(grid), math.log(d))))
    if a <= 0:
        raise InvalidParameterError("epsilon", epsilon, "too small for a flat-alpha label")
    return a


def flat_alpha_noise_std(
    *, epsilon, delta, steps, clip_initial, clip_gradient, learning_rate, weight_decay, orders=None
) -> float:
    """REPRODUCES A PUBLISHED MISTAKE (docs/theory.md §13.1), for comparison only; never certifies.

    σ = B/√(2W·a) with a = :func:`flat_alpha_coefficient` (ε): the noise a program using the
    flat-α conversion would run for the label ``epsilon``. ``planning.certify`` shows that it
    certifies a several-fold larger ε than its label.
    """
    a = flat_alpha_coefficient(epsilon=epsilon, delta=delta, orders=orders)
    b, w = _constant_B_W(steps, clip_initial, clip_gradient, learning_rate, weight_decay)
    return b / math.sqrt(2.0 * w * a)


# ---------------------------------------------------------------------------------------------
# conversion of the linear curve α ↦ α·a (delegated to unlearn_theory.conversions)


def linear_epsilon(coefficient, *, delta) -> Bound:
    """Certified ε (UPPER :class:`Bound`) of the Rényi curve α ↦ α·a at ``delta``.

    Improved conversion (Balle et al. 2020, arXiv 1905.09982, Thm 21; Canonne, Kamath & Steinke
    2020, arXiv 2004.00010, Prop. 12) optimised over continuous α, via
    ``conversions.linear_epsilon``. ``float(b)`` is ε, ``b.order`` the optimal order (None for
    a = 0, which gives ε = 0).
    """
    a = v.check_nonnegative("coefficient", coefficient)
    d = v.check_delta(delta)
    b = conversions.linear_epsilon(a, delta=d)
    if not (b.value >= 0.0):  # negative: never certify it (NaN is refused by Bound itself)
        raise NumericalPrecisionError(f"conversion returned epsilon={b.value} for coefficient={a}")
    return b


def max_coefficient(*, epsilon, delta) -> float:
    """Largest a whose curve α·a certifies (ε, δ) (improved conversion, feasible side)."""
    eps = v.check_positive("epsilon", epsilon)
    d = v.check_delta(delta)
    a = float(conversions.max_linear_coefficient(epsilon=eps, delta=d))
    if not (a > 0.0 and math.isfinite(a)):
        raise NumericalPrecisionError(f"max_linear_coefficient returned {a}")
    return a


def mironov_max_coefficient(*, epsilon, delta) -> float:
    """a_max^M = (√(L+ε) − √L)², L = log(1/δ): largest a certified by Mironov's conversion
    (Mironov 2017, arXiv 1702.07476, Prop. 3) at its optimal order α* = 1 + √(L/a).
    Rounded down by a relative 1e-12 (feasible side). Equals Dolgova & Stich's ε_q*/q*."""
    eps = v.check_positive("epsilon", epsilon)
    d = v.check_delta(delta)
    L = -math.log(d)
    # (√(L+ε) − √L)² = ε² / (√(L+ε) + √L)²  (no cancellation)
    return eps * eps / (math.sqrt(L + eps) + math.sqrt(L)) ** 2 * (1.0 - 1e-12)


def mironov_linear_epsilon(coefficient, *, delta) -> float:
    """ε = a + 2√(aL) (Mironov at α* = 1 + √(L/a)) [UPPER]; looser than :func:`linear_epsilon`."""
    a = v.check_nonnegative("coefficient", coefficient)
    d = v.check_delta(delta)
    return (a + 2.0 * math.sqrt(-a * math.log(d))) * (1.0 + 1e-12)


# ---------------------------------------------------------------------------------------------
# Gaussian DP from the same shift allocation (docs/gdp_amplification_by_iteration.md)

#: how a shift-allocation coefficient a is turned into (ε, δ): "best" (the smaller certified ε
#: of the two routes, the route recorded), "gaussian_dp" (μ = √(2a), exact Gaussian profile),
#: "renyi" (the curve α·a, improved conversion at the optimal order; the published route)
ANALYSES = ("best", "gaussian_dp", "renyi")

#: source strings of the two routes (they name the route in certificates)
GAUSSIAN_DP_SOURCE = "shifted_interpolation_gdp+exact_gaussian_profile"
RENYI_SOURCE = "shifted_renyi+improved_conversion"


def check_analysis(analysis) -> str:
    """Return ``analysis`` if it is one of :data:`ANALYSES`, else InvalidParameterError."""
    if analysis not in ANALYSES:
        raise InvalidParameterError("analysis", analysis, f"must be one of {ANALYSES}")
    return analysis


def gaussian_dp_mu(coefficient) -> float:
    """μ = √(2a) of the shift-allocation coefficient a (rounded up by 2 ulps) [UPPER].

    The last iterates are μ-GDP in both directions (docs/gdp_amplification_by_iteration.md,
    Theorem 1): the cost Σ_t a_t²/(2σ_t²) of a feasible shift allocation is μ²/2.
    """
    if isinstance(coefficient, float) and coefficient == math.inf:
        return math.inf  # an infinite coefficient certifies nothing: μ = +inf
    a = v.check_nonnegative("coefficient", coefficient)
    if a == 0.0:
        return a
    return math.sqrt(2.0 * a) * (1.0 + 4.5e-16)


def gaussian_dp_epsilon(coefficient, *, delta) -> Bound:
    """Certified ε (UPPER :class:`Bound`) of the μ-GDP pair with μ = √(2a), at ``delta``.

    Exact Gaussian profile (``gaussian.epsilon``, feasible side) of the μ given by the
    shifted-interpolation theorem (docs/gdp_amplification_by_iteration.md). ``b.details["mu"]``
    is μ; ``b.order`` is None (no Rényi order is involved).
    """
    d = v.check_delta(delta)
    mu = gaussian_dp_mu(coefficient)
    if mu == 0.0:
        eps = 0.0
    elif math.isinf(mu):
        eps = math.inf
    else:
        eps = float(gaussian.epsilon(d, mu=mu))
    return Bound(
        eps,
        BoundKind.UPPER,
        source=GAUSSIAN_DP_SOURCE,
        details={"order": None, "mu": mu, "delta": d, "coefficient": float(coefficient)},
    )


def certified_epsilon(coefficient, *, delta, analysis="best") -> Bound:
    """Certified ε (UPPER :class:`Bound`) of a shift-allocation coefficient a, by ``analysis``.

    "renyi": :func:`linear_epsilon` of the curve α·a. "gaussian_dp": :func:`gaussian_dp_epsilon`
    (μ = √(2a)). "best": the smaller of the two; both are upper bounds on the same pair, so
    their minimum is one. ``b.source`` names the route used; ``b.details`` holds ``route``
    ("gaussian_dp" or "renyi"), ``renyi_epsilon``, ``gaussian_dp_epsilon`` (where computed),
    ``mu``, ``coefficient`` and ``order`` (the Rényi order, None on the Gaussian-DP route).
    """
    a = v.check_nonnegative("coefficient", coefficient)
    d = v.check_delta(delta)
    check_analysis(analysis)
    details: dict = {"coefficient": a, "delta": d, "mu": gaussian_dp_mu(a), "analysis": analysis}
    candidates = []  # ties go to the Gaussian-DP route (listed first)
    if analysis in ("best", "gaussian_dp"):
        try:
            with np.errstate(over="ignore", under="ignore"):
                g = gaussian_dp_epsilon(a, delta=d)
        except (NumericalPrecisionError, OverflowError):
            if analysis == "gaussian_dp":
                raise
        else:
            details["gaussian_dp_epsilon"] = g.value
            candidates.append((g.value, "gaussian_dp", GAUSSIAN_DP_SOURCE, None))
    if analysis in ("best", "renyi"):
        r = linear_epsilon(a, delta=d)
        details["renyi_epsilon"] = r.value
        candidates.append((r.value, "renyi", RENYI_SOURCE, r.order))
    eps, route, source, order = min(candidates, key=lambda c: c[0])
    details.update(route=route, order=order)
    return Bound(eps, BoundKind.UPPER, source=source, details=details)


def max_gaussian_dp_coefficient(*, epsilon, delta) -> float:
    """Largest a whose μ = √(2a) certifies (ε, δ) with the exact profile (feasible side):
    a = μ(ε, δ)²/2, shrunk by a relative 1e-12 so that :func:`gaussian_dp_mu`'s upward rounding
    stays below μ(ε, δ)."""
    eps = v.check_positive("epsilon", epsilon)
    d = v.check_delta(delta)
    mu = float(gaussian.mu(epsilon=eps, delta=d))
    a = 0.5 * mu * mu * (1.0 - 1e-12)
    if not (a > 0.0 and math.isfinite(a)):
        raise NumericalPrecisionError(f"gaussian.mu returned {mu} for epsilon={eps}, delta={d}")
    return a


def max_certified_coefficient(*, epsilon, delta, analysis="best") -> float:
    """Largest coefficient a certified at (ε, δ) by ``analysis`` (feasible side).

    "best" is the Gaussian-DP budget μ(ε, δ)²/2, which is never below the Rényi one
    (:func:`max_coefficient`); the larger of the two is returned.
    """
    check_analysis(analysis)
    if analysis == "renyi":
        return max_coefficient(epsilon=epsilon, delta=delta)
    gdp = max_gaussian_dp_coefficient(epsilon=epsilon, delta=delta)
    if analysis == "gaussian_dp":
        return gdp
    return max(gdp, max_coefficient(epsilon=epsilon, delta=delta))
