"""Monte Carlo threshold audit: samples per second against the plain-numpy and RNG floors.

Toy: P = N(0,1) vs Q = N(mu,1), mu = 1, a 64-point threshold grid. Three contenders, timed in
ONE process, alternately within each repeat (the machine is shared: the table reports median
rates and the median of the per-repeat ratios, which is what counts):

- ``run_audit``: ``verification.runner.run_audit`` end to end (GaussianShift sampler, its
  privacy-loss score, exact counts on the grid, Clopper-Pearson bounds), chunks on a thread
  pool;
- plain-numpy floor: each thread fills a reused buffer with ``standard_normal(out=...)``
  (PCG64) and counts it on the grid with ``np.searchsorted(grid, z)`` + ``np.bincount``
  (blocks of 2**16), nothing else;
- RNG floor: each thread only fills the reused buffer with normals;
- the previous counting: ``run_audit`` with each chunk sorted and the grid searched in it (the
  method before the bucket table; same counts).

Every contender draws both worlds (2 x samples normals per repeat); rates count both.
``--extras`` adds the older rows: numpy SFC64 counting of one threshold and the tilted
delta summand, and torch on CPU (and on CUDA with ``--device cuda``, when present).

Usage: python benchmarks/bench_mc.py [--samples 2e7] [--threads 2] [--repeats 5] [--extras]
"""

from __future__ import annotations

import argparse
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

MU, EPS = 1.0, 1.0
BLOCK = 1 << 16


def _grid():
    return np.linspace(-2.0, 4.0, 64)


def _floor_worker(seed_seq, n, count):
    rng = np.random.Generator(np.random.PCG64(seed_seq))
    z = np.empty(BLOCK)
    grid = _grid()
    hist = np.zeros(grid.size + 1, dtype=np.int64)
    for lo in range(0, n, BLOCK):
        w = min(BLOCK, n - lo)
        rng.standard_normal(out=z[:w])
        if count:
            hist += np.bincount(np.searchsorted(grid, z[:w]), minlength=grid.size + 1)
    return hist


def bench_floor(n_total, threads, count, ex):
    """Normals per second (both worlds: 2 * n_total draws) of the plain-numpy/RNG floor."""
    per = 2 * n_total // threads
    seeds = np.random.SeedSequence(1).spawn(threads)
    t = time.perf_counter()
    list(ex.map(lambda s: _floor_worker(s, per, count), seeds))
    return per * threads / (time.perf_counter() - t)


def _sorted_counts(self, s):
    """The previous counting (before the bucket table): sort the chunk, search the grid."""
    return np.searchsorted(np.sort(s), self.grid, side="right")


def bench_runner(n_total, ex, chunk, previous=False):
    from verification import runner, toys

    toy = toys.GaussianShift(MU)
    fast = runner._GridCounter.at_or_below
    if previous:
        runner._GridCounter.at_or_below = _sorted_counts
    try:
        t = time.perf_counter()
        runner.run_audit(
            toy, samples=n_total, delta=1e-5, grid=_grid(), chunk_size=chunk, executor=ex
        )
        return 2 * n_total / (time.perf_counter() - t)  # both worlds
    finally:
        runner._GridCounter.at_or_below = fast


# -- older rows (--extras) ---------------------------------------------------------------------


def _numpy_worker(seed_seq, n, chunk, mode):
    rng = np.random.Generator(np.random.SFC64(seed_seq))
    z = np.empty(chunk)
    y = np.empty(chunk)
    thr = (EPS + MU * MU / 2) / MU  # L > eps  <=>  z > thr
    c = min(MU / 2 - EPS / MU, 0.0)
    acc = [0.0, 0.0]
    for _ in range(n // chunk):
        rng.standard_normal(out=z)
        if mode == "count":
            acc[0] += np.count_nonzero(z > thr)
        else:
            np.add(z, c, out=z)
            np.multiply(z, -MU, out=y)
            np.add(y, MU * MU / 2 - EPS, out=y)  # L - eps
            np.minimum(y, 0.0, out=y)
            np.negative(y, out=y)
            np.expm1(y, out=y)
            np.negative(y, out=y)  # (1 - e^{eps - L})_+
            np.multiply(z, -c, out=z)
            np.add(z, c * c, out=z)
            np.exp(z, out=z)  # weight / sup
            np.multiply(y, z, out=y)
            acc[0] += float(y.sum())
            acc[1] += float(np.dot(y, y))
    return acc


def bench_numpy(n_total, chunk, threads, mode):
    seeds = np.random.SeedSequence(0).spawn(threads)
    per = n_total // threads
    with ThreadPoolExecutor(threads) as ex:
        _numpy_worker(seeds[0], chunk, chunk, mode)  # warm-up
        t = time.perf_counter()
        list(ex.map(lambda s: _numpy_worker(s, per, chunk, mode), seeds))
        dt = time.perf_counter() - t
    return (per // chunk) * chunk * threads / dt


def bench_torch(n_total, chunk, device, dtype_name, mode):
    import torch

    dtype = getattr(torch, dtype_name)
    g = torch.Generator(device=device)
    g.manual_seed(0)
    z = torch.empty(chunk, device=device, dtype=dtype)
    thr = (EPS + MU * MU / 2) / MU
    c = min(MU / 2 - EPS / MU, 0.0)
    acc = torch.zeros((), device=device, dtype=torch.float64)
    z.normal_(generator=g)
    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(n_total // chunk):
        z.normal_(generator=g)
        if mode == "count":
            acc += (z > thr).sum()
        else:
            x = z + c
            y = -torch.expm1(torch.clamp(EPS - (-MU * x + MU * MU / 2), max=0.0))
            y = y * torch.exp(-c * x + c * c)
            acc += y.sum(dtype=torch.float64)
    if device == "cuda":
        torch.cuda.synchronize()
    return (n_total // chunk) * chunk / (time.perf_counter() - t)


def _extras(a):
    rows = []
    n = int(a.samples) * 4
    for mode in ("count", "tilted"):
        rows.append(
            (f"numpy SFC64 x{a.threads} threads", mode, bench_numpy(n, 2**18, a.threads, mode))
        )
    try:
        import torch
    except ImportError:
        return rows
    for mode in ("count", "tilted"):
        rows.append(
            (
                f"torch float64 CPU ({torch.get_num_threads()} threads)",
                mode,
                bench_torch(n // 4, 2**20, "cpu", "float64", mode),
            )
        )
    if a.device == "cuda" and torch.cuda.is_available():
        name = torch.cuda.get_device_name()
        for dt in ("float64", "float32"):
            for mode in ("count", "tilted"):
                rows.append(
                    (f"torch {dt} {name}", mode, bench_torch(n * 25, 2**26, "cuda", dt, mode))
                )
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", type=float, default=2e7, help="draws per world per repeat")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--chunk", type=int, default=1_000_000, help="run_audit chunk_size")
    ap.add_argument("--extras", action="store_true")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    a = ap.parse_args(argv)
    n = int(a.samples)
    rates = {"ours": [], "plain": [], "rng": [], "sorted": []}
    with ThreadPoolExecutor(a.threads) as ex:
        bench_floor(BLOCK, a.threads, True, ex)  # warm-up
        bench_runner(a.chunk, ex, a.chunk)
        for _ in range(a.repeats):
            rates["ours"].append(bench_runner(n, ex, a.chunk))
            rates["plain"].append(bench_floor(n, a.threads, True, ex))
            rates["rng"].append(bench_floor(n, a.threads, False, ex))
            rates["sorted"].append(bench_runner(n, ex, a.chunk, previous=True))
    r = {k: np.array(v) for k, v in rates.items()}
    vs_plain = r["ours"] / r["plain"]
    vs_rng = r["ours"] / r["rng"]
    vs_sorted = r["ours"] / r["sorted"]
    print(
        f"threads {a.threads}, {n:.1e} draws per world x {a.repeats} repeats, 64 thresholds, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print("| contender | median samples/s | median ratio ours / contender |\n|---|---:|---:|")
    print(f"| run_audit (end to end) | {np.median(r['ours']):.3e} | 1 |")
    print(
        f"| plain numpy: draw + searchsorted + bincount | {np.median(r['plain']):.3e} "
        f"| {np.median(vs_plain):.2f} ({vs_plain.min():.2f}-{vs_plain.max():.2f}) |"
    )
    print(
        f"| RNG floor: draw only | {np.median(r['rng']):.3e} "
        f"| {np.median(vs_rng):.2f} ({vs_rng.min():.2f}-{vs_rng.max():.2f}) |"
    )
    print(
        f"| run_audit, previous counting (sort each chunk) | {np.median(r['sorted']):.3e} "
        f"| {np.median(vs_sorted):.2f} ({vs_sorted.min():.2f}-{vs_sorted.max():.2f}) |"
    )
    if a.extras:
        print("\n| backend | estimator | samples/s |\n|---|---|---:|")
        for name, mode, rate in _extras(a):
            print(f"| {name} | {mode} | {rate:.3e} |")
    return 1 if any(math.isnan(x) for v in rates.values() for x in v) else 0


if __name__ == "__main__":
    raise SystemExit(main())
