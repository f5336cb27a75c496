r"""Per-instance Rényi privacy losses along a noisy training trajectory, and what follows.

Per-instance DP (Wang 2019, arXiv 1707.07708) holds for one fixed pair (D, D∖{x}), not for
the worst neighbour. **Caveat carried by every result:** a per-instance certificate is pDP,
not DP; noise or step counts chosen per instance depend on the data and may themselves leak.

Inputs are arrays of shape (n_examples, steps): per-step, per-example gradient(-difference)
norms, supplied by the caller or by the torch layer. Everything is vectorised over examples.

Per-step forms and their kinds
    :func:`subsampled_gaussian_rdp` -- DP-SGD with Poisson rate q, clip C, noise std z·C, sum
    reduction (Thudi et al. 2024, "Gradients look alike", arXiv 2307.00310; second-hand, from a
    co-author's code): step t of example x is the subsampled Gaussian with effective noise
    multiplier z/s_t(x), s_t = min(‖g_t(x)‖/C, 1). For integer α (EXACT binomial expansion,
    Mironov, Talwar & Zhang 2019, arXiv 1908.10530):
        ε_t(x; α) = log Σ_k C(α,k)(1−q)^{α−k} q^k e^{k(k−1)u}/(α−1),   u = s_t²/(2z²).
    log Σ_k(…) is convex in u (a log-sum-exp of affine functions of u), so the chord between
    two exact nodes of a u-grid is an UPPER bound; the per-step values are read off that chord
    (exact at the nodes) and summed over steps by two sparse (examples × cells) matrices with
    one entry per step times the (cells × orders) tables: O(n·T·k) work, no dense
    (examples × cells) histogram and no (examples × steps × k) tensor is ever formed.
    Composition over steps is the RDP sum. θ_t depends on whether x was present, so with
    norms from the realised trajectory the result is an ESTIMATE; with ``supremum=True`` (the
    caller certifies that each norm is a sup over a set that contains the iterates of both
    runs) it is an UPPER bound. Thudi et al.'s order-raising composition is not implemented.

    :func:`noisy_gd_rdp` -- noisy full-batch GD x_{t+1} = x_t − η_t∇f_D(x_t) + N(0, s_t²I)
    (s_t = noise_std, the injected std; s² = 2ησ² in temperature units), f_D the mean loss:
    removing x shifts the step mean by η_t(∇ℓ_x − ∇f_{D∖x})/n, so (docs/theory.md §10.3 [derived])
        P(x, α) = α·a(x),   a(x) = Σ_t η_t² g_t(x)² / (2 s_t² n²),
    g_t = ‖∇ℓ_x(θ_t) − ∇f_{D∖x}(θ_t)‖. UPPER with sup norms over a certified set, ESTIMATE
    with the realised trajectory. It composes every released iterate; the last iterate alone
    usually leaks far less.

:func:`unlearning_steps` -- per-example unlearning step counts (docs/theory.md §10.4, derived from
    Langevin Unlearning's LSI lemmas, second-hand): for target (ε, δ) at order α,
        k(x) = ⌈ (2α/(mη))·log( c_α·P(x, 2α) / (ρ*(α) − stationarity) ) ⌉₊,
    c_α = (α − ½)/(α − 1), ρ*(α) the largest Rényi value the improved conversion certifies at α,
    minimised over α. Bounds one direction (unlearned ‖ retrained), as LU's theorem does.

:func:`loss_barrier` -- a DIAGNOSTIC, NOT A BOUND (docs/theory.md §10.5).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import _validate as v
from ._logspace import exp_upper
from .bounds import BoundKind, certifies
from .errors import InvalidParameterError, NumericalPrecisionError
from .renyi import log_a_integer_table

__all__ = [
    "PDP_CAVEAT",
    "DEFAULT_ORDERS",
    "PerInstanceRenyi",
    "StepCounts",
    "LossBarrier",
    "subsampled_gaussian_rdp",
    "subsampled_gaussian_step_rdp",
    "noisy_gd_rdp",
    "unlearning_steps",
    "loss_barrier",
]

PDP_CAVEAT = (
    "per-instance (pDP) guarantee for this (D, x) pair only, not DP; quantities chosen per "
    "instance depend on the data and may themselves leak"
)
DEFAULT_ORDERS = np.array([2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 48, 64], dtype=np.float64)
_GRID_ORDERS = 1.0 + np.exp(np.linspace(math.log(1e-3), math.log(1e6), 600))
_ROUND = 1e-12


@dataclass(frozen=True)
class PerInstanceRenyi:
    """Per-example Rényi curves: ``rdp[i, j]`` bounds (or estimates) D_{orders[j]} for example i.

    ``kind``: BoundKind.UPPER or BoundKind.ESTIMATE (say which, always; a string is parsed).
    ``linear_coefficient`` (n,) is set when every curve is α·a_i (then any order can be
    evaluated). ``caveat``: the pDP caveat.
    """

    orders: np.ndarray
    rdp: np.ndarray
    kind: BoundKind
    description: str
    linear_coefficient: np.ndarray | None = None
    caveat: str = PDP_CAVEAT
    details: dict = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "kind", BoundKind.parse(self.kind))

    @property
    def certifies(self) -> bool:
        """True when these curves may enter a (per-instance) certificate (kind upper)."""
        return certifies(self.kind)

    @property
    def n_examples(self) -> int:
        return int(self.rdp.shape[0])

    def at(self, orders) -> np.ndarray:
        """Curve values at ``orders`` (n, k): exact lookup, or any order for linear curves."""
        alpha = v.check_orders(orders)
        alpha = np.atleast_1d(alpha)
        if self.linear_coefficient is not None:
            return self.linear_coefficient[:, None] * alpha[None, :]
        pos = []
        for a in alpha:
            hit = np.nonzero(np.isclose(self.orders, a, rtol=0, atol=1e-12))[0]
            if hit.size == 0:
                raise InvalidParameterError("orders", a, "not among the computed orders")
            pos.append(int(hit[0]))
        return self.rdp[:, pos]

    def epsilon(self, delta, *, conversion="improved") -> np.ndarray:
        """Per-example ε at ``delta`` (improved conversion; min over orders; same kind).

        Linear curves are converted on a dense logarithmic order grid (valid at every order, so
        the grid only costs tightness), others on the computed orders.
        """
        from . import conversions

        d = v.check_delta(delta)
        if self.linear_coefficient is not None:
            out = np.empty(self.n_examples)
            for lo in range(0, self.n_examples, 4096):
                a = self.linear_coefficient[lo : lo + 4096]
                vals = a[:, None] * _GRID_ORDERS[None, :]
                eps = conversions.epsilon_at_order(
                    _GRID_ORDERS, vals, delta=d, conversion=conversion
                )
                out[lo : lo + 4096] = np.min(np.atleast_2d(eps), axis=1)
            out[self.linear_coefficient == 0] = 0.0
            return out
        eps = conversions.epsilon_at_order(self.orders, self.rdp, delta=d, conversion=conversion)
        return np.min(np.atleast_2d(eps), axis=1)


def _norm_array(name, value) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != 2:
        raise InvalidParameterError(
            name, f"array of shape {arr.shape}", "must have shape (n_examples, steps)"
        )
    if arr.shape[0] == 0:
        raise InvalidParameterError(name, "empty array", "needs at least one example")
    if arr.shape[1] == 0:
        raise InvalidParameterError(name, "empty array", "needs at least one step")
    if not np.issubdtype(arr.dtype, np.floating) and not np.issubdtype(arr.dtype, np.integer):
        raise InvalidParameterError(name, arr.dtype, "must be a real array")
    return arr


def _check_block(name, block):
    lo, hi = float(np.min(block)), float(np.max(block))  # NaN propagates into both
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise InvalidParameterError(name, "array", "must contain only finite values")
    if lo < 0:
        raise InvalidParameterError(name, "array", "norms must be >= 0")


def _integer_orders(orders) -> np.ndarray:
    alpha = np.atleast_1d(v.check_orders(orders))
    if np.any(alpha != np.round(alpha)):
        raise InvalidParameterError(
            "orders", orders, "the subsampled-Gaussian form needs integer orders >= 2"
        )
    return alpha


def subsampled_gaussian_step_rdp(orders, *, sensitivity_ratio, sample_rate, noise_multiplier):
    """Exact per-step RDP (integer orders) for sensitivity ratios s ∈ [0, 1]: array (..., k).

    ε(α; s) = log A_α(s²/(2z²))/(α − 1), the Poisson-subsampled Gaussian with noise
    multiplier z/s (s = 0 gives 0). EXACT (binomial expansion); direction P‖Q (MTZ 2019).
    u = (s/z)²/2 is formed without 0/0; where u or A_α leaves the float64 range (z → 0
    relative to s: the noise vanishes) the value is +inf, a valid upper bound, never NaN.
    """
    alpha = _integer_orders(orders)
    q = v.check_sample_rate(sample_rate)
    z = v.check_positive("noise_multiplier", noise_multiplier)
    s = v.as_float_array("sensitivity_ratio", sensitivity_ratio)
    if np.any(s < 0) or np.any(s > 1):
        raise InvalidParameterError("sensitivity_ratio", sensitivity_ratio, "must lie in [0, 1]")
    with np.errstate(over="ignore"):
        u = 0.5 * (s.reshape(-1) / z) ** 2  # (s/z)² first: no s²/z² underflow, no 0/0
    big = ~np.isfinite(u)
    u_fin = np.where(big, 0.0, u)
    out = np.stack([_log_a_table(u_fin, int(a), q) / (a - 1.0) for a in alpha], axis=-1)
    out[big] = np.inf
    return np.maximum(out, 0.0).reshape(s.shape + (alpha.size,))


def _log_a_table(u, alpha: int, q: float) -> np.ndarray:
    """log A_α(u) with +inf (an upper bound) where a term overflows: at q = 1 a huge u makes
    the k < α terms −inf + inf = NaN inside the log-sum-exp."""
    with np.errstate(over="ignore", invalid="ignore"):
        out = log_a_integer_table(u, alpha, q)
    return np.where(np.isnan(out), np.inf, out)


def subsampled_gaussian_rdp(
    gradient_norms,
    *,
    clip_gradient,
    sample_rate,
    noise_multiplier,
    orders=None,
    supremum=False,
    grid_size=2049,
    block_examples=None,
) -> PerInstanceRenyi:
    """Per-example composed RDP of Poisson-subsampled DP-SGD from per-step gradient norms.

    ``gradient_norms`` (n_examples, steps): ‖∇ℓ(θ_t; x)‖ (clipped at ``clip_gradient`` C
    here). Noise std = noise_multiplier·C, sum reduction, Poisson rate ``sample_rate``. Integer
    ``orders`` (default :data:`DEFAULT_ORDERS`). Kind: "estimate" (realised trajectory) or
    "upper" (``supremum=True``: each norm is a sup over a certified set containing the iterates
    of both runs). Per-step values come from the exact-at-the-nodes chord of a convex function
    (UPPER on the exact per-step value), summed with an upward allowance for the float64
    summation ((T + 2)·2⁻⁵²); cost O(n·steps·orders) + O(grid·Σα). See the module doc.
    Where the noise is so small that the chord reaches +inf (1/(2z²) or log A_α beyond float64)
    a step in such a cell contributes +inf (an upper bound), never NaN.
    """
    from scipy import sparse  # here, not at import: keeps `import unlearn_theory` light

    g = _norm_array("gradient_norms", gradient_norms)
    C = v.check_positive("clip_gradient", clip_gradient)
    q = v.check_sample_rate(sample_rate)
    z = v.check_positive("noise_multiplier", noise_multiplier)
    alpha = _integer_orders(DEFAULT_ORDERS if orders is None else orders)
    G = v.check_int("grid_size", grid_size, minimum=3)
    blk = (
        None if block_examples is None else v.check_int("block_examples", block_examples, minimum=1)
    )
    n, T = g.shape
    with np.errstate(over="ignore"):
        u_max = 0.5 / z / z  # +inf when z < ~5e-155
    if math.isfinite(u_max):
        nodes = np.linspace(0.0, u_max, G)
        table = np.stack([_log_a_table(nodes, int(a), q) / (a - 1.0) for a in alpha], axis=1)
        table = np.maximum(table, 0.0) * (1.0 + _ROUND)  # (G, k)
    else:  # every u > 0 lies in the first cell, whose right end is +inf
        table = np.full((G, alpha.size), np.inf)
        table[0] = 0.0
    out = np.empty((n, alpha.size))
    # chord ends that are +inf: the values are nondecreasing in u, so per order the +inf
    # nodes are a suffix j ≥ j_inf; a step is +inf in a cell ≥ j_inf, or in j_inf − 1 off-node
    inf_node = ~np.isfinite(table)
    has_inf = bool(inf_node.any())
    j_inf = np.where(inf_node.any(axis=0), np.argmax(inf_node, axis=0), G)  # (k,)
    table = np.where(inf_node, 0.0, table)
    cells = np.arange(G)[:, None]
    ge_inf = (cells >= j_inf[None, :]).astype(np.float64)  # (G, k)
    at_edge = ((cells == j_inf[None, :] - 1) & (j_inf[None, :] < G)).astype(np.float64)
    # cell j covers [u_j, u_{j+1}); the last node (s = 1, clipped) is its own cell of slope 0
    table_slope = np.vstack([table[1:] - table[:-1], np.zeros((1, alpha.size))])
    table_slope = np.where(ge_inf + at_edge > 0, 0.0, table_slope)
    if has_inf:  # extra columns: per order, "some step has a +inf chord" (hits > 0)
        table = np.hstack([table, ge_inf])
        table_slope = np.hstack([table_slope, at_edge])
    k = alpha.size
    # summation of T nonnegative per-step terms in float64: relative error <= (T - 1)·2^-53
    # (recursive summation), rounded up on top of the per-step allowance in the table
    sum_round = 1.0 + (T + 2) * 2.0**-52
    if blk is None:
        blk = max(1, (1 << 20) // T)  # about a million steps per block
    rows = min(n, blk)
    ones = np.ones(rows * T)
    indptr = np.arange(0, rows * T + 1, T, dtype=np.int32 if rows * T < 2**31 else np.int64)
    work = np.empty((rows, T))  # reused: a private float64 copy of each block, edited in place
    cells = np.empty((rows, T), dtype=np.int32)
    for lo in range(0, n, blk):
        src = g[lo : lo + blk]
        m = src.shape[0]
        block, idx = work[:m], cells[:m]
        np.copyto(block, src, casting="unsafe")  # any real dtype, read as float64
        _check_block("gradient_norms", block)
        with np.errstate(over="ignore"):
            block /= C  # (g/C)² first: C² underflows for tiny clip_gradient
            np.multiply(block, block, out=block)
        block *= G - 1.0  # u/h = min(g/C, 1)²·(G − 1), h = u_max/(G − 1)
        np.minimum(block, G - 1.0, out=block)  # position on the grid, in cells
        np.copyto(idx, block, casting="unsafe")  # the cell: truncation of a value in [0, G−1]
        np.subtract(block, idx, out=block)  # now the position within the cell, in [0, 1)
        # Σ_t chord(u_t) = Σ_t F_lo(cell_t) + frac_t·(F_hi − F_lo)(cell_t): two sparse
        # (examples × cells) matrices with one entry per step, times the (cells × orders) tables
        shape, ptr = (m, G), indptr[: m + 1]
        at_cell = sparse.csr_matrix((ones[: m * T], idx.ravel(), ptr), shape=shape, copy=False)
        in_cell = sparse.csr_matrix((block.ravel(), idx.ravel(), ptr), shape=shape, copy=False)
        vals = at_cell @ table + in_cell @ table_slope
        if has_inf:
            vals = np.where(vals[:, k:] > 0, np.inf, vals[:, :k])
        out[lo : lo + m] = vals * sum_round
    kind = BoundKind.UPPER if supremum else BoundKind.ESTIMATE
    return PerInstanceRenyi(
        orders=alpha,
        rdp=out,
        kind=kind,
        description=(
            "Poisson-subsampled Gaussian per step with noise multiplier z/s_t(x) (Thudi et al. "
            "2024, arXiv 2307.00310 [second-hand]), summed over steps (RDP composition)"
        ),
        details={"grid_size": G, "steps": T, "sample_rate": q, "noise_multiplier": z},
    )


def _per_step(name, value, T):
    arr = v.as_float_array(name, value)
    if arr.ndim == 0:
        arr = np.full(T, float(arr))
    if arr.shape != (T,):
        raise InvalidParameterError(name, value, f"must be a scalar or have shape ({T},)")
    if np.any(arr <= 0):
        raise InvalidParameterError(name, value, "must be > 0")
    return arr


def noisy_gd_rdp(
    gradient_differences,
    *,
    learning_rate,
    noise_std,
    dataset_size,
    supremum=False,
    block_examples=8192,
) -> PerInstanceRenyi:
    """Per-example RDP of noisy full-batch GD: P(x, α) = α·Σ_t η_t² g_t(x)²/(2 s_t² n²).

    ``gradient_differences`` (n_examples, steps): g_t(x) = ‖∇ℓ_x(θ_t) − ∇f_{D∖x}(θ_t)‖ (mean
    loss over n = ``dataset_size`` points). ``noise_std`` s_t is the injected std
    (s² = 2ησ² in temperature units); ``learning_rate``/``noise_std`` scalar or per step.
    Kind "upper" with ``supremum=True`` (sup over a certified set, e.g. the projection ball),
    else "estimate" (realised trajectory). Linear in α. (docs/theory.md §10.3 [derived].)

    Computed with the weights η_t²/(2s_t²n²) in log space and each row scaled by its largest
    norm, so no factor underflows or overflows on its own; the coefficient is rounded up: a
    positive a(x) below the float64 range is the smallest positive float (never 0), one above
    it is +inf (never NaN).
    """
    g = _norm_array("gradient_differences", gradient_differences)
    n_ex, T = g.shape
    lr = _per_step("learning_rate", learning_rate, T)
    s = _per_step("noise_std", noise_std, T)
    n = v.check_int("dataset_size", dataset_size, minimum=1)
    log_w = 2.0 * np.log(lr) - 2.0 * np.log(s) - (math.log(2.0) + 2.0 * math.log(n))
    lw_max = float(np.max(log_w))
    w_rel = np.exp(log_w - lw_max)  # in (0, 1]
    coef = np.empty(n_ex)
    for lo in range(0, n_ex, block_examples):
        block = np.asarray(g[lo : lo + block_examples], dtype=np.float64)
        _check_block("gradient_differences", block)
        coef[lo : lo + block.shape[0]] = _scaled_quadratic(block, w_rel, log_w, lw_max)
    kind = BoundKind.UPPER if supremum else BoundKind.ESTIMATE
    with np.errstate(over="ignore"):  # α·a beyond float64 is +inf (an upper bound)
        rdp = coef[:, None] * DEFAULT_ORDERS[None, :]
    return PerInstanceRenyi(
        orders=DEFAULT_ORDERS.copy(),
        rdp=rdp,
        kind=kind,
        description="noisy full-batch GD, composition over released iterates (docs/theory.md §10.3)",
        linear_coefficient=coef,
    )


def _scaled_quadratic(block, w_rel, log_w, lw_max) -> np.ndarray:
    """Σ_t g_t²·w_t per row, w_t = e^{log_w[t]} [UPPER: rounded up by _ROUND; never 0 for a
    positive sum, +inf past float64]. Each row is scaled by its largest norm G and w by its
    largest weight W, so Σ (g/G)²·(w/W) ≤ T; terms dropped there by underflow are < 2.3e-308
    each, negligible once the scaled sum is ≥ 1e-250; rows below that are redone in log space."""
    gmax = np.max(block, axis=1)
    pos = gmax > 0
    safe = np.where(pos, gmax, 1.0)
    with np.errstate(under="ignore"):
        scaled = block / safe[:, None]
        ssum = np.einsum("ij,ij,j->i", scaled, scaled, w_rel)
    small = pos & (ssum < 1e-250)
    with np.errstate(divide="ignore"):
        log_sum = np.log(np.where(pos, ssum, 1.0)) + 2.0 * np.log(safe) + lw_max
        if np.any(small):
            terms = 2.0 * np.log(block[small]) + log_w[None, :]
            top = np.max(terms, axis=1)
            log_sum[small] = top + np.log(np.sum(np.exp(terms - top[:, None]), axis=1))
    # log-space rounding allowance (a few ulps of each log magnitude), upward
    log_sum = log_sum + 8.0 * 2.0**-52 * (np.abs(log_sum) + 2.0 * np.abs(np.log(safe)) + 1.0)
    log_sum = log_sum + 8.0 * 2.0**-52 * abs(lw_max)
    with np.errstate(over="ignore"):
        out = exp_upper(log_sum) * (1.0 + _ROUND)
    return np.where(pos, out, 0.0)


@dataclass(frozen=True)
class StepCounts:
    """Per-example unlearning step counts (int array; -1 where no order certifies)."""

    steps: np.ndarray
    orders: np.ndarray
    kind: BoundKind
    description: str
    caveat: str = PDP_CAVEAT

    def __post_init__(self):
        object.__setattr__(self, "kind", BoundKind.parse(self.kind))


def unlearning_steps(
    losses: PerInstanceRenyi,
    *,
    epsilon,
    delta,
    learning_rate,
    strong_convexity,
    smoothness,
    stationarity=0.0,
    orders=None,
) -> StepCounts:
    """Per-example noisy unlearning steps k(x) on D∖{x} to reach (ε, δ) (docs/theory.md §10.4).

    Bound after k steps (LSI constant 2σ²/m, η ≤ 1/L; one direction, unlearned ‖ retrained):
    D_α ≤ c_α·e^{−mηk/(2α)}·P(x, 2α) + stationarity, c_α = (α − ½)/(α − 1); the smallest k over
    ``orders`` (default: a log grid for linear curves, else the computed orders α with 2α
    also computed) whose bound converts to ≤ ε is returned and re-checked with
    :func:`unlearn_theory.conversions.epsilon_at_order`. ``stationarity`` bounds
    D_{2α−1}(ν′_{T+k}‖ν′_T) (0 for a converged reference). Kind: that of ``losses``.
    [derived from second-hand LSI lemmas: Chien et al. 2024, arXiv 2401.10371; Sepahvand et al.
    2025, arXiv 2505.18786 state a variant with P(x, 4α).]
    """
    from . import conversions

    if not isinstance(losses, PerInstanceRenyi):
        raise InvalidParameterError("losses", type(losses).__name__, "must be a PerInstanceRenyi")
    eps = v.check_positive("epsilon", epsilon)
    d = v.check_delta(delta)
    lr = v.check_positive("learning_rate", learning_rate)
    m = v.check_positive("strong_convexity", strong_convexity)
    L = v.check_positive("smoothness", smoothness)
    if m > L:
        raise InvalidParameterError("strong_convexity", m, f"must be <= smoothness={L:g}")
    if lr * L > 1.0:
        raise InvalidParameterError(
            "learning_rate",
            lr,
            f"the LSI contraction needs learning_rate <= 1/smoothness = {1 / L:.6g}",
        )
    stat = v.check_nonnegative("stationarity", stationarity)
    if orders is None:
        if losses.linear_coefficient is not None:
            alpha = 1.0 + np.exp(np.linspace(math.log(0.02), math.log(1e4), 200))
        else:
            alpha = np.array([a for a in losses.orders if np.any(np.isclose(losses.orders, 2 * a))])
            if alpha.size == 0:
                raise InvalidParameterError(
                    "losses", "orders", "need orders α with 2α also computed (e.g. 2 and 4)"
                )
    else:
        alpha = np.atleast_1d(v.check_orders(orders))
    p2 = losses.at(2.0 * alpha)  # (n, k)
    ld = math.log(d)
    target = eps - np.log1p(-1.0 / alpha) + (ld + np.log(alpha)) / (alpha - 1.0)  # ρ*(α)
    c_a = (alpha - 0.5) / (alpha - 1.0)
    slack = target - stat
    rate = m * lr / (2.0 * alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.log(c_a[None, :] * p2) - np.log(np.where(slack > 0, slack, np.nan))[None, :]
        k = np.ceil(np.maximum(ratio, 0.0) / rate[None, :])
    k = np.where(np.isnan(k), np.inf, k)
    k = np.where(p2 == 0, 0.0, k)
    k = np.where((slack <= 0)[None, :], np.inf, k)
    best = np.argmin(k, axis=1)
    rows = np.arange(k.shape[0])
    ks = k[rows, best]
    finite = np.isfinite(ks)
    # re-check on the feasible side (and bump by one step where rounding bites)
    a_b = alpha[best]
    for _ in range(16):
        bound = c_a[best] * np.exp(-rate[best] * np.where(finite, ks, 0.0)) * p2[rows, best] + stat
        bound = bound * (1.0 + 1e-12)
        e_chk = conversions.epsilon_at_order(a_b, bound, delta=d)
        bad = finite & (np.atleast_1d(e_chk) > eps)
        if not np.any(bad):
            break
        ks = np.where(bad, np.maximum(ks + 1, np.ceil(ks * (1.0 + 1e-9))), ks)
    else:
        raise NumericalPrecisionError("per-example step counts do not re-certify the target")
    steps = np.where(finite, ks, -1).astype(np.int64)
    return StepCounts(
        steps=steps,
        orders=np.where(finite, a_b, np.nan),
        kind=losses.kind,
        description=(
            "LSI contraction + weak triangle inequality (docs/theory.md §10.4) [derived from "
            "second-hand lemmas]; -1 = no order certifies"
        ),
    )


@dataclass(frozen=True)
class LossBarrier:
    """Loss barrier along the segment θ_a → θ_b: a DIAGNOSTIC, NOT A PRIVACY BOUND.

    Its ``kind`` is :attr:`BoundKind.ESTIMATE`: a measured number with no guaranteed direction
    with respect to any privacy quantity, so ``certifies(barrier.kind)`` is False and it can
    never enter a certificate (the vocabulary has no separate "diagnostic" kind).
    """

    value: np.ndarray
    t: np.ndarray
    losses: np.ndarray
    kind: BoundKind = BoundKind.ESTIMATE
    note: str = "diagnostic, not a bound: it bounds no divergence and never enters a certificate"

    def __post_init__(self):
        object.__setattr__(self, "kind", BoundKind.parse(self.kind))


def loss_barrier(loss: Callable, theta_a, theta_b, *, grid=21) -> LossBarrier:
    """B_S = max_t L_S((1−t)θ_a + tθ_b) − [(1−t)L_S(θ_a) + t·L_S(θ_b)] on a t-grid with endpoints.

    ``loss(θ)`` returns a scalar or a 1-D array (one loss per group S of forget points); the
    result has one barrier per group. For a convex loss it is 0 up to rounding. DIAGNOSTIC, NOT
    A BOUND (docs/theory.md §10.5; Sepahvand et al. 2025, arXiv 2505.18786 introduce the evaluation).
    """
    if not callable(loss):
        raise InvalidParameterError("loss", loss, "must be a callable theta -> loss(es)")
    a = v.as_float_array("theta_a", theta_a)
    b = v.as_float_array("theta_b", theta_b)
    if a.shape != b.shape:
        raise InvalidParameterError("theta_b", b.shape, f"must have the shape of theta_a {a.shape}")
    if np.ndim(grid) == 0:
        t = np.linspace(0.0, 1.0, v.check_int("grid", grid, minimum=2))
    else:
        t = np.unique(np.concatenate([[0.0, 1.0], v.as_float_array("grid", grid, ndim=1)]))
        if t[0] < 0 or t[-1] > 1:
            raise InvalidParameterError("grid", grid, "must lie in [0, 1]")
    vals = []
    for ti in t:
        out = np.atleast_1d(np.asarray(loss((1.0 - ti) * a + ti * b), dtype=np.float64))
        if out.ndim != 1 or not np.all(np.isfinite(out)):
            raise InvalidParameterError("loss", "output", "must return finite scalar or 1-D array")
        vals.append(out)
    vals = np.array(vals)  # (len(t), groups)
    chord = (1.0 - t)[:, None] * vals[0][None, :] + t[:, None] * vals[-1][None, :]
    return LossBarrier(value=np.max(vals - chord, axis=0), t=t, losses=vals)
