r"""Group privacy for the DP-SGD baseline (docs/theory.md §7.2).

Group privacy [std; induction along a path of k single-record changes]: an (ε', δ')-DP mechanism
is, for groups of k records,

    (k ε',  δ' · Σ_{i=0}^{k−1} e^{i ε'})  =  (k ε',  δ' · (e^{k ε'} − 1)/(e^{ε'} − 1)).

Inverse split to reach (ε, δ) for the group: ε' = ε/k, δ' = δ·(e^{ε'} − 1)/(e^{k ε'} − 1).
The common simplification Σ_{i<k} e^{iε'} ≤ k·e^{(k−1)ε'} gives the (smaller, still valid)
δ' = δ/(k·e^{(k−1)ε/k}).

All sums are evaluated in log space (log Σ e^{iε'} = log_expm1(kε') − log_expm1(ε')), so k·ε'
may exceed 709 without overflow.

Rounding: :func:`group_privacy` is an UPPER bound in float64 (k·ε' rounded up exactly, the
log-space group δ inflated by an allowance covering the rounding of the logs, then e^x stepped
up one ulp, which also covers subnormal δ). The splits land on the feasible side: ε' is rounded
down so that k·ε' ≤ ε exactly, and δ' is stepped down until the forward :func:`group_privacy`
check gives a group δ ≤ the target; a split that underflows float64 (ε' or δ' would be 0)
raises :class:`~unlearn_theory.errors.NumericalPrecisionError`.

:func:`stair_lab_split` reproduces a PUBLISHED BUG (docs/theory.md §13.4) for comparison only: it
drops the factor 1/k, δ' = δ·e^{−(k−1)ε/k}, which is optimistic by a factor between 1 and k.
Reference for DP-SGD: Abadi et al. 2016, arXiv 1607.00133; group privacy: Dwork & Roth 2014,
Thm 2.2 (pure DP) and its (ε, δ) extension by the same induction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from . import _validate as v
from ._logspace import log_expm1
from .bounds import Bound, BoundKind
from .errors import NumericalPrecisionError

__all__ = [
    "log_group_delta_factor",
    "GroupGuarantee",
    "group_privacy",
    "split_group_budget",
    "split_group_budget_simplified",
    "stair_lab_split",
]

#: relative rounding allowance (≈ 45 ulp) on the magnitudes entering a log-space group δ
_LOG_ROUND = 1e-14

#: largest relative step-down of δ' per forward re-check in the splits
_STEP = 1e-13


def _check_group_size(group_size) -> int:
    k = v.check_int("group_size", group_size, minimum=1)
    v.check_real("group_size", k)  # refuses ints beyond float64 range, naming group_size
    return k


def log_group_delta_factor(epsilon, group_size) -> float:
    """log Σ_{i=0}^{k−1} e^{iε} (EXACT; = log k at ε = 0)."""
    eps = v.check_epsilon(epsilon)
    k = _check_group_size(group_size)
    if k == 1:
        return 0.0
    if eps == 0.0:
        return math.log(k)
    return float(log_expm1(k * eps)) - float(log_expm1(eps))


def _mul_up(k: int, eps: float) -> float:
    """k·ε rounded UP in float64 (exact rational comparison); inf if it overflows."""
    out = k * eps
    if not math.isfinite(out):
        return math.inf
    if Fraction(out) < k * Fraction(eps):
        out = math.nextafter(out, math.inf)
    return out


def _div_down(eps: float, k: int) -> float:
    """ε/k rounded DOWN in float64, so that k·(ε/k) ≤ ε holds exactly."""
    out = eps / k
    while out > 0.0 and k * Fraction(out) > Fraction(eps):
        out = math.nextafter(out, 0.0)
    return out


def _log_group_delta_up(eps: float, log_d: float, k: int) -> float:
    """log δ + log Σ_{i<k} e^{iε}, plus an allowance covering its float64 rounding [UPPER]."""
    if k == 1:
        return log_d
    if eps == 0.0:
        lf = math.log(k)
        return log_d + lf + _LOG_ROUND * (4.0 + abs(log_d) + lf)
    a = float(log_expm1(k * eps))
    b = float(log_expm1(eps))
    if not math.isfinite(a):  # k·ε overflowed: the group δ is vacuous
        return math.inf
    return log_d + (a - b) + _LOG_ROUND * (4.0 + abs(log_d) + abs(a) + abs(b))


@dataclass(frozen=True)
class GroupGuarantee:
    """The group-k guarantee (ε_k, δ_k) of a per-record (ε', δ') guarantee.

    ``epsilon`` and ``delta`` are UPPER :class:`~unlearn_theory.bounds.Bound` s (the mechanism
    is (float(epsilon), float(delta))-DP for groups of ``group_size`` records); ``details`` of
    each hold the per-record pair and the group size.
    """

    epsilon: Bound
    delta: Bound
    group_size: int


def _group_privacy_floats(eps: float, d: float, k: int) -> tuple[float, float]:
    if k == 1:
        return eps, d
    log_gd = _log_group_delta_up(eps, math.log(d), k)
    gd = math.nextafter(math.exp(min(log_gd, 700.0)), math.inf)
    return _mul_up(k, eps), gd


def group_privacy(epsilon, delta, group_size) -> GroupGuarantee:
    """(k ε', δ' Σ_{i<k} e^{iε'}) for an (ε', δ')-DP mechanism and groups of k [UPPER].

    Returns a :class:`GroupGuarantee` whose ``epsilon`` and ``delta`` are UPPER Bounds, both
    rounded upward in float64: k·ε' exactly rounded up (+inf if it overflows), the group δ
    from log space with a rounding allowance and an upward ulp step (never below the exact
    value, also for subnormal δ'). The group δ may exceed 1 (then it is vacuous; it is capped
    at e^700). Valid for every ε' ≥ 0, δ' ∈ (0, 1) and integer k ≥ 1 within float64 range.
    """
    eps = v.check_epsilon(epsilon)
    d = v.check_delta(delta)
    k = _check_group_size(group_size)
    ge, gd = _group_privacy_floats(eps, d, k)
    src = "group_privacy (geometric sum over a path of k single-record changes)"
    info = {"group_size": k, "record_epsilon": eps, "record_delta": d}
    return GroupGuarantee(
        epsilon=Bound(ge, BoundKind.UPPER, source=src, details={**info, "quantity": "epsilon"}),
        delta=Bound(gd, BoundKind.UPPER, source=src, details={**info, "quantity": "delta"}),
        group_size=k,
    )


def _feasible_delta(eps1: float, log_d1: float, d: float, k: int, what: str) -> float:
    """Largest-ish δ' ≤ e^{log_d1} whose forward group δ (:func:`group_privacy`) is ≤ d."""
    d1 = math.exp(log_d1)
    for _ in range(400):
        if d1 <= 0.0:
            break
        if _group_privacy_floats(eps1, d1, k)[1] <= d:
            return d1
        d1 = min(math.nextafter(d1, 0.0), d1 * (1.0 - _STEP))
    raise NumericalPrecisionError(
        f"{what}: the per-record delta for delta={d!r}, group_size={k} underflows float64"
    )


def _split_epsilon(eps: float, k: int, what: str) -> float:
    e1 = _div_down(eps, k)
    if e1 <= 0.0:
        raise NumericalPrecisionError(
            f"{what}: epsilon={eps!r}/group_size={k} underflows float64 (per-record epsilon 0)"
        )
    return e1


def split_group_budget(epsilon, delta, group_size) -> tuple[float, float]:
    """Per-record (ε', δ') whose group-k guarantee is (ε, δ): ε' = ε/k,
    δ' = δ (e^{ε'} − 1)/(e^{kε'} − 1). Inverse of :func:`group_privacy`, on the FEASIBLE side:
    k·ε' ≤ ε exactly and ``group_privacy(ε', δ', k)`` (itself an upper bound) gives a group δ
    ≤ δ; δ' is within about 1e-11 relative of the exact split for normal floats.
    Raises NumericalPrecisionError where ε' or δ' would underflow to 0.

    Returns the tuple (ε', δ'): a calibrated per-record *budget* (parameters to run the
    per-record mechanism at), not a bound on a privacy loss, so it is not a
    :class:`~unlearn_theory.bounds.Bound`; the certificate is the forward
    :func:`group_privacy` of it.
    """
    eps = v.check_positive("epsilon", epsilon)
    d = v.check_delta(delta)
    k = _check_group_size(group_size)
    e1 = _split_epsilon(eps, k, "split_group_budget")
    log_d = math.log(d)
    # start below the exact split by the forward allowance (evaluated at log δ' itself), then
    # step down until the forward check holds
    log_d1 = 2.0 * log_d - _log_group_delta_up(e1, log_d, k)
    log_d1 = log_d - (_log_group_delta_up(e1, log_d1, k) - log_d1)
    return e1, _feasible_delta(e1, log_d1, d, k, "split_group_budget")


def split_group_budget_simplified(epsilon, delta, group_size) -> tuple[float, float]:
    """ε' = ε/k, δ' = δ/(k e^{(k−1)ε/k}): the common simplification (valid, slightly smaller
    δ' than :func:`split_group_budget`), rounded to the feasible side the same way. Returns
    the per-record budget (ε', δ') as a tuple of parameters (see :func:`split_group_budget`)."""
    eps = v.check_positive("epsilon", epsilon)
    d = v.check_delta(delta)
    k = _check_group_size(group_size)
    e1 = _split_epsilon(eps, k, "split_group_budget_simplified")
    log_d1 = math.log(d) - math.log(k) - (k - 1) * e1
    return e1, _feasible_delta(e1, log_d1, d, k, "split_group_budget_simplified")


def stair_lab_split(epsilon, delta, group_size) -> tuple[float, float]:
    """PUBLISHED BUG, for labelled comparison only (never certifies): δ' = δ e^{−(k−1)ε/k}.

    The factor 1/k of the simplified split is dropped, so the group δ it implies exceeds the
    target by a factor between 1 and k (docs/theory.md §13.4). ε' = ε/k is rounded down as in the
    valid splits; raises NumericalPrecisionError where ε' or δ' would underflow to 0.
    Returns the (flawed) per-record budget (ε', δ') as a tuple of parameters, not a Bound.
    """
    eps = v.check_positive("epsilon", epsilon)
    d = v.check_delta(delta)
    k = _check_group_size(group_size)
    e1 = _split_epsilon(eps, k, "stair_lab_split")
    d1 = math.exp(math.log(d) - (k - 1) * e1)
    if d1 <= 0.0:
        raise NumericalPrecisionError(
            f"stair_lab_split: the per-record delta for delta={d!r}, group_size={k} "
            "underflows float64"
        )
    return e1, d1
