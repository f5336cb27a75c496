"""Ridge leave-one-out for all n examples from one factorisation vs n separate solves.

Run from the repository root:

    .venv/bin/python benchmarks/bench_ridge.py            # n = 10^4, d = 100
    .venv/bin/python benchmarks/bench_ridge.py --quick    # n = 2000, d = 50

Timed (minimum over repeats; the machine is shared):

* ``ridge.leave_one_out``: θ̂_{−i}, leverages h_i and shift norms for every i from one
  eigendecomposition of A = XᵀX + λI (O(nd² + d³)).
* the naive route: n rank-d refits, each forming A_{−i} = A − x_i x_iᵀ and solving
  (O(n·d³)); timed on a subsample of examples and extrapolated to n (reported as such).
* per-example exact divergences (``loo_renyi`` at 8 orders, ``loo_hockey_stick``) and the
  per-instance noise calibration (``calibrate_noise``).

Accuracy: max relative error of θ̂_{−i} against the naive refits on the subsample.
Output: a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from unlearn_theory import ridge


def _best(fn, repeats):
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--d", type=int, default=None)
    ap.add_argument("--sample", type=int, default=200, help="naive refits actually run")
    args = ap.parse_args()
    n = args.n or (2000 if args.quick else 10_000)
    d = args.d or (50 if args.quick else 100)
    reps = 2 if args.quick else 3
    rng = np.random.default_rng(np.random.SeedSequence(2602_15602))
    X = rng.normal(size=(n, d))
    y = X @ rng.normal(size=d) + rng.normal(size=n)
    lam = 1.0

    t_loo, loo = _best(lambda: ridge.leave_one_out(X, y, regularization=lam), reps)

    A = X.T @ X + lam * np.eye(d)
    b = X.T @ y
    idx = rng.choice(n, size=min(args.sample, n), replace=False)

    def naive():
        out = np.empty((idx.size, d))
        for k, i in enumerate(idx):
            xi = X[i]
            out[k] = np.linalg.solve(A - np.outer(xi, xi), b - xi * y[i])
        return out

    t_naive_s, ref = _best(naive, 1)
    t_naive = t_naive_s * n / idx.size
    err = np.max(
        np.abs(loo.theta_hat[None, :] - loo.shifts[idx] - ref) / np.maximum(np.abs(ref), 1e-12)
    )
    orders = np.array([1.5, 2, 3, 4, 8, 16, 32, 64])
    t_ren, _ = _best(lambda: ridge.loo_renyi(orders, loo, temperature=1.0), reps)
    t_hs, _ = _best(lambda: ridge.loo_hockey_stick(1.0, loo, temperature=1.0), 1)
    t_cal, cal = _best(
        lambda: ridge.calibrate_noise(loo.shift_norms, epsilon=1.0, delta=1e-5), reps
    )

    print(f"# ridge leave-one-out, n={n}, d={d}, lambda={lam}\n")
    print("| quantity | time [s] | note |")
    print("|---|---:|---|")
    print(
        f"| leave_one_out (all n: theta_-i, h_i, shift norms) | {t_loo:.3f} | one eigendecomposition |"
    )
    print(
        f"| naive: n separate solves | {t_naive:.2f} | {idx.size} run, extrapolated x{n / idx.size:.0f} |"
    )
    print(f"| speed-up | {t_naive / t_loo:.0f}x | |")
    print(f"| max rel. error of theta_-i vs refits | {err:.1e} | on the {idx.size} refits |")
    print(f"| loo_renyi, 8 orders, both directions | {t_ren:.3f} | exact, rank-one reduction |")
    print(f"| loo_hockey_stick(eps=1), both directions | {t_hs:.3f} | exact 1-D closed form |")
    print(f"| calibrate_noise (eps=1, delta=1e-5) | {t_cal:.4f} | re-checked per example |")
    sav = cal.savings_factor
    print(
        f"\nper-instance noise: worst-case noise_std {cal.worst_case_noise_std:.4g}; savings factor "
        f"median {np.median(sav):.3g}, 10th pct {np.percentile(sav, 10):.3g}, "
        f"90th pct {np.percentile(sav, 90):.3g}"
    )
    print(
        f"\ncommand: .venv/bin/python benchmarks/bench_ridge.py{' --quick' if args.quick else ''}"
    )


if __name__ == "__main__":
    main()
