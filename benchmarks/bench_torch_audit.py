"""How close Monte Carlo audits of the REAL torch code path get to the certificates.

Run from the repository root (one CPU thread per process; ``--scale 0.25`` for a quick look):

    .venv/bin/python benchmarks/bench_torch_audit.py [--scale 1.0] [--device cpu] [--json out]

For every method :mod:`verification.torch_audit` drives through real torch code -- the five
methods of ``unlearn_torch``'s Interpreter, and ``dp_sgd_group`` through
``unlearn_torch.baselines.train_dp_sgd`` (Opacus) -- it runs

* one HONEST audit (fixed seed 1, the sample count below times ``--scale``): the certified
  lower bound epsilon_lower (95 %, Bonferroni over a pre-registered grid, Clopper–Pearson),
  the certified epsilon of the accountant, the exact epsilon of the toy with the same law, the
  ratio lower/certified and the measured runs per second (both worlds' runs over wall time);
* one FAULTY audit (``half_noise`` injected at the noise source: unlearn_torch's NoiseSource,
  or Opacus' noise draw), where the audit must report lower > certified.

The configurations are those of tests/verification/test_torch_audit.py: chosen so the
certificate is close to the exact value and halving the noise is decisive at this sample
count. A correct torch layer gives lower <= certified in every honest row.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from verification import audit
from verification import torch_audit as ta

_MC = dict(noise_std=1.0, learning_rate=1.0, clip_gradient=2.0, loss="repel")

#: (method, delta, samples per world at scale 1, MethodChains fields)
CASES = [
    (
        "output_perturbation",
        1e-2,
        10_000,
        dict(noise_std=3.0, steps=0),
    ),
    (
        "gradient_clipping",
        5e-2,
        4_000,
        dict(noise_std=3.0, steps=3, learning_rate=0.3, loss="saturating"),
    ),
    ("model_clipping", 1e-3, 2_000, dict(steps=6, **_MC)),
    (
        "blockwise_gradient_clipping",
        5e-2,
        2_000,
        dict(
            noise_std=2.5, steps=2, blocks=2, learning_rate=0.3, weight_decay=1.0, loss="saturating"
        ),
    ),
    (
        "langevin",
        1e-2,
        4_000,
        dict(audit.EXAMPLES["langevin"], steps=1, noise_std=0.4),
    ),
    (
        "dp_sgd_group",
        1e-2,
        1_500,
        dict(
            noise_std=2.0,
            steps=1,
            sample_rate=0.9,
            forget_size=2,
            loss="zero",
            learning_rate=1.0,
        ),
    ),
]


def run(scale: float, device: str, methods=None):
    rows = []
    for method, delta, samples, kw in CASES:
        if methods and method not in methods:
            continue
        n = max(50, int(samples * scale))
        for fault in (None, "half_noise"):
            t0 = time.perf_counter()
            r = ta.audit_torch_method(
                method, samples=n, delta=delta, seed=1, device=device, fault=fault, **kw
            )
            wall = time.perf_counter() - t0
            lo, ce = r["epsilon_lower"], r["epsilon_certified"]
            rows.append(
                {
                    "method": method,
                    "fault": fault,
                    "delta": delta,
                    "samples": n,
                    "epsilon_lower": lo,
                    "epsilon_certified": ce,
                    "epsilon_exact": r["epsilon_exact"],
                    "ratio": None if lo is None else lo / ce,
                    "consistent": r["consistent"],
                    "runs_per_second": r["runs_per_second"],
                    "wall_seconds": wall,
                    "code_path": r["code_path"],
                }
            )
            print(_line(rows[-1]), flush=True)
    return rows


def _f(x, fmt=".3f"):
    return "n/a" if x is None else format(x, fmt)


HEADER = (
    "| method | fault | δ | samples/world | ε lower (95 %) | ε certified | ε exact | "
    "lower/certified | lower ≤ certified | runs/s |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


def _line(r):
    return (
        f"| {r['method']} | {r['fault'] or 'honest'} | {r['delta']:g} | {r['samples']} | "
        f"{_f(r['epsilon_lower'])} | {_f(r['epsilon_certified'])} | {_f(r['epsilon_exact'])} | "
        f"{_f(r['ratio'], '.2f')} | {'yes' if r['consistent'] else '**no**'} | "
        f"{r['runs_per_second']:.0f} |"
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies every sample count")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--methods", nargs="*", default=None)
    ap.add_argument("--json", default=None, help="write the rows here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(HEADER)
    rows = run(args.scale, args.device, args.methods)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
