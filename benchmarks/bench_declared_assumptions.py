"""Noise at equal (ε, δ) with and without each declared assumption (docs/declared_assumptions.md).

Run: PYTHONPATH=. python benchmarks/bench_declared_assumptions.py
For each setting: the least noise_std whose certificate is <= ε (bisection on log noise_std to a
relative 1e-5, every returned value re-certified), assumption-free and with the declaration,
plus the wall time of one certify() call of the declared route.
"""

from __future__ import annotations

import math
import time

from unlearn_theory import certify

EPS, DELTA = 1.0, 1e-5


def least_noise(method, params, lo=1e-3, hi=1e3, rtol=1e-5):
    def ok(s):
        return certify(method, delta=DELTA, noise_std=s, **params).epsilon <= EPS

    while not ok(hi):
        hi *= 2
    while ok(lo):
        lo /= 2
    while hi / lo - 1 > rtol:
        mid = math.sqrt(lo * hi)
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


def timed(method, params, noise):
    t = time.perf_counter()
    certify(method, delta=DELTA, noise_std=noise, **params)
    return time.perf_counter() - t


def row(name, method, free, declared):
    a = least_noise(method, free)
    b = least_noise(method, declared)
    ms = 1e3 * timed(method, declared, b)
    print(f"| {name} | {a:.4f} | {b:.4f} | {a / b:.2f}× | {ms:.0f} ms |", flush=True)


def main():
    print(f"(ε, δ) = ({EPS}, {DELTA})")
    print("| setting | noise, assumption-free | noise, declared | ratio | certify() |")
    print("|---|---|---|---|---|")
    gc = [
        (
            "CIFAR-10 config C0=1, C1=100, γ=1e-3, λ=500, T=10",
            dict(
                clip_initial=1.0,
                clip_gradient=100.0,
                learning_rate=1e-3,
                weight_decay=500.0,
                steps=10,
            ),
            100.0,
        ),
        (
            "MNIST-like C0=20, C1=10, γ=1e-2, λ=50, T=15",
            dict(
                clip_initial=20.0,
                clip_gradient=10.0,
                learning_rate=1e-2,
                weight_decay=50.0,
                steps=15,
            ),
            10.0,
        ),
        (
            "λ=0: C0=1, C1=10, γ=1e-3, T=100",
            dict(
                clip_initial=1.0,
                clip_gradient=10.0,
                learning_rate=1e-3,
                weight_decay=0.0,
                steps=100,
            ),
            100.0,
        ),
        (
            "zero-field toy C0=C1=1, γ=0.1, λ=1, T=20",
            dict(
                clip_initial=1.0, clip_gradient=1.0, learning_rate=0.1, weight_decay=1.0, steps=20
            ),
            0.0,
        ),
    ]
    for name, p, smooth in gc:
        row(
            f"gradient clipping, {name}; declared convex L={smooth:g}-smooth, inert clip",
            "gradient_clipping",
            p,
            dict(p, assume_convex_smooth=smooth),
        )
    mc = [
        (
            "C0=C2=10, γ=0.01, T=50",
            dict(clip_initial=10.0, clip_model=10.0, steps=50, learning_rate=0.01),
            1.0,
        ),
        (
            "C0=C2=1, γ=0.01, T=20",
            dict(clip_initial=1.0, clip_model=1.0, steps=20, learning_rate=0.01),
            0.5,
        ),
        (
            "C0=C2=1, γ=0.1, T=32",
            dict(clip_initial=1.0, clip_model=1.0, steps=32, learning_rate=0.1),
            1.0,
        ),
    ]
    for name, p, c1 in mc:
        row(
            f"model clipping, {name}; gradient clip C1={c1:g}",
            "model_clipping",
            p,
            dict(p, clip_gradient=c1),
        )
    for frac in (0.5, 0.1, 0.01):
        p = dict(clip_initial=1.0)
        row(
            f"output perturbation C0=1; declared E‖θ_U−θ_R‖ ≤ {2 * frac:g} (= {frac:g}·2C0)",
            "output_perturbation",
            p,
            dict(p, expected_sensitivity=2 * frac),
        )


if __name__ == "__main__":
    main()
