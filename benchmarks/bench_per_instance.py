"""Per-instance Rényi losses for 10^5 examples x 10^3 steps (vectorised, blocks of examples).

Run from the repository root:

    .venv/bin/python benchmarks/bench_per_instance.py            # 1e5 x 1e3
    .venv/bin/python benchmarks/bench_per_instance.py --quick    # 1e4 x 1e3

Timed (single run each; the machine is shared, so the numbers are upper bounds):

* ``subsampled_gaussian_rdp`` (Poisson DP-SGD form, 14 integer orders): exact-at-the-nodes chord
  of the convex per-step function on a 2049-node grid, one bincount + one matrix product per
  block of examples;
* ``noisy_gd_rdp`` (full-batch GD form, linear in α);
* per-example ε at δ = 1e-5 for both, and per-example unlearning step counts.

Accuracy: the chord is checked against the exact per-step sum on 200 examples (relative
excess, always >= 0). Input: float32 norms (400 MB at full size). Output: a markdown table.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from unlearn_theory import per_instance as P


def _time(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n, T = (10_000, 1000) if args.quick else (100_000, 1000)
    rng = np.random.default_rng(np.random.SeedSequence(2307_00310))
    g = rng.uniform(0.0, 1.5, size=(n, T)).astype(np.float32)

    t_sg, sg = _time(
        lambda: P.subsampled_gaussian_rdp(
            g, clip_gradient=1.0, sample_rate=0.01, noise_multiplier=1.1
        )
    )
    t_sg_eps, _ = _time(lambda: sg.epsilon(1e-5))
    t_gd, gd = _time(lambda: P.noisy_gd_rdp(g, learning_rate=0.1, noise_std=1e-4, dataset_size=n))
    t_gd_eps, _ = _time(lambda: gd.epsilon(1e-5))
    t_k, k = _time(
        lambda: P.unlearning_steps(
            gd, epsilon=1.0, delta=1e-5, learning_rate=0.1, strong_convexity=1.0, smoothness=2.0
        )
    )
    sub = g[:200].astype(np.float64)
    exact = P.subsampled_gaussian_step_rdp(
        sg.orders, sensitivity_ratio=np.minimum(sub, 1.0), sample_rate=0.01, noise_multiplier=1.1
    ).sum(axis=1)
    excess = sg.rdp[:200] / exact - 1.0

    print(f"# per-instance losses, {n} examples x {T} steps (float32 input)\n")
    print("| computation | time [s] |")
    print("|---|---:|")
    print(f"| subsampled_gaussian_rdp (14 integer orders) | {t_sg:.2f} |")
    print(f"| per-example epsilon (subsampled) | {t_sg_eps:.2f} |")
    print(f"| noisy_gd_rdp (linear curves) | {t_gd:.2f} |")
    print(f"| per-example epsilon (linear, 600-order grid) | {t_gd_eps:.2f} |")
    print(f"| unlearning_steps (200 orders) | {t_k:.2f} |")
    print(
        f"\nchord excess over the exact per-step sum: min {excess.min():.1e}, max {excess.max():.1e}"
        f"\nmedian unlearning steps {np.median(k.steps):.0f}, max {k.steps.max()}"
    )
    print(
        f"\ncommand: .venv/bin/python benchmarks/bench_per_instance.py{' --quick' if args.quick else ''}"
    )


if __name__ == "__main__":
    main()
