"""Gaussian-toy privacy-loss samples per second (numpy threads, torch CPU, torch CUDA).

Toy: P = N(0,1) vs Q = N(mu,1); each sample draws z, forms L = mu*z - mu^2/2 and feeds one of
two streaming estimators:

- ``count``: the threshold test's count {L > t} (what the Bonferroni audit accumulates);
- ``tilted``: the exponentially tilted hockey-stick summand (1 - e^{eps-L})_+ * w with its
  sum and sum of squares (what the empirical-Bernstein delta interval needs), docs/theory.md §12.4.

numpy runs one thread per core, each with its own SFC64 generator spawned from one
SeedSequence (numpy's generators release the GIL on bulk fills). Also reports the end-to-end
``verification.runner.run_audit`` rate (chunked, sorted counts on a 64-point grid).

Usage: python benchmarks/bench_mc.py [--samples 4e8] [--threads 2] [--device cuda]
"""

from __future__ import annotations

import argparse
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

MU, EPS = 1.0, 1.0


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
            # proposal x = c + z; L = -mu x + mu^2/2 (P-side loss); summand*weight/sup in [0,1]
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


def bench_runner(n_total, threads):
    from verification import runner, toys

    toy = toys.GaussianShift(MU)
    grid = np.linspace(-2, 4, 64)
    with ThreadPoolExecutor(threads) as ex:
        t = time.perf_counter()
        runner.run_audit(
            toy, samples=n_total, delta=1e-5, grid=grid, chunk_size=1_000_000, executor=ex
        )
        return 2 * n_total / (time.perf_counter() - t)  # both worlds


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--samples", type=float, default=4e8)
    ap.add_argument("--chunk", type=float, default=2**18)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--skip-torch-cpu", action="store_true")
    a = ap.parse_args(argv)
    n, chunk = int(a.samples), int(a.chunk)
    rows = []
    for mode in ("count", "tilted"):
        rows.append(
            (
                f"numpy SFC64 float64 x{a.threads} threads",
                mode,
                "cpu",
                bench_numpy(n, chunk, a.threads, mode),
            )
        )
    rows.append(
        (
            f"verification.runner.run_audit (x{a.threads} threads, 64 thresholds)",
            "count",
            "cpu",
            bench_runner(min(n // 10, 20_000_000), a.threads),
        )
    )
    try:
        import torch

        if not a.skip_torch_cpu:
            for mode in ("count", "tilted"):
                rows.append(
                    (
                        f"torch float64 ({torch.get_num_threads()} threads)",
                        mode,
                        "cpu",
                        bench_torch(n // 4, chunk * 4, "cpu", "float64", mode),
                    )
                )
        if a.device == "cuda" and torch.cuda.is_available():
            name = torch.cuda.get_device_name()
            for dt in ("float64", "float32"):
                for mode in ("count", "tilted"):
                    rows.append(
                        (
                            f"torch {dt} {name}",
                            mode,
                            "cuda",
                            bench_torch(n * 25, 2**26, "cuda", dt, mode),
                        )
                    )
    except ImportError:
        pass
    print(f"cores: {os.cpu_count()}  samples: {n:.2e}  chunk: {chunk}  mu={MU} eps={EPS}")
    print("| backend | estimator | device | privacy-loss samples/s |\n|---|---|---|---|")
    for name, mode, dev, r in rows:
        print(f"| {name} | {mode} | {dev} | {r:.3e} |")
    return 1 if any(math.isnan(r) for *_, r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
