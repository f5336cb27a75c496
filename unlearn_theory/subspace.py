r"""Block-wise (subspace) noise scheduling (Dolgova & Stich 2026, arXiv 2601.05134; docs/theory.md §8).

The parameter space is split into k mutually orthogonal blocks (an isometric
reparameterisation, see ``unlearn_torch.blocks``). The blocks are processed sequentially: in
phase i only block i moves, for T_b steps of the gradient-clipping update (§6.1) in block
coordinates with noise N(0, σ_b² I) on that block.

Guarantee [derived in docs/theory.md §8.3; consistent with the official code]: inside block i the
initial distance is ≤ ‖P_i(x̂ − x̂')‖ ≤ 2C0, the bounded-perturbation property holds for *any* two
gradient oracles (the other blocks differ between the chains), so each phase satisfies the PABI
bound D_α ≤ α·a_b with a_b = B²/(2σ_b² W) conditionally on the earlier phases' outputs; adaptive
composition of Rényi curves over the k phases gives D_α ≤ α·k·a_b. Later fine-tuning is
post-processing.

Tight planning: give each block a_max/k, a_max the largest coefficient certified at (ε, δ)
(μ(ε, δ)²/2 on the default Gaussian-DP route below; the improved conversion's a_max with
``analysis="renyi"``), i.e. σ_b = B/√(2W·a_max/k) = √k·σ_one-shot, and certify the total
coefficient k·a_b. T_b = 1 is a Gaussian mechanism per
block; k adaptively composed Gaussian mechanisms with μ_b = B/σ_b are exactly √k·μ_b-GDP (Dong,
Roth & Su 2019, arXiv 1905.02383), so that case is calibrated and certified with the exact
profile. The integer T_b that runs is the one certified: σ_b is recomputed for it (the official
code computes σ for the real-valued T* and floors T, slightly exceeding the budget; docs/theory.md §13.5;
:func:`dolgova_stich_schedule` reproduces that, for comparison only).

Joint initial-distance allocation (``allocation="joint"``; proof in
docs/blockwise_joint_allocation.md). The per-block argument charges every block the full initial
distance 2C0, but the block parts d_i = ‖P_i(x̂ − x̂')‖ satisfy Σ_i d_i² ≤ 4C0². Since block i
is untouched before phase i, its phase starts exactly d_i apart, and the phase bound is
α·(ρ^{T_b} d_i + S)²/(2σ_b²W) with S = 2γC1(1 − ρ^{T_b})/λ, uniformly in the earlier phases'
outputs (d_i is fixed by the pair of starting models). Composing and maximising over the ball
(Cauchy–Schwarz, attained at d_i = 2C0/√k) gives the total curve α·(2C0ρ^{T_b} + √k·S)²/(2σ_b²W)
[UPPER, and EXACT on the worst case of the saturating orthogonal-block toy]. This is the
per-block formula with C0 replaced by C0/√k: up to k times less total coefficient when the
initial-distance term dominates, no gain when the shift term does. The closed-form allocation
keeps every intermediate shift Z_t ≥ 0 for any starting distance (the docs prove it), so it is
valid for every d_i ∈ [0, 2C0].

Gaussian DP (``analysis``; proof in docs/gdp_amplification_by_iteration.md). The same
argument in f-DP: each phase is conditionally μ_i-GDP with μ_i² = 2·(its coefficient), uniformly
in the earlier phases' outputs, and adaptive f-DP composition (Dong, Roth & Su 2019, arXiv
1905.02383, Thm 3.2, Cor. 3.3) gives μ = √(2·total coefficient) for both allocations (the
Cauchy–Schwarz step is the same sum). The certificate is the smaller of the exact Gaussian
profile at that μ and the Rényi conversion of α·total coefficient (``analysis="best"``, the
default; the route is named in the source); ``"renyi"`` and ``"gaussian_dp"`` force one. On the
worst case of the saturating orthogonal-block toy the laws are Gaussian with exactly this μ, so
the joint Gaussian-DP certificate is EXACT there for every T_b.

Noise cadence: the accountant assumes fresh N(0, σ_b² I) noise at *every* step of every phase.
The official code alternates gradient-only and noise-only steps (noise every M-th step, σ
rescaled by √((1 − ρ^M)/(1 − ρ²)) for M > 2), which the PABI weights do not justify (docs/theory.md §8.4);
any other cadence must be certified through :mod:`unlearn_theory.iteration` with a per-step
schedule (σ_t = 0 on noiseless steps), which checks Z_t ≥ 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import _validate as v
from . import gaussian, iteration
from .bounds import Bound, BoundKind
from .errors import InvalidParameterError, NumericalPrecisionError

__all__ = [
    "ALLOCATIONS",
    "check_allocation",
    "BlockwiseSchedule",
    "per_block_coefficient_budget",
    "blockwise_noise_std",
    "blockwise_coefficient",
    "blockwise_epsilon",
    "blockwise_schedule",
    "dolgova_stich_schedule",
]


@dataclass(frozen=True)
class BlockwiseSchedule:
    """A certified block-wise schedule.

    blocks (k), steps_per_block (T_b, integer, the one that runs and is certified), noise_std
    (σ_b, per block), per_block_coefficient (a_b), total_coefficient (k·a_b; curve α·k·a_b),
    epsilon (certified at ``delta``), kind ("upper"), accountant, total_steps = k·T_b.
    """

    blocks: int
    steps_per_block: int
    noise_std: float
    per_block_coefficient: float
    total_coefficient: float
    epsilon: float
    delta: float
    kind: BoundKind
    accountant: str

    def __post_init__(self):
        object.__setattr__(self, "kind", BoundKind.parse(self.kind))

    @property
    def total_steps(self) -> int:
        return self.blocks * self.steps_per_block

    @property
    def bound(self) -> Bound:
        """The certified ``epsilon`` (at ``delta``) as a Bound."""
        return Bound(
            self.epsilon,
            self.kind,
            source=self.accountant,
            details={"delta": self.delta, "coefficient": self.total_coefficient},
        )


def _params(clip_initial, clip_gradient, learning_rate, weight_decay):
    return dict(
        clip_initial=v.check_positive("clip_initial", clip_initial),
        clip_gradient=v.check_nonnegative("clip_gradient", clip_gradient),
        learning_rate=v.check_positive("learning_rate", learning_rate),
        weight_decay=v.check_nonnegative("weight_decay", weight_decay),
    )


#: "per_block": every block charged the full initial distance 2C0 (docs/theory.md §8.3, the published
#: argument); "joint": the block parts of the initial gap share the ball Σ d_i² ≤ 4C0²
#: (docs/blockwise_joint_allocation.md).
ALLOCATIONS = ("per_block", "joint")


def check_allocation(allocation) -> str:
    """Return ``allocation`` if it is one of :data:`ALLOCATIONS`, else InvalidParameterError."""
    if allocation not in ALLOCATIONS:
        raise InvalidParameterError("allocation", allocation, f"must be one of {ALLOCATIONS}")
    return allocation


def _block_params(p: dict, k: int, allocation: str) -> dict:
    """Per-block parameters under ``allocation``: "joint" is the per-block form with C0/√k.

    (C0/√k is rounded up by 2 ulps so that the substitution never lowers the bound.)
    """
    if check_allocation(allocation) == "per_block" or k == 1:
        return p
    return dict(p, clip_initial=p["clip_initial"] / math.sqrt(k) * (1.0 + 4.5e-16))


def per_block_coefficient_budget(*, epsilon, delta, blocks, analysis="best") -> float:
    """a_max(ε, δ)/k: each of the k blocks may spend this coefficient.

    a_max is :func:`iteration.max_certified_coefficient` under ``analysis``: μ(ε, δ)²/2 for
    "best" and "gaussian_dp", the Rényi a_max (improved conversion) for "renyi".
    """
    k = v.check_int("blocks", blocks, minimum=1)
    return iteration.max_certified_coefficient(epsilon=epsilon, delta=delta, analysis=analysis) / k


def blockwise_noise_std(
    *,
    epsilon,
    delta,
    blocks,
    steps_per_block,
    clip_initial,
    clip_gradient,
    learning_rate,
    weight_decay=0.0,
    allocation="per_block",
    analysis="best",
) -> float:
    """σ_b certifying (ε, δ) in total with T_b = ``steps_per_block`` steps per block.

    T_b = 1: σ_b = √k·B/μ(ε, δ) (exact Gaussian composition); T_b ≥ 2: σ_b = B/√(2W·a_max/k),
    a_max = μ(ε, δ)²/2 under the default ``analysis="best"`` (Gaussian DP), the Rényi a_max
    under "renyi". Rounded up (feasible side). ``allocation="joint"``: B computed with C0/√k.
    """
    k = v.check_int("blocks", blocks, minimum=1)
    T = v.check_int("steps_per_block", steps_per_block, minimum=1)
    p = _block_params(
        _params(clip_initial, clip_gradient, learning_rate, weight_decay), k, allocation
    )
    if T == 1:
        b = iteration.constant_B(steps=1, **p)
        m = gaussian.mu(epsilon=epsilon, delta=delta)
        return math.sqrt(k) * b / m * (1.0 + 1e-12)
    budget = per_block_coefficient_budget(epsilon=epsilon, delta=delta, blocks=k, analysis=analysis)
    return iteration.noise_std_for_coefficient(budget, steps=T, **p)


def blockwise_coefficient(
    *,
    noise_std,
    blocks,
    steps_per_block,
    clip_initial,
    clip_gradient,
    learning_rate,
    weight_decay,
    allocation="per_block",
) -> float:
    """Total linear Rényi coefficient (curve α·coefficient, both directions) [UPPER].

    "per_block": k·B²/(2σ_b²W) with B = 2C0ρ^{T_b} + S. "joint": (2C0ρ^{T_b} + √k·S)²/(2σ_b²W)
    = k·B(C0/√k)²/(2σ_b²W), the maximum over Σ_i d_i² ≤ 4C0² of Σ_i (d_iρ^{T_b} + S)²/(2σ_b²W).
    """
    k = v.check_int("blocks", blocks, minimum=1)
    T = v.check_int("steps_per_block", steps_per_block, minimum=1)
    p = _block_params(
        _params(clip_initial, clip_gradient, learning_rate, weight_decay), k, allocation
    )
    a_b = iteration.constant_coefficient(steps=T, noise_std=noise_std, **p)
    return k * a_b


def blockwise_epsilon(
    *,
    delta,
    noise_std,
    blocks,
    steps_per_block,
    clip_initial,
    clip_gradient,
    learning_rate,
    weight_decay=0.0,
    allocation="per_block",
    analysis="best",
) -> Bound:
    """Certified total ε at ``delta``: an UPPER :class:`Bound` (``b.source``: the accountant,
    ``b.order``: the Rényi order, None on the Gaussian-profile routes).

    T_b = 1: exact profile of the composed Gaussian blocks (μ = √k·B/σ_b, with C0/√k under
    "joint": sup over Σ d_i² ≤ 4C0² of √(Σ_i (d_iρ + 2γC1)²)/σ_b). Otherwise the total
    coefficient a of :func:`blockwise_coefficient` through :func:`iteration.certified_epsilon`:
    the smaller of the exact profile at μ = √(2a) (Gaussian DP) and the curve α·a converted at
    the optimal order (``analysis`` forces one; ``b.details["route"]`` says which).
    """
    d = v.check_delta(delta)
    s = v.check_positive("noise_std", noise_std)
    k = v.check_int("blocks", blocks, minimum=1)
    T = v.check_int("steps_per_block", steps_per_block, minimum=1)
    p = _params(clip_initial, clip_gradient, learning_rate, weight_decay)
    tag = "" if check_allocation(allocation) == "per_block" else ", joint allocation"
    if T == 1:
        b = iteration.constant_B(steps=1, **_block_params(p, k, allocation))
        mu = math.sqrt(k) * b / s
        if not mu < math.inf:
            raise NumericalPrecisionError(
                f"mu = sqrt(blocks)*B/noise_std overflows (B={b:g}): no finite epsilon"
            )
        eps = float(gaussian.epsilon(d, mu=mu))
        return Bound(
            eps,
            BoundKind.UPPER,
            source=f"gaussian_profile(composed blocks{tag})",
            details={"order": None, "mu": mu, "delta": d},
        )
    coef = iteration.require_finite_coefficient(
        blockwise_coefficient(noise_std=s, blocks=k, steps_per_block=T, allocation=allocation, **p),
        "the block schedule",
    )
    b = iteration.certified_epsilon(coef, delta=d, analysis=analysis)
    head, tail = b.source.split("+", 1)
    return Bound(
        b.value,
        BoundKind.UPPER,
        source=f"{head}(blockwise{tag})+{tail}",
        details=dict(b.details, coefficient=coef, delta=d),
    )


def blockwise_schedule(
    *,
    epsilon,
    delta,
    blocks,
    clip_initial,
    clip_gradient,
    learning_rate,
    weight_decay=0.0,
    steps_per_block=None,
    max_steps_per_block=10_000,
    allocation="per_block",
    analysis="best",
) -> BlockwiseSchedule:
    """Least-noise certified block-wise schedule; T_b chosen among the integer candidates
    (⌊T*⌋, ⌈T*⌉, 1, plateau/cap) with σ_b recomputed for each, unless ``steps_per_block`` given.
    The returned schedule is re-certified; its ε ≤ ``epsilon``. Under "joint" the candidates
    are those of the per-block form with C0/√k (T* = log(1 − λC0/(√k·C1))/log(1 − γλ)).
    """
    eps = v.check_positive("epsilon", epsilon)
    d = v.check_delta(delta)
    k = v.check_int("blocks", blocks, minimum=1)
    p = _params(clip_initial, clip_gradient, learning_rate, weight_decay)
    a = dict(blocks=k, allocation=check_allocation(allocation))
    analysis = iteration.check_analysis(analysis)
    if steps_per_block is None:
        cands = iteration.candidate_steps(
            max_steps=max_steps_per_block, **_block_params(p, k, allocation)
        )
    else:
        cands = [v.check_int("steps_per_block", steps_per_block, minimum=1)]
    best = None
    for T in cands:
        s = blockwise_noise_std(
            epsilon=eps, delta=d, steps_per_block=T, analysis=analysis, **a, **p
        )
        if best is None or s < best[1] * (1 - 1e-12):
            best = (T, s)
    T, s = best
    for _ in range(64):
        cert = blockwise_epsilon(
            delta=d, noise_std=s, steps_per_block=T, analysis=analysis, **a, **p
        )
        e_cert, acct = cert.value, cert.source
        if e_cert <= eps:
            break
        s *= 1.0 + 1e-9
    else:  # pragma: no cover
        raise NumericalPrecisionError("block-wise calibration could not reach the feasible side")
    coef = blockwise_coefficient(noise_std=s, steps_per_block=T, **a, **p)
    return BlockwiseSchedule(
        blocks=k,
        steps_per_block=T,
        noise_std=s,
        per_block_coefficient=coef / k,
        total_coefficient=coef,
        epsilon=e_cert,
        delta=d,
        kind=BoundKind.UPPER,
        accountant=acct,
    )


def dolgova_stich_schedule(
    *, epsilon, delta, blocks, clip_initial, clip_gradient, learning_rate, weight_decay=0.0
) -> dict:
    """PAPER/CODE MODE (for comparison): the official code's planner, reproduced.

    Mironov order q* = 1 + (L + √(L² + Lε))/ε, per-block budget (ε_q*/q*)/k = a_max^M/k,
    σ_b² = k·(2/a_max^M)·γ(2 − γλ)·C0·C1·(2 − λC0/C1) (λ = 0: k·8γC0C1/a_max^M), evaluated at the
    real T* = log(1 − λC0/C1)/log(1 − γλ) (λ = 0: C0/(γC1)), and T_b = max(1, ⌊T*⌋) -- the
    floored integer, which the code runs with σ(T*) (docs/theory.md §13.5). Requires λC0 < C1.
    Returns dict(noise_std, steps_per_block, real_steps, order, budget_coefficient).
    """
    eps = v.check_positive("epsilon", epsilon)
    d = v.check_delta(delta)
    k = v.check_int("blocks", blocks, minimum=1)
    p = _params(clip_initial, clip_gradient, learning_rate, weight_decay)
    c0, c1, lr, wd = p["clip_initial"], p["clip_gradient"], p["learning_rate"], p["weight_decay"]
    if c1 <= 0 or wd * c0 >= c1:
        raise InvalidParameterError(
            "weight_decay",
            weight_decay,
            "the Dolgova-Stich planner needs weight_decay * clip_initial < clip_gradient",
        )
    L = -math.log(d)
    q = 1.0 + (L + math.sqrt(L * L + L * eps)) / eps
    a_m = iteration.mironov_max_coefficient(epsilon=eps, delta=d)
    if not a_m > 0.0:
        raise InvalidParameterError(
            "epsilon", epsilon, "too small for the Dolgova-Stich planner (its budget underflows)"
        )
    t_real = iteration.optimal_steps_real(**p)
    if not t_real < 2.0**62:
        raise InvalidParameterError(
            "learning_rate",
            learning_rate,
            f"the Dolgova-Stich step rule T* = {t_real:g} is not a usable step count",
        )
    gl = lr * wd
    var = k * (2.0 / a_m) * lr * (2.0 - gl) * c0 * c1 * (2.0 - wd * c0 / c1)
    if not (0.0 < var < math.inf):
        raise InvalidParameterError(
            "clip_gradient", clip_gradient, f"the Dolgova-Stich noise variance is {var:g}"
        )
    return dict(
        noise_std=math.sqrt(var),
        steps_per_block=max(1, math.floor(t_real)),
        real_steps=t_real,
        order=q,
        budget_coefficient=a_m,
    )
