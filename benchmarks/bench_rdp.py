"""Benchmark: our Rényi accountant against dp-accounting's and Opacus's RDP accountants.

Problems (Poisson-subsampled Gaussian, add/remove):
  * DP-SGD standard case: sample_rate=0.01, noise_multiplier=1, 10^4 steps, delta=1e-5;
  * a weak-step case where the optimal order is far above 63 (Opacus's grid stops there):
    sample_rate=0.001, noise_multiplier=4, 1000 steps, delta=1e-10;
  * the other five cases of benchmarks/bench_pld.py.
Rows include dp_sgd_epsilon's own RDP route and our curve on dp-accounting's exact order set
(same orders, same improved conversion).
All three convert the RDP curve to (epsilon, delta); all are UPPER bounds. Reference: our PLD
accountant (tighter than any RDP route), printed beside them. We report epsilon, time, and the
ratio of each epsilon to ours.

Command (from the repository root):

    .venv/bin/python benchmarks/bench_rdp.py
"""

from __future__ import annotations

import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")

CASES = [
    ("DP-SGD q=0.01 z=1 T=1e4 d=1e-5", 0.01, 1.0, 10_000, 1e-5),
    ("weak q=0.001 z=4 T=1e3 d=1e-10", 0.001, 4.0, 1_000, 1e-10),
    ("q=0.001 z=0.8 T=1e5 d=1e-6", 0.001, 0.8, 100_000, 1e-6),
    ("q=0.1 z=2 T=1e3 d=1e-10", 0.1, 2.0, 1_000, 1e-10),
    ("q=0.004 z=1.1 T=2.5e4 d=1e-5", 0.004, 1.1, 25_000, 1e-5),
    ("q=0.01 z=1 T=1e6 d=1e-5", 0.01, 1.0, 1_000_000, 1e-5),
    ("q=0.01 z=1 T=100 d=1e-5", 0.01, 1.0, 100, 1e-5),
]


def timed(fn, *args, repeat=3):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - t0)
    return out, best


def ours(q, z, t, d, fractional="interpolate"):
    from unlearn_theory import conversions, renyi

    # continuous order: the curve is evaluated wherever the optimiser asks
    def curve(alphas):
        return t * np.asarray(
            renyi.subsampled_gaussian(
                np.atleast_1d(alphas), sample_rate=q, noise_multiplier=z, fractional=fractional
            )
        )

    return float(conversions.curve_epsilon(curve, delta=d, max_order=5000.0))


def ours_series(q, z, t, d):
    return ours(q, z, t, d, fractional="series")


def ours_grid(q, z, t, d):
    from unlearn_theory import renyi

    orders = 1.0 + np.geomspace(1e-2, 1023.0, 160)
    rdp = t * renyi.subsampled_gaussian(orders, sample_rate=q, noise_multiplier=z)
    return float(renyi.to_dp(orders, rdp, delta=d))


def ours_dp_sgd_route(q, z, t, d):
    from unlearn_theory import dp_sgd

    return dp_sgd._rdp_epsilon(q, z, t, d)


def ours_on_dpa_orders(q, z, t, d):
    import dp_accounting

    from unlearn_theory import renyi

    orders = np.array(dp_accounting.rdp.RdpAccountant()._orders, dtype=np.float64)
    rdp = t * np.asarray(
        renyi.subsampled_gaussian(orders, sample_rate=q, noise_multiplier=z, fractional="series")
    )
    return float(renyi.to_dp(orders, rdp, delta=d))


def dpa(q, z, t, d):
    import dp_accounting

    acc = dp_accounting.rdp.RdpAccountant()
    acc.compose(dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(z)), t)
    return acc.get_epsilon(d)


def opacus(q, z, t, d):
    from opacus.accountants import RDPAccountant

    acc = RDPAccountant()
    acc.history = [(z, q, t)]
    return acc.get_epsilon(delta=d)


def pld(q, z, t, d):
    from unlearn_theory import dp_sgd_epsilon

    return float(dp_sgd_epsilon(noise_multiplier=z, sample_rate=q, steps=t, delta=d))


def main():
    print("| case | accountant | epsilon | time (s) | epsilon / ours |")
    print("|---|---|---|---|---|")
    for name, q, z, t, d in CASES:
        args = (q, z, t, d)
        ref, t_ref = timed(ours, *args, repeat=1)
        rows = [
            ("ours RDP, continuous order (interpolated fractional)", ref, t_ref),
            ("ours RDP, continuous order (exact series)", *timed(ours_series, *args, repeat=1)),
            ("ours RDP, 160-order grid + chord", *timed(ours_grid, *args, repeat=1)),
            ("ours dp_sgd_epsilon's RDP route", *timed(ours_dp_sgd_route, *args, repeat=1)),
            ("ours on dp-accounting's 156 orders (series)", *timed(ours_on_dpa_orders, *args)),
            ("dp-accounting RdpAccountant", *timed(dpa, *args)),
            ("Opacus RDPAccountant", *timed(opacus, *args)),
            ("ours PLD (dp_sgd_epsilon, reference)", *timed(pld, *args, repeat=1)),
        ]
        for label, eps, sec in rows:
            print(f"| {name} | {label} | {eps:.6f} | {sec:.4f} | {eps / ref:.4f} |")


if __name__ == "__main__":
    main()
