# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 7. Audit: certified against exact, Monte Carlo and membership-inference lower bounds
#
# For the auditor. For each configuration the numbers must be ordered
#
#     lower bound (95 % confidence) ≤ exact ≤ certified
#
# where the lower bound comes from a Monte Carlo audit or from a membership-inference attack,
# "exact" is the worst-case toy's exact ε (where one exists) and "certified" is the
# accountant's upper bound. (The Monte Carlo audits and the membership games below run
# different configurations; compare each lower bound with its own certificate.)
#
# * **Monte Carlo** (`verification.torch_audit.audit_torch_method`): every draw is one run of
#   the real torch code path (`unlearn_torch`'s interpreter, keyed noise and guard; Opacus for
#   `dp_sgd_group`) on a tiny model started from the worst-case pair; a pre-registered
#   threshold test with Clopper–Pearson bounds gives a lower bound on ε.
# * **Membership inference** (`verification.membership.run_membership`): the loss-threshold
#   attack and LiRA against real `unlearn_torch.unlearn` runs of the digits MLP, with the
#   threshold pre-registered on calibration runs. Conditions: "trained" (the leaky reference,
#   nothing bounds it), "unlearned" (the pair the certificate bounds), "retrained" (ε = 0).
#
# A lower bound above the certified ε would be a bug; a lower bound far below it says the
# audit (or the attack) is weak, not that the certificate is loose.

# %%
import os
import warnings
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from verification.membership import MembershipConfig, run_membership
from verification.torch_audit import audit_torch_method

FAST = os.environ.get("UNLEARN_NOTEBOOK_MODE", "full") == "fast"
FIGURES = Path(os.environ.get("UNLEARN_FIGURES_DIR", "figures"))
FIGURES.mkdir(parents=True, exist_ok=True)
warnings.filterwarnings("ignore", category=UserWarning)  # large-noise warnings on tiny models

SAMPLES = 60 if FAST else 5000
OPACUS_SAMPLES = 1000  # Opacus runs are ~10x slower per draw (full mode only)
DELTA = 1e-2  # audits resolve ε at a moderate δ; the certificate is recomputed at this δ


def new_figure(width=6.4, height=4.0, ncols=1):
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]


def save(fig, name):
    fig.tight_layout()
    fig.savefig(FIGURES / name, dpi=90)
    print("saved", FIGURES / name)


# %% [markdown]
# ## 1. Monte Carlo audits of the real torch code path, every method
#
# Each configuration has a toy with an exact law (the saturating field for the
# gradient-clipping family, a bounded repelling field for model clipping, the quadratic retain
# field for Langevin, zero-gradient retain records for DP-SGD with one step). The ratio
# certified/exact (printed at the end) is the bound's slack only where that toy is the
# method's worst case within its assumptions (docs/worst_case_toys.md,
# `verification.audit.worst_case`); elsewhere it includes the toy's own slack.

# %%
CASES = {
    "output_perturbation": dict(noise_std=3.0),
    "gradient_clipping": dict(noise_std=2.0, steps=3, loss="saturating"),
    "model_clipping": dict(
        noise_std=1.0, steps=3, learning_rate=1.0, clip_gradient=2.0, loss="repel"
    ),
    "blockwise_gradient_clipping": dict(noise_std=1.0, steps=4, blocks=2, loss="saturating"),
    "langevin": dict(
        noise_std=0.4, steps=1, learning_rate=0.1, strong_convexity=1.0, smoothness=1.0,
        lipschitz=2.0, dataset_size=10, radius=2.0,
    ),
    "dp_sgd_group": dict(noise_std=2.0, sample_rate=0.9, forget_size=2, learning_rate=1.0),
}  # fmt: skip
if FAST:
    # Opacus runs (~10x slower per draw) and the PLD certificate at q = 0.9 take tens of
    # seconds: the DP-SGD baseline is audited in full mode only
    del CASES["dp_sgd_group"]
    print("FAST mode: dp_sgd_group is audited in full mode only")
audits = {}
for method, params in CASES.items():
    n = OPACUS_SAMPLES if method == "dp_sgd_group" else SAMPLES
    r = audit_torch_method(method, samples=n, delta=DELTA, seed=1, **params)
    audits[method] = r
    lower = r["epsilon_lower"] or 0.0
    exact = r["epsilon_exact"]
    assert r["consistent"], r  # the lower bound never exceeds the certificate
    if exact is not None:
        assert exact <= r["epsilon_certified"] * (1 + 1e-6), r
    print(
        f"{method:<28} runs/world={n:>5}  MC lower={lower:.3f}  exact="
        + ("  n/a" if exact is None else f"{exact:.3f}")
        + f"  certified={r['epsilon_certified']:.3f}  ({r['code_path']})"
    )

# %% [markdown]
# ## 2. Membership inference against real unlearning runs
#
# The digits MLP trained with and without a canary (a mislabelled pool example), unlearned by
# the method's plan at ε = 4 (δ = 1e-5: the certificate's own δ).

# %%
MI_METHODS = (
    ("gradient_clipping",)
    if FAST
    else (
        "gradient_clipping",
        "model_clipping",
        "output_perturbation",
        "blockwise_gradient_clipping",
    )
)
if FAST:
    MI_SIZES = dict(
        base=60, pool=10, hidden=8, train_steps=40, train_lr=0.05, finetune_steps=10,
        shadows=4, calibration_runs=6, evaluation_runs=12, conditions=("trained", "unlearned"),
    )  # fmt: skip
else:
    MI_SIZES = dict(
        base=100, pool=20, hidden=16, train_steps=150, train_lr=0.02, finetune_steps=40,
        shadows=8, calibration_runs=40, evaluation_runs=100,
    )  # fmt: skip
membership = {}
for method in MI_METHODS:
    res = run_membership(MembershipConfig(method=method, epsilon=4.0, seed=3, **MI_SIZES))
    membership[method] = res
    cert = res["certified_epsilon"]
    for cond, attacks in res["results"].items():
        for attack, v in attacks.items():
            if cond != "trained":
                assert v["epsilon_lower"] <= cert * (1 + 1e-9), (method, cond, attack, v)
            print(
                f"{method:<28} {cond:<10} {attack:<5} AUC={v['auc']:.3f} "
                f"ε lower={v['epsilon_lower']:.3f} (certified {cert:.3g})"
            )

# %%
fig, (ax1, ax2) = new_figure(12.0, 4.2, ncols=2)
names = list(audits)
xs = np.arange(len(names))
cert = [audits[m]["epsilon_certified"] for m in names]
exact = [audits[m]["epsilon_exact"] for m in names]
lower = [audits[m]["epsilon_lower"] or 0.0 for m in names]
ax1.bar(xs - 0.27, cert, width=0.27, label="certified (upper)")
ax1.bar(xs, [e if e is not None else 0.0 for e in exact], width=0.27, label="exact toy")
ax1.bar(xs + 0.27, lower, width=0.27, label="Monte Carlo lower (95 %)")
ax1.set_xticks(xs, [m.replace("_", "\n", 1) for m in names], fontsize="x-small")
ax1.set_ylabel(f"ε at δ = {DELTA:g}")
ax1.set_title(("FAST mode -- " if FAST else "") + f"real torch runs, {SAMPLES} per world")
ax1.legend(fontsize="x-small")

conditions = ("trained", "unlearned", "retrained")
mi_names = list(membership)
width = 0.8 / len(conditions)
for j, cond in enumerate(conditions):
    best = [
        max(v["epsilon_lower"] for v in membership[m]["results"][cond].values())
        if cond in membership[m]["results"]
        else np.nan
        for m in mi_names
    ]
    ax2.bar(
        np.arange(len(mi_names)) + (j - 1) * width,
        best,
        width=width,
        color={"trained": "C3", "unlearned": "C0", "retrained": "C2"}[cond],
        label=f"{cond} (best of loss, LiRA)",
    )
ax2.axhline(
    membership[MI_METHODS[0]]["certified_epsilon"],
    color="k",
    linestyle="--",
    label="certified ε of the unlearning runs",
)
ax2.set_xticks(
    np.arange(len(mi_names)), [m.replace("_", "\n", 1) for m in mi_names], fontsize="x-small"
)
ax2.set_ylabel("membership ε lower bound (95 %)")
ax2.set_title("membership inference on digits, ε = 4, δ = 1e-5")
ax2.legend(fontsize="x-small")
save(fig, "07_audit.png")

# %% [markdown]
# ## What the numbers say

# %%
for m in names:
    r = audits[m]
    lo, ex, ce = r["epsilon_lower"] or 0.0, r["epsilon_exact"], r["epsilon_certified"]
    gap = "" if ex is None else f"; certified/exact = {ce / ex:.2f}"
    print(f"{m}: the audit reaches {lo / ce:.0%} of the certified ε{gap}")
for method, res in membership.items():
    tr = max(v["epsilon_lower"] for v in res["results"]["trained"].values())
    un = max(v["epsilon_lower"] for v in res["results"]["unlearned"].values())
    print(
        f"{method}: the best attack proves ε ≥ {tr:.2f} against the trained model and "
        f"ε ≥ {un:.2f} after unlearning (certified {res['certified_epsilon']:.3g})"
    )
