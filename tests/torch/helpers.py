"""Tiny models, data and the zero-gradient noise probe shared by the torch tests."""

from __future__ import annotations

import math

import torch
from scipy import stats
from torch import nn

from unlearn_torch.noise import _chi2_band, _cosine_bound

torch.set_num_threads(1)


def data(n=64, d_in=6, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d_in, generator=g)
    y = (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long() * (classes > 2)
    return X, y


def mlp(d_in=6, hidden=8, classes=3, seed=0, dropout=False, batchnorm=False):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers = [nn.Linear(d_in, hidden)]
        if batchnorm:
            layers.append(nn.BatchNorm1d(hidden))
        layers.append(nn.ReLU())
        if dropout:
            layers.append(nn.Dropout(0.2))
        layers.append(nn.Linear(hidden, classes))
        return nn.Sequential(*layers)


def zero_loss(out, y):
    """A loss whose gradient is exactly zero (the probe)."""
    return out.sum() * 0.0


def flat_params(model) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def probe_problems(diffs: list[torch.Tensor], sigma: float, alpha: float = 1e-6) -> list[str]:
    """Statistical checks on the per-step differences x_{t+1} - x_t of a zero-gradient probe:
    each ||Δ||²/(dσ²) in its exact χ² band, the pooled sum in its band, consecutive cosines in
    their exact bound, and the pooled standardised coordinates N(0,1) by a KS test."""
    problems = []
    T = len(diffs)
    d = diffs[0].numel()
    lo, hi = _chi2_band(d, alpha / (3 * T))
    cb = _cosine_bound(d, alpha / (3 * T))
    qs = [float(D.double().square().sum()) / (d * sigma**2) for D in diffs]
    for t, q in enumerate(qs):
        if not lo <= q <= hi:
            problems.append(f"step {t}: q={q:.4g} outside [{lo:.4g}, {hi:.4g}]")
    pooled = sum(qs) * d
    plo = stats.chi2.ppf(alpha / 6, d * T)
    phi = stats.chi2.isf(alpha / 6, d * T)
    if not plo <= pooled <= phi:
        problems.append(f"pooled {pooled:.6g} outside [{plo:.6g}, {phi:.6g}]")
    for t in range(1, T):
        a, b = diffs[t - 1].double(), diffs[t].double()
        c = float(a @ b / (a.norm() * b.norm()))
        if abs(c) > cb:
            problems.append(f"steps {t - 1},{t}: cosine {c:.4g} > {cb:.4g}")
    z = torch.cat(diffs).double().numpy() / sigma
    p = stats.kstest(z, "norm").pvalue
    if p < alpha:
        problems.append(f"KS p-value {p:.3g}")
    return problems


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().reshape(-1), b.double().reshape(-1)
    return float(a @ b / (a.norm() * b.norm()))


def sqrt(x):
    return math.sqrt(x)


def rotated_probe_problems(diffs, part, sigma, steps_per_block, *, forward=None, leak_tol=1e-5):
    """The probe for a ``partition="rotations"`` run: map each x-difference to the rotated
    coordinates (Δz = RΔx with the partition's R) and check that in phase b (steps
    b·T_b … (b+1)·T_b − 1) Δz has no component outside block b beyond float32 rounding, and
    that block b's components pass :func:`probe_problems` at std σ (the noise applied to x is
    then Rᵀ E_b ξ_b with ξ_b ~ N(0, σ² I): covariance σ² RᵀP_bR). ``forward``: R as a callable
    (default ``part.rotation.forward``; a test that patches the class passes the bound method it
    took before)."""
    forward = forward or part.rotation.forward
    problems = []
    per_block: dict[int, list] = {}
    for t, D in enumerate(diffs):
        b = t // steps_per_block
        dz = forward(D)
        active = part.assignment == b
        leak = float(dz[~active].abs().max()) if (~active).any() else 0.0
        if not leak <= leak_tol:
            problems.append(f"step {t}: component outside block {b} up to {leak:.3g}")
        per_block.setdefault(b, []).append(dz[active])
    for b, ds in per_block.items():
        problems += [f"block {b}: {p}" for p in probe_problems(ds, sigma)]
    return problems
