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

With ``--calibration`` it times the noise calibration instead, at ε ∈ {1, 3, 8} with
q = 0.01, T = 1000, δ = 1e-5 (a typical DP-SGD run: 10 epochs at batch fraction 1 %): ours
``dp_sgd_noise_multiplier`` (rtol=1e-4) against ``dp_accounting.calibrate_dp_mechanism``
(PLDAccountant, ``SelfComposedDpEvent(PoissonSampledDpEvent(q, GaussianDpEvent(z)), T)``,
tol=1e-4 in z), interleaved; it also checks ours is feasible and that z − 1e-4 is not.

Commands (from the repository root):

    .venv/bin/python benchmarks/bench_pld.py [--repeats 5] [--no-prv]
    .venv/bin/python benchmarks/bench_pld.py --calibration [--repeats 3]
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


CAL_CASES = [(1.0, 0.01, 1000, 1e-5), (3.0, 0.01, 1000, 1e-5), (8.0, 0.01, 1000, 1e-5)]


def ours_cal(eps, q, t, d):
    from unlearn_theory.dp_sgd import dp_sgd_noise_multiplier

    return dp_sgd_noise_multiplier(epsilon=eps, delta=d, sample_rate=q, steps=t)


def dpa_cal(eps, q, t, d):
    import dp_accounting as dpa
    from dp_accounting import mechanism_calibration as mc
    from dp_accounting.pld import pld_privacy_accountant

    def event(z):
        return dpa.SelfComposedDpEvent(dpa.PoissonSampledDpEvent(q, dpa.GaussianDpEvent(z)), t)

    return mc.calibrate_dp_mechanism(pld_privacy_accountant.PLDAccountant, event, eps, d, tol=1e-4)


def calibration(repeats):
    from unlearn_theory.dp_sgd import dp_sgd_epsilon

    print(
        "| ε | q | T | δ | ours s (median) | dp-acc. s (median) | median ratio | z ours "
        "| z dp-accounting | ours feasible, z − 1e-4 not |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for eps, q, t, d in CAL_CASES:
        mine, theirs, ratios = [], [], []
        z_o = z_d = None
        for r in range(repeats):
            pair = [("ours", ours_cal), ("dpa", dpa_cal)]
            if r % 2:
                pair.reverse()
            got = {name: timed(fn, eps, q, t, d) for name, fn in pair}
            z_o, t_o = got["ours"]
            z_d, t_d = got["dpa"]
            mine.append(t_o)
            theirs.append(t_d)
            ratios.append(t_o / t_d)

        def e(z, q=q, t=t, d=d):
            return float(dp_sgd_epsilon(noise_multiplier=z, sample_rate=q, steps=t, delta=d))

        tight = e(z_o) <= eps < e(z_o - 1e-4)
        print(
            f"| {eps:g} | {q:g} | {t:g} | {d:g} | {statistics.median(mine):.2f} "
            f"| {statistics.median(theirs):.2f} | {statistics.median(ratios):.2f} "
            f"| {z_o:.6f} | {z_d:.6f} | {'yes' if tight else 'NO'} |",
            flush=True,
        )


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-prv", action="store_true")
    ap.add_argument("--calibration", action="store_true")
    args = ap.parse_args()
    if args.calibration:
        calibration(args.repeats)
        return
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
