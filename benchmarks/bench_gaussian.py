"""Exact Gaussian mechanism: speed and accuracy of unlearn against dp-accounting (and autodp).

Run from the repository root (one process; all libraries timed side by side):

    .venv/bin/python benchmarks/bench_gaussian.py            # full run (~1 min)
    .venv/bin/python benchmarks/bench_gaussian.py --quick    # fewer repeats

Queries (noise multiplier sigma = 1/mu, sensitivity 1):

* epsilon(delta; sigma): ours ``gaussian.epsilon(delta, mu=1/sigma)``; dp-accounting
  ``get_epsilon_gaussian(sigma, delta)``; autodp ``dp_bank.get_eps_ana_gaussian(sigma, delta)``.
* sigma(epsilon, delta): ours ``gaussian.noise_std(epsilon=, delta=, sensitivity=1)``;
  dp-accounting ``get_sigma_gaussian(epsilon, delta)``; autodp
  ``privacy_calibrator.ana_gaussian_mech(epsilon, delta)["sigma"]``.
* delta(eps) on 10^6 points: ours vectorised ``gaussian.delta``; the peers have scalar
  evaluators only (dp-accounting ``_get_log_delta``, autodp ``get_logdelta_ana_gaussian``), timed
  in a Python loop on a subsample and reported per point.

Timings are the minimum over repeats (the machine is shared). Relative errors are against a
50-digit mpmath oracle (``exact_delta`` of scripts/make_gaussian_oracles.py; inverses solved in
mpmath). "feasible" says whether the returned value satisfies delta(returned) <= target under the
oracle (a certified calibration must). Output: markdown tables on stdout.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import pathlib
import time
import warnings
from functools import partial

import mpmath as mp
import numpy as np

from unlearn_theory import gaussian

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _load_exact_delta():
    path = ROOT / "scripts" / "make_gaussian_oracles.py"
    spec = importlib.util.spec_from_file_location("make_gaussian_oracles", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module.exact_delta


exact_delta = _load_exact_delta()


def _peers():
    peers = {}
    from dp_accounting import gaussian_mechanism as dpa

    peers["dp-accounting"] = {
        "epsilon": lambda sigma, d: dpa.get_epsilon_gaussian(sigma, d),
        "sigma": lambda e, d: dpa.get_sigma_gaussian(e, d),
        "log_delta": lambda sigma, e: dpa._get_log_delta(sigma, e),
    }
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from autodp import dp_bank, privacy_calibrator
    except Exception:  # noqa: BLE001 - optional peer
        return peers
    peers["autodp"] = {
        "epsilon": lambda sigma, d: dp_bank.get_eps_ana_gaussian(sigma, d),
        "sigma": lambda e, d: privacy_calibrator.ana_gaussian_mech(e, d)["sigma"],
        "log_delta": lambda sigma, e: dp_bank.get_logdelta_ana_gaussian(sigma, e),
    }
    return peers


def _time_call(fn, *, repeats: int, min_time: float = 0.02) -> float:
    """Minimum over ``repeats`` of the mean seconds per call (calls batched to >= min_time)."""
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        el = time.perf_counter() - t0
        if el >= min_time or n >= 1 << 14:
            break
        n *= 2
    best = el / n
    for _ in range(repeats - 1):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def _safe(fn):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = float(fn())
        return out if math.isfinite(out) else None
    except Exception:  # noqa: BLE001 - a peer failing is a result
        return None


def _log_exact(e, m):
    return mp.log(exact_delta(e, m))


def _true_epsilon(sigma: float, d: float, guess: float) -> mp.mpf:
    m = mp.mpf(1) / mp.mpf(sigma)
    with mp.workdps(60):
        lt = mp.log(mp.mpf(d))
        if _log_exact(mp.mpf(0), m) <= lt:
            return mp.mpf(0)
        return mp.findroot(lambda e: _log_exact(e, m) - lt, mp.mpf(guess), tol=mp.mpf(10) ** -45)


def _true_sigma(e: float, d: float, guess: float) -> mp.mpf:
    with mp.workdps(60):
        lt = mp.log(mp.mpf(d))
        s = mp.findroot(
            lambda s: _log_exact(mp.mpf(e), 1 / s) - lt, mp.mpf(guess), tol=mp.mpf(10) ** -45
        )
        return s


def _rel(x, ref) -> str:
    if x is None:
        return "fails"
    if ref == 0:
        return "0" if x == 0 else f"abs {x:.1e}"
    with mp.workdps(40):
        return f"{float(abs(mp.mpf(x) / ref - 1)):.1e}"


def _ratio(t, t_ours):
    return "—" if t is None else f"{t / t_ours:.2g}×"


def _feasible(x, delta_of, d) -> str:
    """'yes' if delta(x) <= d under the 50-digit oracle, 'NO' if not, '—' if no value."""
    if x is None:
        return "—"
    return "yes" if delta_of(x) <= d else "NO"


def _fmt_us(t):
    return "—" if t is None else f"{t * 1e6:.1f}"


def _header(first, names, title):
    head = f"| {first} | delta | ours µs | " + " | ".join(f"{n} µs" for n in names)
    head += " | " + " | ".join(f"{n}/ours" for n in names)
    head += " | ours rel.err | " + " | ".join(f"{n} rel.err" for n in names)
    head += " | feasible: ours, " + ", ".join(names) + " |"
    print(f"\n### {title}\n")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))


def _compare_row(label, d, ours, t_ours, true, peer_fns, is_feasible, ratios, repeats):
    """Time each peer on the same query, then print one table row (values, ratios, errors)."""
    names = list(peer_fns)
    vals, times = {}, {}
    for n in names:
        vals[n] = _safe(peer_fns[n])
        times[n] = _time_call(peer_fns[n], repeats=repeats) if vals[n] is not None else None
        if times[n] is not None:
            ratios[n].append(times[n] / t_ours)
    feas = [is_feasible(x) for x in [ours] + [vals[n] for n in names]]
    row = f"| {label} | {d:.0e} | {_fmt_us(t_ours)} | "
    row += " | ".join(_fmt_us(times[n]) for n in names) + " | "
    row += " | ".join(_ratio(times[n], t_ours) for n in names)
    row += f" | {_rel(ours, true)} | " + " | ".join(_rel(vals[n], true) for n in names)
    row += f" | {', '.join(feas)} |"
    print(row)


def bench_epsilon(peers, repeats):
    sigmas = [0.5, 1.0, 10.0, 100.0, 1000.0]
    deltas = [1e-5, 1e-12, 1e-100, 1e-300]
    names = list(peers)
    _header("sigma", names, "epsilon(delta; sigma)")
    ratios = {n: [] for n in names}
    for sigma in sigmas:
        for d in deltas:
            m = 1.0 / sigma
            ours = gaussian.epsilon(d, mu=m)
            t_ours = _time_call(partial(gaussian.epsilon, d, mu=m), repeats=repeats)
            true = _true_epsilon(sigma, d, max(ours, 1e-300))
            _compare_row(
                f"{sigma:g}",
                d,
                ours,
                t_ours,
                true,
                {n: partial(peers[n]["epsilon"], sigma, d) for n in names},
                lambda x, s=sigma, d=d: _feasible(x, lambda y: exact_delta(y, 1 / mp.mpf(s)), d),
                ratios,
                repeats,
            )
    return ratios


def bench_sigma(peers, repeats):
    epsilons = [0.1, 1.0, 10.0]
    deltas = [1e-5, 1e-12, 1e-100, 1e-300]
    names = list(peers)
    _header("epsilon", names, "sigma(epsilon, delta)  (ours: noise_std with sensitivity 1)")
    ratios = {n: [] for n in names}
    for e in epsilons:
        for d in deltas:
            ours = gaussian.noise_std(epsilon=e, delta=d, sensitivity=1.0)
            t_ours = _time_call(
                partial(gaussian.noise_std, epsilon=e, delta=d, sensitivity=1.0), repeats=repeats
            )
            true = _true_sigma(e, d, ours)
            _compare_row(
                f"{e:g}",
                d,
                ours,
                t_ours,
                true,
                {n: partial(peers[n]["sigma"], e, d) for n in names},
                lambda x, e=e, d=d: _feasible(x, lambda y: exact_delta(e, 1 / mp.mpf(y)), d),
                ratios,
                repeats,
            )
    return ratios


def bench_vectorised(peers, repeats, n_points):
    rng = np.random.default_rng(np.random.SeedSequence(20261122))
    sets = {
        "mixed: eps, mu log-uniform [1e-3, 1e3]": (
            10 ** rng.uniform(-3, 3, n_points),
            10 ** rng.uniform(-3, 3, n_points),
        ),
        "weak: eps in [1e-3, 1e3], mu in [1e-3, 0.1]": (
            10 ** rng.uniform(-3, 3, n_points),
            10 ** rng.uniform(-3, -1, n_points),
        ),
    }
    print(f"\n### delta(eps) on {n_points:,} points (seconds for all points)\n")
    names = list(peers)
    head = "| points | ours s | " + " | ".join(f"{n} s (loop, extrapolated)" for n in names)
    head += " | " + " | ".join(f"{n}/ours" for n in names) + " |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for label, (eps, mus) in sets.items():
        t_ours = math.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            gaussian.delta(eps, mu=mus)
            t_ours = min(t_ours, time.perf_counter() - t0)
        sub = 20_000
        row = f"| {label} | {t_ours:.3f} | "
        peer_t = {}
        for n in names:
            f = peers[n]["log_delta"]
            es, ss = eps[:sub].tolist(), (1.0 / mus[:sub]).tolist()
            best = math.inf
            for _ in range(max(1, repeats // 2)):
                t0 = time.perf_counter()
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")
                    for e, s in zip(es, ss):
                        f(s, e)
                best = min(best, time.perf_counter() - t0)
            peer_t[n] = best * n_points / sub
        row += " | ".join(f"{peer_t[n]:.1f}" for n in names) + " | "
        row += " | ".join(f"{peer_t[n] / t_ours:.0f}×" for n in names) + " |"
        print(row)

    # accuracy on the committed 50-digit oracle rows (accuracy domain: delta in [1e-300, 0.5])
    rows = json.loads((ROOT / "tests" / "data" / "gaussian_oracles.json").read_text())["rows"]
    rows = [r for r in rows if r["domain"] == "accuracy"]
    eps = np.array([r["epsilon"] for r in rows])
    mus = np.array([r["mu"] for r in rows])
    with mp.workdps(40):
        ref = [mp.mpf(r["log_delta"]) for r in rows]
    ours = gaussian.log_delta(eps, mu=mus)
    print(f"\n### log delta accuracy on {len(rows)} oracle rows (max relative error of delta)\n")
    print("| library | max rel.err | median rel.err | failures (non-finite / exception) |")
    print("|---|---|---|---|")

    def summary(vals):
        errs, fails = [], 0
        for v, r in zip(vals, ref):
            if v is None or not math.isfinite(v):
                fails += 1
                continue
            with mp.workdps(40):
                errs.append(abs(float(mp.expm1(mp.mpf(v) - r))))
        return max(errs), float(np.median(errs)), fails

    mx, md, fl = summary([float(x) for x in ours])
    print(f"| unlearn | {mx:.1e} | {md:.1e} | {fl} |")
    for n in names:
        f = peers[n]["log_delta"]
        vals = [_safe(lambda f=f, e=e, m=m: f(1.0 / m, e)) for e, m in zip(eps, mus)]
        mx, md, fl = summary(vals)
        print(f"| {n} | {mx:.1e} | {md:.1e} | {fl} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--points", type=int, default=1_000_000)
    args = ap.parse_args()
    repeats = 3 if args.quick else 7
    peers = _peers()
    print(f"peers: {', '.join(peers)}; timings: min over {repeats} repeats")
    r_eps = bench_epsilon(peers, repeats)
    r_sig = bench_sigma(peers, repeats)
    bench_vectorised(peers, repeats, args.points)
    print("\n### summary: peer time / our time per scalar call (geometric mean over rows)\n")
    print("| peer | epsilon(delta) | sigma(epsilon, delta) |")
    print("|---|---|---|")
    for n in peers:

        def gm(xs):
            return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else float("nan")

        print(f"| {n} | {gm(r_eps[n]):.2g}× | {gm(r_sig[n]):.2g}× |")


if __name__ == "__main__":
    main()
