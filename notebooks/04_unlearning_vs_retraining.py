# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 4. Unlearning against retraining on the bundled digits data
#
# For the practitioner: does certified unlearning save work over retraining from scratch?
# A small MLP is trained on scikit-learn's digits (bundled in its wheel, nothing is
# downloaded), a random forget set is removed by every method that unlearns a trained model,
# planned by `unlearn_theory.plan` at ε ∈ {1, 4, 16}, δ = 1e-5, and run by
# `unlearn_torch.unlearn` (the noisy phase, then noiseless fine-tuning on the retain data,
# which is post-processing and keeps the certificate). Retraining from scratch on the retain
# data is the reference.
#
# Cost is counted in passes over the retain data: each noisy step of these plans is one
# full-batch gradient (one pass), each fine-tuning or retraining epoch is one pass. The
# verdicts at the end are computed from this run's numbers.

# %%
import os
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import nn

import unlearn_theory as ut
from unlearn_torch import LargeNoiseWarning, evaluate, retrain, unlearn
from verification.digits import load_digits_split, method_params

FAST = os.environ.get("UNLEARN_NOTEBOOK_MODE", "full") == "fast"
FIGURES = Path(os.environ.get("UNLEARN_FIGURES_DIR", "figures"))
FIGURES.mkdir(parents=True, exist_ok=True)
torch.set_num_threads(1)  # tiny models: threads cost more than they give

CFG = (
    dict(hidden=16, train_epochs=6, budget=4, forget=50, steps=4)
    if FAST
    else dict(hidden=64, train_epochs=30, budget=30, forget=100, steps=50)
)
EPSILONS = (1.0, 4.0, 16.0)
DELTA = 1e-5
METHODS = (
    "gradient_clipping",
    "model_clipping",
    "output_perturbation",
    "blockwise_gradient_clipping",
)
TOLERANCE = 0.01  # within this many accuracy points of the retrained model counts as reached
OPT = dict(learning_rate=0.1, momentum=0.9, batch_size=64)


def new_figure(width=6.4, height=4.0, nrows=1, ncols=1):
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, [fig.add_subplot(nrows, ncols, i + 1) for i in range(nrows * ncols)]


def save(fig, name):
    fig.tight_layout()
    fig.savefig(FIGURES / name, dpi=90)
    print("saved", FIGURES / name)


def first_reaching(accs, target):
    return next((i for i, a in enumerate(accs) if a >= target), None)


# %% [markdown]
# ## The data, the trained model and the retrained reference

# %%
X, y, train, test = load_digits_split(torch)
X = X / 16.0
Xtr, ytr, Xte, yte = X[train], y[train], X[test], y[test]
n = len(ytr)
order = torch.randperm(n, generator=torch.Generator().manual_seed(1))
forget_ids = order[: CFG["forget"]].sort().values
retain_ids = order[CFG["forget"] :].sort().values
Xr, yr = Xtr[retain_ids], ytr[retain_ids]


def factory():
    return nn.Sequential(nn.Linear(64, CFG["hidden"]), nn.ReLU(), nn.Linear(CFG["hidden"], 10))


base = retrain(
    factory, (Xtr, ytr), loss_fn=F.cross_entropy, epochs=CFG["train_epochs"], seed=0, **OPT
).model
base_acc = evaluate(base, (Xte, yte), F.cross_entropy)["accuracy"]
ref = retrain(
    factory,
    (Xr, yr),
    loss_fn=F.cross_entropy,
    epochs=CFG["budget"],
    seed=1,
    eval_data=(Xte, yte),
    **OPT,
)
ref_curve = [e["accuracy"] for e in ref.history]
target = ref_curve[-1] - TOLERANCE
ref_epochs = first_reaching(ref_curve, target) + 1
print(f"trained on all {n}: test accuracy {base_acc:.3f}")
print(
    f"retrained on {len(yr)} retain examples: {ref_curve[-1]:.3f} after {CFG['budget']} epochs, "
    f"reaches {target:.3f} after {ref_epochs} epochs"
)

# %% [markdown]
# ## Every method at every ε

# %%
rows = []
curves = {}
for method in METHODS:
    for eps in EPSILONS:
        p = ut.plan(method, epsilon=eps, delta=DELTA, **method_params(method, CFG["steps"]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LargeNoiseWarning)
            run = unlearn(
                base,
                (Xr, yr),
                p,
                loss_fn=F.cross_entropy,
                seed=1000 + len(rows),  # fixed for reproducibility; a real run leaves it None
                forget_ids=train[forget_ids].tolist(),
                retain_ids=train[retain_ids].tolist(),
                eval_data=(Xte, yte),
                eval_every=max(1, p.steps),
                fine_tune=dict(epochs=CFG["budget"], **OPT),
                progress=False,
            )
        g = run.certificate["guarantee"]
        assert g["certified"] and g["epsilon"] <= eps * (1 + 1e-9)
        acc_noisy = next(e["accuracy"] for e in run.history if e["phase"] == "after_noisy")
        ft = [acc_noisy] + [e["accuracy"] for e in run.history if e["phase"] == "fine_tune"]
        reach = first_reaching(ft, target)
        passes = None if reach is None else p.steps + reach
        curves[(method, eps)] = ft
        rows.append(
            dict(method=method, eps=eps, sigma=p.noise_std, steps=p.steps, cert=g["epsilon"],
                 acc_noisy=acc_noisy, reach=reach, passes=passes)
        )  # fmt: skip

print(
    f"{'method':<28} {'ε':>3} {'σ':>8} {'T':>3} {'cert ε':>7} {'acc noisy':>9} "
    f"{'FT epochs':>9} {'passes':>6}"
)
for r in rows:
    print(
        f"{r['method']:<28} {r['eps']:>3g} {r['sigma']:>8.3g} {r['steps']:>3d} {r['cert']:>7.3g} "
        f"{r['acc_noisy']:>9.3f} {str(r['reach'] if r['reach'] is not None else '>' + str(CFG['budget'])):>9} "
        f"{str(r['passes'] if r['passes'] is not None else '-'):>6}"
    )
print(
    f"{'retrain from scratch':<28} {'':>3} {'':>8} {'':>3} {'':>7} {'':>9} {ref_epochs:>9} {ref_epochs:>6}"
)

# %%
fig, axes = new_figure(10.0, 7.0, nrows=2, ncols=2)
for ax, method in zip(axes, METHODS):
    for eps in EPSILONS:
        ft = curves[(method, eps)]
        ax.plot(range(len(ft)), ft, marker=".", label=f"unlearn, ε={eps:g}")
    ax.plot(range(1, len(ref_curve) + 1), ref_curve, "k--", label="retrain from scratch")
    ax.axhline(target, color="grey", linewidth=0.8, linestyle=":")
    ax.set_ylim(0.0, 1.0)
    ax.set_title(method, fontsize="medium")
    ax.set_xlabel("epochs (unlearning: of fine-tuning after the noisy phase)")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize="x-small", loc="lower right")
fig.suptitle(
    ("FAST mode (small sizes) -- " if FAST else "") + "digits MLP: unlearning vs retraining"
)
save(fig, "04_accuracy_vs_epochs.png")

# %% [markdown]
# ## Where unlearning wins, and where it does not (computed from the table above)
#
# Two ways to count. **Total passes**: noisy steps (each a full-batch gradient, one pass over
# the retain data) plus fine-tuning epochs to the target, against retraining's epochs to the
# same target. **Fine-tuning epochs only**: the noisy phase counted as free (as when its cost
# is small next to an epoch, e.g. with few steps or a large retain set). Unlearning *wins*
# with fewer, *ties* with as many, and *loses* with more (or without reaching the target
# within the budget).

# %%


def verdicts(cost_key):
    out = {}
    for r in rows:
        cost = r[cost_key]
        if cost is None or cost > ref_epochs:
            out[(r["method"], r["eps"])] = "loses"
        elif cost == ref_epochs:
            out[(r["method"], r["eps"])] = "ties"
        else:
            out[(r["method"], r["eps"])] = "wins"
    return out


for cost_key, what in (("passes", "total passes"), ("reach", "fine-tuning epochs only")):
    verdict = verdicts(cost_key)
    print(f"Counting {what}:")
    for kind in ("wins", "ties", "loses"):
        cases = [f"{m} at ε={e:g}" for (m, e), v in verdict.items() if v == kind]
        print(
            f"  unlearning {kind} against retraining ({ref_epochs} epochs) for: "
            + (", ".join(cases) or "none")
        )
    for eps in EPSILONS:
        won = sum(verdict[(m, eps)] == "wins" for m in METHODS)
        print(f"  ε = {eps:g}: {won} of {len(METHODS)} methods beat retraining")
near_chance = [f"{r['method']} ε={r['eps']:g}" for r in rows if r["acc_noisy"] < 0.2]
print(
    f"Right after the noisy phase {len(near_chance)} of {len(rows)} runs are near chance "
    "(test accuracy < 0.2)."
)
# one epoch in: does fine-tuning from the unlearned model start ahead of a fresh model?
ahead = [r for r in rows if len(curves[(r["method"], r["eps"])]) > 1]
ahead = [r for r in ahead if curves[(r["method"], r["eps"])][1] > ref_curve[0]]
print(
    f"After one epoch, {len(ahead)} of {len(rows)} unlearned models are ahead of retraining's "
    f"first epoch ({ref_curve[0]:.3f})."
)
