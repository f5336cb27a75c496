"""Membership inference against real unlearning runs on scikit-learn's digits.

For each method (gradient clipping, model clipping) and target ε ∈ {1, 16}: the game of
:mod:`verification.membership` (forget candidate drawn per run from a pool; member = trained on
it then unlearned by ``unlearn_torch.unlearn``, non-member = never trained on it, same
unlearning; the "trained" leaky reference and the "retrained" comparison alongside), attacked
by the loss threshold and by online LiRA with shadow models. Reports per condition and attack:
AUC, TPR/FPR at the threshold pre-registered on separate calibration runs, the ε lower bound
(Clopper–Pearson, 95 %) and its ratio to the certified ε, and the throughput (runs/s: target
runs, each with its member and non-member models for every condition, over wall time including
shadows).

Usage: python benchmarks/bench_membership.py [--fast] [--runs 300] [--json out.json]
"""

from __future__ import annotations

import argparse
import json

from verification.membership import MembershipConfig, run_membership

METHODS = ("gradient_clipping", "model_clipping")
EPSILONS = (1.0, 16.0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast", action="store_true", help="test sizes (seconds per setting)")
    ap.add_argument("--runs", type=int, default=300, help="evaluation runs per setting")
    ap.add_argument("--calibration", type=int, default=150, help="calibration runs")
    ap.add_argument("--shadows", type=int, default=32)
    ap.add_argument("--canary", default="mislabeled", choices=("mislabeled", "natural"))
    ap.add_argument("--offline", action="store_true", help="offline LiRA (out shadows only)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="write all results to this file")
    a = ap.parse_args(argv)
    rows = []
    print(
        f"{'method':<18} {'eps':>4} {'cert':>7} {'condition':<10} {'attack':<5} {'AUC':>5} "
        f"{'TPR':>5} {'FPR':>5} {'eps_lo':>6} {'ratio':>6} {'runs/s':>6}"
    )
    for method in METHODS:
        for eps in EPSILONS:
            kw = dict(method=method, epsilon=eps, canary=a.canary, seed=a.seed)
            if a.fast:
                cfg = MembershipConfig.fast(**kw)
            else:
                kw.update(evaluation_runs=a.runs, calibration_runs=a.calibration, shadows=a.shadows)
                cfg = MembershipConfig(**kw)
            res = run_membership(cfg, online=not a.offline)
            rows.append(res)
            cert = res["certified_epsilon"]
            for cond, by_attack in res["results"].items():
                for attack, r in by_attack.items():
                    print(
                        f"{method:<18} {eps:>4g} {cert:>7.4g} {cond:<10} {attack:<5} "
                        f"{r['auc']:>5.3f} {r['tpr']:>5.3f} {r['fpr']:>5.3f} "
                        f"{r['epsilon_lower']:>6.3f} {r['ratio']:>6.3f} "
                        f"{res['runs_per_second']:>6.2f}"
                    )
            print(
                f"  ({res['seconds']:.1f} s, {res['unlearn_calls']} unlearn calls, "
                f"noise_std {res['noise_std']:.4g}, steps {res['steps']})",
                flush=True,
            )
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1, default=float)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
