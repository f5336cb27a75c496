"""Certified / exact on each method's worst case (docs/worst_case_toys.md), and the group
amplification route of dp_sgd_group against induction and dp-accounting
(docs/group_amplification.md).

Run: PYTHONPATH=. python benchmarks/bench_worst_case_toys.py [--repeats 3]
Prints markdown tables (the BENCHMARKS.md section "Worst-case toys: certified / exact").
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from scipy import stats

from unlearn_theory import certify, group_amplification
from verification import audit


def worst_case_table(deltas):
    print("| method | δ | certified ε | exact ε (worst case) | certified/exact | certified by |")
    print("|---|---|---|---|---|---|")
    for r in audit.worst_case_rows(deltas=deltas):
        print(
            f"| {r['method']} | {r['delta']:.0e} | {r['epsilon_certified']:.6g} | "
            f"{r['epsilon_exact']:.6g} | {r['ratio']:.6f} | {r['certified_by']} |"
        )
    print()
    print("| method | remaining gap's cause |")
    print("|---|---|")
    for m, cause in audit.WORST_CASE_CAUSES.items():
        print(f"| {m} | {cause} |")


def _peer(q, z, k, steps, delta, interval=1e-3):
    from dp_accounting.pld import privacy_loss_distribution as pldm

    j = np.arange(k + 1)
    w = stats.binom.pmf(j, k, q)
    pld = pldm.from_mixture_gaussian_mechanism(
        z, [float(x) for x in j], [float(x) for x in w], value_discretization_interval=interval
    )
    return pld.self_compose(steps).get_epsilon_for_delta(delta)


def group_table(repeats):
    cases = [(0.01, 1.0, 100, 10), (0.05, 1.0, 5, 3), (0.1, 2.0, 50, 4), (0.01, 0.8, 1000, 2)]
    print(
        "| q | z | T | k | induction ε | mixture ε (ours) | dp-accounting mixture PLD ε "
        "| ours / peer | time ours (s) | time peer (s) | peer/ours time |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for q, z, t, k in cases:
        r = certify("dp_sgd_group", delta=1e-5, noise_std=z, sample_rate=q, steps=t, forget_size=k)
        ours_t, peer_t, ratios = [], [], []
        ours = peer = None
        for _ in range(repeats):  # interleaved, repeat by repeat
            t0 = time.perf_counter()
            ours = float(
                group_amplification.group_mixture_epsilon(
                    sample_rate=q, noise_multiplier=z, steps=t, forget_size=k, delta=1e-5
                )
            )
            ours_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            peer = _peer(q, z, k, t, 1e-5)
            peer_t.append(time.perf_counter() - t0)
            ratios.append(peer_t[-1] / ours_t[-1])
        ind = r.details["induction_epsilon"]
        print(
            f"| {q} | {z} | {t} | {k} | {ind:.6g} | {ours:.6g} | {peer:.6g} | {ours / peer:.5f} | "
            f"{statistics.median(ours_t):.2f} | {statistics.median(peer_t):.2f} | "
            f"{statistics.median(ratios):.2f} |"
        )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    worst_case_table((1e-3, 1e-5, 1e-8))
    print()
    group_table(args.repeats)


if __name__ == "__main__":
    main()
