"""Generate 50+-digit mpmath oracles for the exact Gaussian privacy profile.

Writes tests/data/gaussian_oracles.json with rows (epsilon, mu, log_delta) where the exact
δ(ε; mu) = Φ(mu/2 - ε/mu) - e^ε Φ(-mu/2 - ε/mu) is evaluated in mpmath with enough working
digits that the subtraction keeps at least 50 significant digits (the precision is raised until
the cancellation is covered). Run from the repository root:

    .venv/bin/python scripts/make_gaussian_oracles.py
"""

from __future__ import annotations

import json
import pathlib

import mpmath as mp
import numpy as np


def exact_delta(epsilon: float, mu: float) -> mp.mpf:
    """δ(ε; mu) with >= 50 correct significant digits (adaptive working precision)."""
    for dps in (70, 150, 400, 1200):
        with mp.workdps(dps):
            e = mp.mpf(epsilon)
            m = mp.mpf(mu)
            first = mp.ncdf(m / 2 - e / m)
            value = first - mp.exp(e) * mp.ncdf(-m / 2 - e / m)
            if value > 0 and mp.log10(first / value) < dps - 55:
                return +value
    raise RuntimeError(f"could not resolve delta at epsilon={epsilon}, mu={mu}")


def main() -> None:
    rng = np.random.default_rng(20261122)
    rows = []
    # log-uniform grid over the accuracy domain of issue 2, plus edges
    eps = np.concatenate([[0.0] * 40, 10 ** rng.uniform(-6, 3, 2960)])
    mus = 10 ** rng.uniform(-3, 3, eps.size)
    edge = [
        (0.0, 1e-3),
        (0.0, 1e3),
        (1e3, 1e3),
        (1e3, 30.0),
        (1.0, 1.0),
        (1e-12, 1e-3),
        (500.0, 1e3),
    ]
    pairs = list(zip(eps.tolist(), mus.tolist())) + edge
    mp.mp.dps = 70
    for e, m in pairs:
        d = exact_delta(e, m)
        with mp.workdps(70):
            ld = mp.log(d)
        if ld < mp.log(mp.mpf("1e-300")):
            domain = "below_1e-300"
        elif ld > mp.log(mp.mpf("0.5")):
            domain = "above_0.5"
        else:
            domain = "accuracy"
        rows.append({"epsilon": e, "mu": m, "log_delta": mp.nstr(ld, 30), "domain": domain})
    out = pathlib.Path(__file__).resolve().parents[1] / "tests" / "data" / "gaussian_oracles.json"
    out.write_text(
        json.dumps(
            {"generator": "scripts/make_gaussian_oracles.py", "digits": 50, "rows": rows}, indent=1
        )
    )
    print(f"wrote {len(rows)} rows to {out.relative_to(out.parents[2])}")


if __name__ == "__main__":
    main()
