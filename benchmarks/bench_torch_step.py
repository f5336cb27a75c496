"""Cost of one noisy unlearning step against one plain SGD step (the torch layer).

Run from the repository root (add ``--device cuda`` on a machine with a GPU):

    .venv/bin/python benchmarks/bench_torch_step.py [--device cpu] [--reps 40] [--threads 1]
        [--clock wall|cpu] [--section all|steps|blocks]

For a small MLP and a CNN of more than 500k parameters it times, on the same batch,

* a plain SGD step: forward, backward, ``torch.optim.SGD.step`` (weight decay in the optimiser);
* one gradient-clipping step of :mod:`unlearn_torch` (gradient with respect to the flat
  vector, one clip norm, decay, step, one keyed N(0, σ²) draw of d values, the guard's
  statistics), as ``unlearn`` runs it (``Interpreter.run_step``; the guard checked and the
  records flushed and the finite check run every 16 steps, as ``unlearn`` does on the CPU);
* one model-clipping step (the same plus one projection norm);
* one normal draw of d values and one pass over d (``x.add_``), the floor of any noisy step.

``--section blocks`` (or ``all``, the default) times block-wise gradient clipping (4 blocks of 4
steps, cycled: step t runs as step t mod 16, so every sample of 16 steps visits every block
once) with the default coordinate partition ``"rows"`` against ``partition="rotations"``
(blocks of z = Rx; two transforms of d per step), beside the plain SGD step and the two
transforms alone (Rv and Rᵀv on the model's layout).

Each sample is the mean over 16 consecutive steps (so the check every 16th step is paid in
every sample, not hidden by the median); the jobs are interleaved sample by sample. ``--reps``
samples for the MLP, ``--cnn-reps`` for the CNN. It prints a markdown table of median
milliseconds per step and the ratios noisy/plain and (noisy − plain)/(draw + pass). Timings
with a GPU synchronise once per sample.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn
from torch.nn import functional as F

from unlearn_theory.methods import (
    BlockwiseGradientClippingSpec,
    GradientClippingSpec,
    ModelClippingSpec,
)
from unlearn_torch.blocks import make_partition
from unlearn_torch.data import IndexedData
from unlearn_torch.interpreter import FlatParameters, Interpreter
from unlearn_torch.noise import NoiseGuard, NoiseSource
from unlearn_torch.run import _finite_check


def mlp():
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))


def cnn():
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 8 * 8, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


CLOCK = time.perf_counter


def _time_block(fn, steps, device):
    """Milliseconds per call, averaged over ``steps`` consecutive calls."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = CLOCK()
    for _ in range(steps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (CLOCK() - t) / steps * 1e3


def _interpreter(spec, factory, X, y, device, partition=None):
    torch.manual_seed(0)
    m = factory().to(device)
    flat = FlatParameters(m, [n for n, _ in m.named_parameters()], device)
    rule = spec.update_rule()
    part = None
    if partition is not None:
        part = make_partition(flat.layout, rule.blocks, partition, seed=3)
    it = Interpreter(
        flat=flat,
        rule=rule,
        data=IndexedData("retain", (X, y), device),
        loss_fn=F.cross_entropy,
        noise=NoiseSource(1),
        guard=NoiseGuard(10**6),
        partition=part,
    )
    if part is not None:
        it.run_prologue()
    return it


def bench_blocks(name, factory, X, y, device, reps):
    """Block-wise gradient clipping: partition "rows" against "rotations" (ms per step)."""
    torch.manual_seed(0)
    model = factory().to(device)
    d = sum(p.numel() for p in model.parameters())
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, weight_decay=1e-2)
    spec = BlockwiseGradientClippingSpec(
        clip_initial=1e3,
        clip_gradient=1.0,
        learning_rate=1e-3,
        weight_decay=1e-2,
        blocks=4,
        steps_per_block=4,
        noise_std=1e-4,
    )
    interps = {k: _interpreter(spec, factory, X, y, device, k) for k in ("rows", "rotations")}
    step = [0]
    checked = {}

    def plain():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(X), y).backward()
        opt.step()

    def noisy(it):
        it.run_step(step[0] % 16)  # 4 blocks x 4 steps, cycled
        step[0] += 1
        if step[0] % 16 == 0:
            it.guard.check()
            checked[it] = _finite_check(it, step[0], checked.get(it, 0))

    rot = interps["rotations"].rotation
    v = torch.randn(d, device=device)

    def transforms():  # the two maps a rotated step adds: x = Rᵀz and R·g
        rot.inverse(rot.forward(v))

    jobs = {"plain": plain, "transforms": transforms}
    for k, it in interps.items():
        jobs[k] = lambda it=it: noisy(it)
    times = {k: [] for k in jobs}
    for fn in jobs.values():
        fn()
    for _ in range(reps):
        for k, fn in jobs.items():
            times[k].append(_time_block(fn, 16, device))
    med = {k: statistics.median(v) for k, v in times.items()}
    ratios = [r / c for r, c in zip(times["rotations"], times["rows"])]  # sample by sample
    print(
        f"| {name} | {d:,} | {med['plain']:.2f} | {med['rows']:.2f} | {med['rotations']:.2f} | "
        f"{statistics.median(ratios):.2f} | {med['rotations'] - med['rows']:.2f} | "
        f"{med['transforms']:.2f} |"
    )


def bench(name, factory, X, y, device, reps):
    torch.manual_seed(0)
    model = factory().to(device)
    d = sum(p.numel() for p in model.parameters())
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, weight_decay=1e-2)
    specs = {
        "gradient clipping": GradientClippingSpec(
            clip_initial=1e3,
            clip_gradient=1.0,
            learning_rate=1e-3,
            weight_decay=1e-2,
            steps=10**6,
            noise_std=1e-4,
        ),
        "model clipping": ModelClippingSpec(
            clip_initial=1e3,
            clip_model=1e3,
            noise_std=1e-4,
            steps=10**6,
            learning_rate=1e-3,
            weight_decay=1e-2,
        ),
    }
    interps = {k: _interpreter(s, factory, X, y, device) for k, s in specs.items()}
    x = torch.zeros(d, device=device)
    buf = torch.empty(d, device=device)
    gen = torch.Generator(device=device)
    step = [0]
    checked = {}

    def plain():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(X), y).backward()
        opt.step()

    def noisy(it):
        it.run_step(step[0])
        step[0] += 1
        if step[0] % 16 == 0:  # as unlearn() does on the CPU, every 16 steps: the guard
            it.guard.check()  # check, then the records flushed and the finite check
            checked[it] = _finite_check(it, step[0], checked.get(it, 0))

    def floor():
        gen.manual_seed(5)
        buf.normal_(0.0, 1.0, generator=gen)
        x.add_(buf)

    jobs = {"plain": plain, "floor": floor}
    for k, it in interps.items():
        jobs[k] = lambda it=it: noisy(it)
    times = {k: [] for k in jobs}
    for fn in jobs.values():
        fn()  # warm up
    for _ in range(reps):  # interleaved, so that machine load hits every job alike
        for k, fn in jobs.items():
            # 16 steps per sample: the guard check and record flush every 16th step (one host
            # sync) are amortised into the sample, not hidden by the median
            times[k].append(_time_block(fn, 16, device))
    med = {k: statistics.median(v) for k, v in times.items()}
    for label in specs:
        t, t_plain, t_floor = med[label], med["plain"], med["floor"]
        print(
            f"| {name} | {d:,} | {label} | {t_plain:.2f} | {t:.2f} | {t / t_plain:.2f} | "
            f"{t_floor:.2f} | {(t - t_plain) / t_floor:.2f} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--reps", type=int, default=40, help="samples of 16 steps (MLP)")
    ap.add_argument("--cnn-reps", type=int, default=10, help="samples of 16 steps (CNN)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    ap.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="cpu: this thread's CPU time (needs --device cpu --threads 1); on a shared machine "
        "it leaves out the time the process waits for a core",
    )
    ap.add_argument(
        "--section",
        choices=["all", "steps", "blocks"],
        default="all",
        help="steps: noisy vs plain step; blocks: block-wise rows vs rotations",
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.clock == "cpu":
        if device.type != "cpu" or torch.get_num_threads() != 1:
            ap.error("--clock cpu needs --device cpu and --threads 1")
        global CLOCK
        CLOCK = time.thread_time
    g = torch.Generator().manual_seed(0)
    X = torch.randn(64, 64, generator=g).to(device)
    y = torch.randint(0, 10, (64,), generator=g).to(device)
    Xc = torch.randn(64, 3, 32, 32, generator=g).to(device)
    if args.section in ("all", "steps"):
        print(
            "| model | d | method | plain SGD ms | noisy step ms | noisy/plain | draw+pass ms | "
            "(noisy−plain)/(draw+pass) |"
        )
        print("|---|---:|---|---:|---:|---:|---:|---:|")
        bench("MLP 64-128-10", mlp, X, y, device, args.reps)
        bench("CNN (CIFAR-sized)", cnn, Xc, y, device, args.cnn_reps)
    if args.section in ("all", "blocks"):
        print(
            "\n| model | d | plain SGD ms | block-wise rows ms | block-wise rotations ms | "
            "rotations/rows (median of ratios) | rotations − rows ms | Rv + Rᵀv ms |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        bench_blocks("MLP 64-128-10", mlp, X, y, device, args.reps)
        bench_blocks("CNN (CIFAR-sized)", cnn, Xc, y, device, args.cnn_reps)
    print(
        f"\ntorch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, "
        f"{args.reps} (MLP) / {args.cnn_reps} (CNN) samples of 16 steps, {args.clock} clock"
    )


if __name__ == "__main__":
    main()
