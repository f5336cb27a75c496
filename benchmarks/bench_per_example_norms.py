"""Per-example gradient norms: our ghost-norm pass against a plain step and Opacus ghost clipping.

Run from the repository root (add ``--device cuda`` on a machine with a GPU):

    .venv/bin/python benchmarks/bench_per_example_norms.py [--device cpu] [--reps 9] [--threads 2]

For each model, on the same batch and in the same process, with the measured variants
interleaved within every repetition (so machine noise hits all of them alike), it times

* ``plain``: forward + backward of the mean loss (parameter ``.grad`` filled), no optimiser;
* ``ours``: :func:`unlearn_torch.per_sample.per_example_grad_norms` (the (B,) norms; the
  depthwise-conv case exercises its ``vmap(grad)`` path, used for layers without a ghost form);
* ``opacus``: Opacus ``GradSampleModuleFastGradientClipping`` (``use_ghost_clipping=True``,
  ``loss_reduction="sum"``): forward + backward with its hooks + ``get_norm_sample()`` -- the
  first pass of its ghost clipping, which computes the same norms (checked equal here);
* ``ours_clip`` / ``opacus_clip``: a whole ghost-clipping step (norms, then the backward of
  the clipping-factor-weighted loss): :func:`unlearn_torch.per_sample.clipped_gradient`
  against Opacus' two passes (the ``DPLossFastGradientClipping`` recipe, written out).

It prints a markdown table of median milliseconds and the median over repetitions of the
per-repetition ratios ours/plain and ours/opacus.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from torch import nn
from torch.nn import functional as F

from unlearn_torch.per_sample import clipped_gradient, per_example_grad_norms


def _ce(out, y):
    return F.cross_entropy(out, y, reduction="none")


def _seq_ce(out, y):
    return F.cross_entropy(out.flatten(0, 1), y.flatten(), reduction="none").view(y.shape).sum(1)


class SeqModel(nn.Module):
    """A token model of Linear layers on (B, T, d) inputs (a transformer MLP block shape)."""

    def __init__(self, vocab=64, d=128, hidden=512):
        super().__init__()
        self.inp = nn.Linear(vocab, d)
        self.up = nn.Linear(d, hidden)
        self.down = nn.Linear(hidden, d)
        self.out = nn.Linear(d, vocab)

    def forward(self, x):
        h = self.inp(x)
        h = h + self.down(torch.relu(self.up(h)))
        return self.out(h)


class EmbSeq(nn.Module):
    """Token embedding + SeqModel's Linear block."""

    def __init__(self, vocab=64, d=128):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.up = nn.Linear(d, 4 * d)
        self.down = nn.Linear(4 * d, d)
        self.out = nn.Linear(d, vocab)

    def forward(self, tok):
        h = self.emb(tok)
        h = h + self.down(torch.relu(self.up(h)))
        return self.out(h)


def cases(device):
    g = torch.Generator().manual_seed(0)
    mlp = nn.Sequential(
        nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10)
    )
    X1 = torch.randn(256, 784, generator=g)
    y1 = torch.randint(0, 10, (256,), generator=g)
    seq = SeqModel()
    X2 = torch.randn(32, 32, 64, generator=g)
    y2 = torch.randint(0, 64, (32, 32), generator=g)
    cnn = nn.Sequential(
        nn.Conv2d(1, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 12 * 12, 10)
    )
    X3 = torch.randn(64, 1, 28, 28, generator=g)
    y3 = torch.randint(0, 10, (64,), generator=g)
    cnn_gn = nn.Sequential(
        nn.Conv2d(1, 16, 5),
        nn.GroupNorm(4, 16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 12 * 12, 10),
    )
    cnn_dw = nn.Sequential(
        nn.Conv2d(1, 16, 5),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1, groups=16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 12 * 12, 10),
    )
    emb = EmbSeq()
    X4 = torch.randint(0, 64, (32, 32), generator=g)
    return [
        ("MLP 784-512-512-10, B=256", mlp, _ce, X1, y1),
        ("Linear seq. model, B=32, T=32", seq, _seq_ce, X2, y2),
        ("CNN conv5x5(16)+Linear, B=64", cnn, _ce, X3, y3),
        ("CNN + GroupNorm, B=64", cnn_gn, _ce, X3, y3),
        ("Embedding + Linear seq., B=32, T=32", emb, _seq_ce, X4, y2),
        ("CNN + depthwise conv (vmap path), B=64", cnn_dw, _ce, X3, y3),
    ]


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench(name, model, loss_fn, X, y, device, reps):
    from opacus.grad_sample import GradSampleModuleFastGradientClipping

    model = model.to(device)
    X, y = X.to(device), y.to(device)
    twin = copy.deepcopy(model)  # Opacus' hooks stay off the model we time
    gsm = GradSampleModuleFastGradientClipping(
        twin, loss_reduction="sum", max_grad_norm=1.0, use_ghost_clipping=True
    )
    params = [p for p in model.parameters() if p.requires_grad]

    def plain():
        for p in params:
            p.grad = None
        loss_fn(model(X), y).mean().backward()

    def ours():
        return per_example_grad_norms(model, loss_fn, X, y)

    def opacus():
        gsm.zero_grad(set_to_none=True)
        gsm.enable_hooks()
        loss_fn(gsm(X), y).sum().backward()
        return gsm.get_norm_sample()

    clip = 1.0

    def ours_clip():
        return clipped_gradient(model, loss_fn, X, y, clip)

    def opacus_clip():
        gsm.zero_grad(set_to_none=True)
        gsm.enable_hooks()
        losses = loss_fn(gsm(X), y)
        losses.sum().backward(retain_graph=True)
        coef = (clip / (gsm.get_norm_sample() + 1e-6)).clamp(max=1.0)
        gsm.disable_hooks()
        gsm.zero_grad(set_to_none=True)
        (losses * coef.detach()).sum().backward()
        return [p.grad for p in twin.parameters()]

    # the same norms (checked, float32 rounding)
    a, b = ours(), opacus()
    rel = float((a - b).abs().max() / b.abs().max().detach())
    assert rel < 1e-4, (name, rel)
    fns = {
        "plain": plain,
        "ours": ours,
        "opacus": opacus,
        "ours_clip": ours_clip,
        "opacus_clip": opacus_clip,
    }
    for f in fns.values():  # warm-up
        f()
    times = {k: [] for k in fns}
    for _ in range(reps):
        for k, f in fns.items():  # interleaved
            _sync(device)
            t0 = time.perf_counter()
            f()
            _sync(device)
            times[k].append(time.perf_counter() - t0)
    gsm._close()
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    r = {
        "ours/plain": statistics.median(o / p for o, p in zip(times["ours"], times["plain"])),
        "ours/opacus": statistics.median(o / p for o, p in zip(times["ours"], times["opacus"])),
        "clip ours/opacus": statistics.median(
            o / p for o, p in zip(times["ours_clip"], times["opacus_clip"])
        ),
    }
    return med, r, rel


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(
        "| model | plain ms | ours ms | Opacus ms | ours/plain | ours/Opacus "
        "| clip step ours ms | clip step Opacus ms | clip ours/Opacus |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, model, loss_fn, X, y in cases(device):
        med, r, _ = bench(name, model, loss_fn, X, y, device, args.reps)
        print(
            f"| {name} | {med['plain']:.2f} | {med['ours']:.2f} | {med['opacus']:.2f} "
            f"| {r['ours/plain']:.2f} | {r['ours/opacus']:.2f} | {med['ours_clip']:.2f} "
            f"| {med['opacus_clip']:.2f} | {r['clip ours/opacus']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
