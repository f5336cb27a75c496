r"""Group privacy for the DP-SGD baseline (math.md §7.2).

Group privacy [std; induction along a path of k single-record changes]: an (ε', δ')-DP mechanism
is, for groups of k records,

    (k ε',  δ' · Σ_{i=0}^{k−1} e^{i ε'})  =  (k ε',  δ' · (e^{k ε'} − 1)/(e^{ε'} − 1)).

Inverse split to reach (ε, δ) for the group: ε' = ε/k, δ' = δ·(e^{ε'} − 1)/(e^{k ε'} − 1).
The common simplification Σ_{i<k} e^{iε'} ≤ k·e^{(k−1)ε'} gives the (smaller, still valid)
δ' = δ/(k·e^{(k−1)ε/k}).

All sums are evaluated in log space (log Σ e^{iε'} = log_expm1(kε') − log_expm1(ε')), so k·ε'
may exceed 709 without overflow.

:func:`stair_lab_split` reproduces a PUBLISHED BUG (math.md §13.4) for comparison only: it
drops the factor 1/k, δ' = δ·e^{−(k−1)ε/k}, which is optimistic by a factor between 1 and k.
Reference for DP-SGD: Abadi et al. 2016, arXiv 1607.00133; group privacy: Dwork & Roth 2014,
Thm 2.2 (pure DP) and its (ε, δ) extension by the same induction.
"""

from __future__ import annotations

import math

from . import _validate as v
from ._logspace import log_expm1

__all__ = [
    "log_group_delta_factor",
    "group_privacy",
    "split_group_budget",
    "split_group_budget_simplified",
    "stair_lab_split",
]


def log_group_delta_factor(epsilon, group_size) -> float:
    """log Σ_{i=0}^{k−1} e^{iε} (EXACT; = log k at ε = 0)."""
    eps = v.check_epsilon(epsilon)
    k = v.check_int("group_size", group_size, minimum=1)
    if k == 1:
        return 0.0
    if eps == 0.0:
        return math.log(k)
    return float(log_expm1(k * eps)) - float(log_expm1(eps))


def group_privacy(epsilon, delta, group_size) -> tuple[float, float]:
    """(k ε', δ' Σ_{i<k} e^{iε'}) for an (ε', δ')-DP mechanism and groups of k [UPPER].

    Returns (group_epsilon, group_delta); group_delta may exceed 1 (then it is vacuous).
    """
    eps = v.check_epsilon(epsilon)
    d = v.check_delta(delta)
    k = v.check_int("group_size", group_size, minimum=1)
    log_d = math.log(d) + log_group_delta_factor(eps, k)
    return k * eps, math.exp(min(log_d, 700.0))


def split_group_budget(epsilon, delta, group_size) -> tuple[float, float]:
    """Per-record (ε', δ') whose group-k guarantee is exactly (ε, δ): ε' = ε/k,
    δ' = δ (e^{ε'} − 1)/(e^{kε'} − 1). Inverse of :func:`group_privacy` (up to rounding, which is
    taken downward on δ' so the group δ never exceeds the target)."""
    eps = v.check_positive("epsilon", epsilon)
    d = v.check_delta(delta)
    k = v.check_int("group_size", group_size, minimum=1)
    e1 = eps / k
    log_d1 = math.log(d) - log_group_delta_factor(e1, k)
    d1 = math.exp(log_d1) * (1.0 - 1e-12)
    return e1, d1


def split_group_budget_simplified(epsilon, delta, group_size) -> tuple[float, float]:
    """ε' = ε/k, δ' = δ/(k e^{(k−1)ε/k}): the common simplification (valid, slightly smaller δ')."""
    eps = v.check_positive("epsilon", epsilon)
    d = v.check_delta(delta)
    k = v.check_int("group_size", group_size, minimum=1)
    e1 = eps / k
    return e1, math.exp(math.log(d) - math.log(k) - (k - 1) * e1) * (1.0 - 1e-12)


def stair_lab_split(epsilon, delta, group_size) -> tuple[float, float]:
    """PUBLISHED BUG, for labelled comparison only (never certifies): δ' = δ e^{−(k−1)ε/k}.

    The factor 1/k of the simplified split is dropped, so the group δ it implies exceeds the
    target by a factor between 1 and k (math.md §13.4).
    """
    eps = v.check_positive("epsilon", epsilon)
    d = v.check_delta(delta)
    k = v.check_int("group_size", group_size, minimum=1)
    e1 = eps / k
    return e1, math.exp(math.log(d) - (k - 1) * e1)
