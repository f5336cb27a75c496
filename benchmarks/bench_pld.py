"""Benchmark: dp_sgd_epsilon against dp-accounting's PLD accountant on six DP-SGD cases.

For each (q, z, T, δ) the script runs, in the same process and interleaved repeat by repeat
(the machine is shared, so absolute times drift; the ratio of each repeat pair is what counts):

* ours: ``dp_sgd_epsilon`` (certified upper bound, default grid);
* dp-accounting: ``PLDAccountant()`` with its defaults (value_discretization_interval=1e-4,
  pessimistic connect-the-dots), ``compose(PoissonSampledDpEvent(q, GaussianDpEvent(z)), T)``
  then ``get_epsilon(δ)``;

and reports the median times, the median of the per-repeat time ratios ours/theirs, both ε,
and prv-accountant's certified bracket [lower, upper] (eps_error=0.01·ε-scale, computed once,
not timed) as the independent reference. "never looser" means ours ≤ dp-accounting's ε.

Command (from the repository root):

    .venv/bin/python benchmarks/bench_pld.py [--repeats 5] [--no-prv]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

warnings.filterwarnings("ignore")

CASES = [
    (0.01, 1.0, 10_000, 1e-5),
    (0.001, 0.8, 100_000, 1e-6),
    (0.1, 2.0, 1_000, 1e-10),
    (0.004, 1.1, 25_000, 1e-5),
    (0.01, 1.0, 1_000_000, 1e-5),
    (0.01, 1.0, 100, 1e-5),
]


def ours(q, z, t, d):
    from unlearn_theory.dp_sgd import dp_sgd_epsilon

    return float(dp_sgd_epsilon(noise_multiplier=z, sample_rate=q, steps=t, delta=d))


def dpa_pld(q, z, t, d):
    import dp_accounting as dpa
    from dp_accounting.pld import pld_privacy_accountant

    acc = pld_privacy_accountant.PLDAccountant()
    acc.compose(dpa.PoissonSampledDpEvent(q, dpa.GaussianDpEvent(z)), t)
    return acc.get_epsilon(d)


def prv_bracket(q, z, t, d, eps_scale):
    import prv_accountant as pa

    acc = pa.PRVAccountant(
        prvs=[pa.PoissonSubsampledGaussianMechanism(noise_multiplier=z, sampling_probability=q)],
        max_self_compositions=[t],
        eps_error=max(1e-3, 1e-3 * eps_scale),
        delta_error=d * 1e-3,
    )
    lo, _, up = acc.compute_epsilon(delta=d, num_self_compositions=[t])
    return lo, up


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-prv", action="store_true")
    args = ap.parse_args()
    ours(0.01, 1.0, 10, 1e-5)  # warm imports
    dpa_pld(0.01, 1.0, 10, 1e-5)
    print(
        "| q | z | T | δ | ours s (median) | dp-acc. PLD s (median) | median ratio ours/theirs "
        "| ε ours | ε dp-accounting | ours ≤ theirs | prv-accountant [lower, upper] |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for q, z, t, d in CASES:
        mine, theirs, ratios = [], [], []
        e_ours = e_dpa = None
        for r in range(args.repeats):
            pair = [("ours", ours), ("dpa", dpa_pld)]
            if r % 2:
                pair.reverse()
            got = {}
            for name, fn in pair:
                got[name] = timed(fn, q, z, t, d)
            e_ours, t_o = got["ours"]
            e_dpa, t_d = got["dpa"]
            mine.append(t_o)
            theirs.append(t_d)
            ratios.append(t_o / t_d)
        bracket = "—"
        if not args.no_prv:
            try:
                lo, up = prv_bracket(q, z, t, d, e_dpa)
                bracket = f"[{lo:.6f}, {up:.6f}]"
            except Exception as exc:  # a peer failing is a result too
                bracket = f"failed: {type(exc).__name__}"
        print(
            f"| {q:g} | {z:g} | {t:g} | {d:g} | {statistics.median(mine):.3f} "
            f"| {statistics.median(theirs):.3f} | {statistics.median(ratios):.2f} "
            f"| {e_ours:.8f} | {e_dpa:.8f} | {'yes' if e_ours <= e_dpa else 'NO'} | {bracket} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
