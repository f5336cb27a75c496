# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 6. Langevin unlearning and per-instance privacy
#
# 1. **One noisy pass against retraining** where the loss is strongly convex: L2-regularised
#    multinomial logistic regression on the digits, unlearned by the `langevin` method
#    (noisy projected gradient descent; Chien, Wang, Chen & Li 2024, arXiv 2403.17105),
#    as in `unlearn demo` part 4. Training and retraining run the same noisy process.
# 2. **Per-instance privacy of real forget examples along a real run**: the training run's
#    gradient differences g_t(x) = ‖∇ℓ_x(θ_t) − ∇f_{D∖x}(θ_t)‖ of each forget example are
#    recorded with `unlearn_torch.NormRecorder`, and `noisy_gd_privacy` turns them into
#    per-example ε and unlearning step counts (`unlearn_theory.per_instance`). These are
#    per-instance (pDP) *estimates* along the realised trajectory, not a certificate.
# 3. **Ridge regression**: exact leave-one-out shifts (Sherman–Morrison, `unlearn_theory.ridge`)
#    and the per-instance Gaussian output noise they allow against the worst case.
#
# Constants of the logistic problem are derived from the data (docs: `unlearn demo` part 4):
# each image is centred on its own mean pixel and scaled to unit norm, the per-example loss
# f_i(W) = CE(W a_i, y_i) + (m/2)‖W‖² is m-strongly convex, L-smooth with L = 1/2 + m, and on
# the ball ‖W‖ ≤ R its gradient norm is ≤ M = √2 + m·R.

# %%
import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import nn

import unlearn_theory as ut
from unlearn_theory import per_instance, ridge
from unlearn_torch import LargeNoiseWarning, NormRecorder, evaluate, unlearn
from verification.digits import load_digits_split

FAST = os.environ.get("UNLEARN_NOTEBOOK_MODE", "full") == "fast"
FIGURES = Path(os.environ.get("UNLEARN_FIGURES_DIR", "figures"))
FIGURES.mkdir(parents=True, exist_ok=True)
torch.set_num_threads(1)

CFG = (
    dict(train_steps=30, unlearn_steps=5, forget=20)
    if FAST
    else dict(train_steps=100, unlearn_steps=20, forget=100)
)
EPSILONS = (1.0, 4.0, 16.0)
DELTA = 1e-5


def new_figure(width=6.4, height=4.0, ncols=1):
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]


def save(fig, name):
    fig.tight_layout()
    fig.savefig(FIGURES / name, dpi=90)
    print("saved", FIGURES / name)


# %% [markdown]
# ## The strongly convex problem

# %%
M_REG = 0.2  # L2 coefficient = strong convexity m
CLASSES = 10
RADIUS = 2.0
SMOOTH = 0.5 + M_REG  # ‖a‖ = 1
LIPSCHITZ = math.sqrt(2.0) + M_REG * RADIUS
LR = 1.0 / SMOOTH

X, y, train, test = load_digits_split(torch)
A = X - X.mean(dim=1, keepdim=True)  # per-example map: nothing about other examples leaks in
A = A / A.norm(dim=1, keepdim=True)
Atr, ytr, Ate, yte = A[train], y[train], A[test], y[test]
n = len(ytr)
order = torch.randperm(n, generator=torch.Generator().manual_seed(1))
forget_ids = order[: CFG["forget"]].sort().values
retain_ids = order[CFG["forget"] :].sort().values
Ar, yr = Atr[retain_ids], ytr[retain_ids]


class RegularisedLinear(nn.Module):
    """Logits plus one column carrying the L2 term, so that the per-example loss the torch
    layer differentiates is the regularised one (the column is never the argmax)."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(CLASSES, A.shape[1]))

    def forward(self, a):
        z = a @ self.weight.T
        reg = 0.5 * M_REG * self.weight.square().sum()
        return torch.cat([z, z.min(dim=1, keepdim=True).values - 1.0 - reg], dim=1)


def loss_fn(outputs, targets):
    z, col = outputs[:, :CLASSES], outputs[:, CLASSES]
    return F.cross_entropy(z, targets) + (z.min(dim=1).values - 1.0 - col).mean()


def noisy_gd(data, steps, noise_std, seed, recorder=None):
    """Noisy projected full-batch GD from W = 0 (the process the bound is about); with a
    recorder, the forget examples' gradient differences at every step's parameters."""
    model = RegularisedLinear()
    Xd, yd = data
    gen = torch.Generator().manual_seed(seed)
    W = model.weight
    for _ in range(steps):
        (g,) = torch.autograd.grad(loss_fn(model(Xd), yd), W)
        if recorder is not None:
            recorder.record_differences({"weight": g}, len(yd), model=model)
        with torch.no_grad():
            W.sub_(LR * g)
            W.add_(noise_std * torch.randn(W.shape, generator=gen))
            W.mul_(min(1.0, RADIUS / float(W.norm())))
    return model


def accuracy(model):
    return evaluate(model, (Ate, yte), loss_fn)["accuracy"]


# %% [markdown]
# ## 1. One noisy pass against retraining

# %%
T, N = CFG["train_steps"], CFG["unlearn_steps"]
rows = []
for k, eps in enumerate(EPSILONS):
    p = ut.plan(
        "langevin", epsilon=eps, delta=DELTA, learning_rate=LR, strong_convexity=M_REG,
        smoothness=SMOOTH, lipschitz=LIPSCHITZ, dataset_size=n, radius=RADIUS,
        forget_size=CFG["forget"], training_epochs=T, steps=N,
    )  # fmt: skip
    trained = noisy_gd((Atr, ytr), T, p.noise_std, seed=100 + k)
    retrained = noisy_gd((Ar, yr), T, p.noise_std, seed=200 + k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LargeNoiseWarning)
        run = unlearn(
            trained, (Ar, yr), p, loss_fn=loss_fn, seed=300 + k,
            forget_ids=train[forget_ids].tolist(), retain_ids=train[retain_ids].tolist(),
            progress=False,
        )  # fmt: skip
    g = run.certificate["guarantee"]
    assert g["certified"] and g["epsilon"] <= eps * (1 + 1e-9)
    rows.append((eps, p.noise_std, g["epsilon"], accuracy(trained), accuracy(run.model),
                 accuracy(retrained), p))  # fmt: skip
print(f"training: {T} noisy GD steps on all {n}; unlearning: N = {N} noisy steps on the retain set")
print(f"{'ε':>4} {'σ':>8} {'cert ε':>7} {'trained':>8} {'unlearned':>9} {'retrained':>9}")
for eps, s, ce, a_t, a_u, a_r, _ in rows:
    print(f"{eps:>4g} {s:>8.4g} {ce:>7.3g} {a_t:>8.3f} {a_u:>9.3f} {a_r:>9.3f}")
gap = max(abs(r[4] - r[5]) for r in rows)
print(
    f"largest |unlearned − retrained| accuracy gap: {gap:.3f} -- one noisy phase of {N} steps "
    f"(no fine-tuning) against {T} steps of retraining"
)

fig, (ax1, ax2, ax3) = new_figure(13.0, 3.8, ncols=3)
xs = np.arange(len(EPSILONS))
for off, idx, label in (
    (-0.25, 3, "trained"),
    (0.0, 4, "unlearned (N steps)"),
    (0.25, 5, "retrained"),
):
    ax1.bar(xs + off, [r[idx] for r in rows], width=0.25, label=label)
ax1.set_xticks(xs, [f"ε={e:g}" for e in EPSILONS])
ax1.set_ylim(0.0, 1.0)
ax1.set_ylabel("test accuracy")
ax1.set_title("Langevin: logistic regression on digits")
ax1.legend(fontsize="x-small", loc="lower right")

# %% [markdown]
# ## 2. Per-instance privacy of the real forget examples along the training run
#
# The recorder evaluates the gradient differences at every training step's parameters; the
# data-independent comparison takes every difference at its bound 2M.

# %%
sigma = rows[1][1]  # the ε = 4 plan's noise
recorder = NormRecorder(RegularisedLinear(), loss_fn, Atr[forget_ids], ytr[forget_ids])
noisy_gd((Atr, ytr), T, sigma, seed=101, recorder=recorder)
privacy = recorder.noisy_gd_privacy(
    learning_rate=LR, noise_std=sigma, dataset_size=n, delta=DELTA,
    unlearning=dict(epsilon=4.0, learning_rate=LR, strong_convexity=M_REG, smoothness=SMOOTH),
)  # fmt: skip
worst = per_instance.noisy_gd_rdp(
    np.full((1, T), 2.0 * LIPSCHITZ), learning_rate=LR, noise_std=sigma, dataset_size=n
)
worst_eps = float(worst.epsilon(DELTA)[0])
print(f"kind: {privacy.kind} ({privacy.caveat})")
print(
    f"per-instance ε of the {CFG['forget']} forget examples after training (σ = {sigma:.3g}): "
    f"median {np.median(privacy.epsilon):.3g}, max {np.max(privacy.epsilon):.3g}; "
    f"data-independent (every difference at 2M): {worst_eps:.3g}"
)
# per-example noisy unlearning steps on D∖{x} (same σ) to reach a target, for targets above
# and below the examples' current per-instance ε
for target in (4.0, 1.0, 0.1):
    counts = recorder.noisy_gd_privacy(
        learning_rate=LR, noise_std=sigma, dataset_size=n, delta=DELTA,
        unlearning=dict(
            epsilon=target, learning_rate=LR, strong_convexity=M_REG, smoothness=SMOOTH
        ),
    ).steps  # fmt: skip
    print(
        f"per-example unlearning steps to ε = {target:g}: median {int(np.median(counts))}, "
        f"max {int(np.max(counts))} (-1: none certifies)"
    )
# the same accountant on the first t steps: each forget example's ε along the run
diffs = recorder.differences
checkpoints = np.unique(np.linspace(1, T, min(T, 12)).astype(int))
along = np.stack(
    [
        per_instance.noisy_gd_rdp(
            diffs[:, :t], learning_rate=LR, noise_std=sigma, dataset_size=n
        ).epsilon(DELTA)
        for t in checkpoints
    ],
    axis=1,
)
worst_along = [
    float(
        per_instance.noisy_gd_rdp(
            np.full((1, t), 2.0 * LIPSCHITZ), learning_rate=LR, noise_std=sigma, dataset_size=n
        ).epsilon(DELTA)[0]
    )
    for t in checkpoints
]
assert np.all(along <= np.asarray(worst_along)[None, :] * (1 + 1e-9))
for row in along:
    ax2.plot(checkpoints, row, color="C0", alpha=0.3, linewidth=0.8)
ax2.plot(checkpoints, worst_along, "k--", label="data-independent (differences at 2M)")
ax2.plot([], [], color="C0", label="one forget example each (estimate)")
ax2.set_xlabel("training step t")
ax2.set_ylabel("per-instance ε at δ = 1e-5")
ax2.set_title(f"{CFG['forget']} forget examples along the run, σ = {sigma:.3g}")
ax2.legend(fontsize="x-small")

# %% [markdown]
# ## 3. Ridge regression: per-instance output noise against the worst case
#
# θ̂ − θ̂_{−i} is exact (Sherman–Morrison); releasing θ + N(0, s_i² I) with s_i = Δ_i/μ(ε, δ) is
# (ε, δ)-indistinguishable for deleting example i (pDP), against the worst case max_i Δ_i.

# %%
Xnp = A[train].numpy().astype(np.float64)
ynp = (ytr.numpy() == 3).astype(np.float64) * 2 - 1  # one-vs-rest target in {-1, +1}
loo = ridge.leave_one_out(Xnp, ynp, regularization=10.0)
cal = ridge.calibrate_noise(loo.shift_norms, epsilon=1.0, delta=DELTA)
savings = np.sort(cal.savings_factor)
print(
    f"ridge (λ = 10, n = {len(ynp)}): worst-case noise {cal.worst_case_noise_std:.3g}; "
    f"per-instance noise is at least x{np.median(savings):.1f} smaller for half the examples, "
    f"x{np.quantile(savings, 0.9):.1f} for the easiest 10 %"
)
ax3.semilogy(np.linspace(0, 100, len(savings)), savings)
ax3.set_xlabel("examples (percentile)")
ax3.set_ylabel("worst-case noise / per-instance noise")
ax3.set_title("ridge, ε = 1, δ = 1e-5")
save(fig, "06_langevin_per_instance.png")
