# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 3. Model clipping: the δ-recursion against per-step contraction and total variation
#
# Model clipping projects every iterate onto the ball of radius C2 before adding N(0, σ² I),
# so one step's kernel has its means in a set of diameter D = 2·C2 and contracts the
# hockey-stick divergence. Three valid upper bounds on δ_t at a fixed ε (docs/theory.md §5):
#
# * **refined recursion** (what the planner certifies): δ_{t+1} = δ_t·θ_{ε̃_t}(2C2/σ),
#   ε̃_t = log(1 + (e^ε − 1)/δ_t) — the effective ε grows as δ_t shrinks;
# * **per-step contraction** (the paper's statement): δ_t = δ_0·θ_ε(2C2/σ)^t;
# * **total variation** (Dobrushin): δ_t = δ_0·θ_0(2C2/σ)^t.
#
# `contraction.model_clipping_log_deltas`, `plain_log_deltas`, `total_variation_log_deltas`
# work in log space (δ_t falls below 1e-300 within a few steps). The worst-case toy
# (`verification.toys.ModelClippingWorstCase`, docs/worst_case_toys.md: a two-state chain in
# mpmath whose retain-set field sends the threshold set {p1 > e^ε p0} to +C2 and its complement
# to −C2) gives the exact δ_t of the method's worst case: the bound may never be below it.

# %%
import os
from pathlib import Path

import mpmath as mp
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from unlearn_theory import certify, contraction, plan
from unlearn_theory.errors import InvalidParameterError
from verification.toys import ModelClippingWorstCase

FAST = os.environ.get("UNLEARN_NOTEBOOK_MODE", "full") == "fast"
FIGURES = Path(os.environ.get("UNLEARN_FIGURES_DIR", "figures"))
FIGURES.mkdir(parents=True, exist_ok=True)
LOG10 = np.log(10.0)


def new_figure(width=6.4, height=4.0, ncols=1):
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]


def save(fig, name):
    fig.tight_layout()
    fig.savefig(FIGURES / name, dpi=90)
    print("saved", FIGURES / name)


EPS = 1.0
C0 = 1.0
STEPS = 12 if FAST else 40


def curves(clip_model, noise_std, steps=STEPS):
    kw = dict(epsilon=EPS, clip_initial=C0, clip_model=clip_model, noise_std=noise_std, steps=steps)
    return (
        contraction.model_clipping_log_deltas(**kw) / LOG10,
        contraction.plain_log_deltas(**kw) / LOG10,
        contraction.total_variation_log_deltas(**kw) / LOG10,
    )


# %% [markdown]
# ## 1. log10 δ_t against steps, for several radii (σ = 1) and noise levels (C2 = 1)

# %%
fig, (ax1, ax2) = new_figure(10.0, 4.0, ncols=2)
t = np.arange(STEPS + 1)
colours = ["C0", "C1", "C2"]
for colour, c2 in zip(colours, [0.5, 1.0, 2.0]):
    ref, plain, tv = curves(c2, 1.0)
    ax1.plot(t, ref, "-", color=colour, label=f"C2={c2:g}: refined")
    ax1.plot(t, plain, "--", color=colour, label=f"C2={c2:g}: per-step")
    ax1.plot(t, tv, ":", color=colour, label=f"C2={c2:g}: TV")
for colour, s in zip(colours, [0.5, 1.0, 2.0]):
    ref, plain, tv = curves(1.0, s)
    ax2.plot(t, ref, "-", color=colour, label=f"σ={s:g}: refined")
    ax2.plot(t, plain, "--", color=colour, label=f"σ={s:g}: per-step")
    ax2.plot(t, tv, ":", color=colour, label=f"σ={s:g}: TV")
for ax, title in ((ax1, "σ = 1, ε = 1"), (ax2, "C2 = 1, ε = 1")):
    ax.axhline(-5, color="grey", linewidth=0.8)
    ax.set_ylim(-40, 0.5)
    ax.set_xlabel("noisy steps t")
    ax.set_ylabel("log10 δ_t (upper bound)")
    ax.set_title(title)
    ax.legend(fontsize="x-small", ncol=1)
save(fig, "03_delta_recursion.png")

# %% [markdown]
# ## 2. Steps to reach δ = 1e-5, and what the planner gives
#
# The refined recursion falls faster than geometrically (super-exponentially once δ_t is
# small), so it needs far fewer steps than the per-step contraction at the same σ.

# %%
print(f"{'C2':>4} {'σ':>5} {'refined T':>9} {'per-step T':>10} {'TV T':>6}")
for c2 in (0.5, 1.0, 2.0):
    for s in (0.5, 1.0, 2.0):
        kw = dict(epsilon=EPS, delta=1e-5, clip_initial=C0, clip_model=c2, noise_std=s)
        refined = contraction.model_clipping_steps(**kw)
        try:
            per_step = contraction.model_clipping_steps(**kw, refined=False)
        except InvalidParameterError:  # no T <= 100000 certifies under the per-step bound
            per_step = None
        tv = contraction.total_variation_log_deltas(
            epsilon=EPS, clip_initial=C0, clip_model=c2, noise_std=s, steps=2000
        )
        tv_steps = int(np.argmax(tv <= np.log(1e-5))) if np.any(tv <= np.log(1e-5)) else None
        assert per_step is None or refined <= per_step
        print(
            f"{c2:>4g} {s:>5g} {refined:>9d} {str(per_step or 'never'):>10} {str(tv_steps or 'never'):>6}"
        )

for T in (5, 10, 20):
    tight = plan(
        "model_clipping", epsilon=EPS, delta=1e-5, clip_initial=C0, clip_model=1.0,
        learning_rate=0.1, steps=T,
    )  # fmt: skip
    paper = plan(
        "model_clipping", epsilon=EPS, delta=1e-5, clip_initial=C0, clip_model=1.0,
        learning_rate=0.1, steps=T, accounting="paper",
    )  # fmt: skip
    print(
        f"plan at T={T}: tight σ = {tight.noise_std:.4g}, paper (per-step form) σ = "
        f"{paper.noise_std:.4g} (x{paper.noise_std / tight.noise_std:.2f})"
    )

# %% [markdown]
# ## 3. The worst-case toy against the recursion, step by step
#
# `ModelClippingWorstCase` built at ε = 1 (γ = 1, C0 = C2 = 1, σ = 1): at each t its exact δ_t
# (largest of the two directions, mpmath) against the refined recursion's δ_t. The log10 values
# are compared because δ_t falls below float64's range within a few steps.

# %%
TOY_STEPS = [1, 2, 3, 4] if FAST else [1, 2, 3, 4, 5, 6, 7, 8]
ref = contraction.model_clipping_log_deltas(
    epsilon=EPS, clip_initial=C0, clip_model=1.0, noise_std=1.0, steps=max(TOY_STEPS)
)
toy_rows = []
for T in TOY_STEPS:
    toy = ModelClippingWorstCase(
        noise_std=1.0, steps=T, clip_initial=C0, clip_model=1.0, target_epsilon=EPS
    )
    exact = max(toy.delta_mp(EPS, "PQ"), toy.delta_mp(EPS, "QP"))
    log10_exact = float(mp.log10(exact)) if exact > 0 else -np.inf
    log10_bound = float(ref[T] / LOG10)
    # never below the exact value (the recursion rounds upward)
    assert log10_exact <= log10_bound + 1e-12, (T, log10_exact, log10_bound)
    toy_rows.append((T, log10_exact, log10_bound))
    print(
        f"t={T}: exact worst-case log10 δ = {log10_exact:.6f}; refined bound log10 δ = "
        f"{log10_bound:.6f}; bound / exact = {10 ** (log10_bound - log10_exact):.10f}"
    )
worst_ratio = max(10 ** (b - e) for _, e, b in toy_rows)
print(f"largest bound / exact over t = 1..{TOY_STEPS[-1]}: {worst_ratio:.10f}")

# %% [markdown]
# ## 4. Certified ε against the exact ε of the worst case, along T (δ = 1e-5)
#
# `certify` gives the certified ε after T steps; the worst-case toy built at that ε gives the
# exact ε of the method's worst case at the same δ.

# %%
CERT_STEPS = [1, 2, 4] if FAST else [1, 2, 3, 4, 5, 6, 8, 10]
eps_rows = []
for T in CERT_STEPS:
    c = certify(
        "model_clipping", delta=1e-5, noise_std=1.0, steps=T, clip_initial=C0, clip_model=1.0,
        learning_rate=1.0,
    )  # fmt: skip
    toy = ModelClippingWorstCase(
        noise_std=1.0, steps=T, clip_initial=C0, clip_model=1.0, target_epsilon=c.epsilon
    )
    exact = float(toy.epsilon(1e-5))
    assert exact <= c.epsilon * (1 + 1e-9), (T, exact, c.epsilon)
    eps_rows.append((T, c.epsilon, exact))
    print(f"T={T}: certified ε = {c.epsilon:.6f}, exact worst-case ε = {exact:.6f}")
eps_ratio = max(c / e for _, c, e in eps_rows)
print(f"largest certified / exact over these T: {eps_ratio:.10f}")

fig, (ax1, ax2) = new_figure(10.0, 3.8, ncols=2)
ax1.plot([r[0] for r in toy_rows], [r[2] for r in toy_rows], "o-", label="refined recursion")
ax1.plot([r[0] for r in toy_rows], [r[1] for r in toy_rows], "x--", label="worst-case toy (exact)")
ax1.set_xlabel("noisy steps t")
ax1.set_ylabel("log10 δ_t at ε = 1")
ax1.set_title("C0 = C2 = 1, σ = 1")
ax1.legend(fontsize="small")
ax2.semilogy([r[0] for r in eps_rows], [r[1] for r in eps_rows], "o-", label="certified ε")
ax2.semilogy(
    [r[0] for r in eps_rows], [r[2] for r in eps_rows], "x--", label="worst-case toy ε (exact)"
)
ax2.set_xlabel("noisy steps T")
ax2.set_ylabel("ε at δ = 1e-5")
ax2.set_title("C0 = C2 = 1, σ = 1")
ax2.legend(fontsize="small")
save(fig, "03_toy_vs_recursion.png")
