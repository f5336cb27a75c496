# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 1. Privacy curves: exact, Rényi (each conversion), PLD
#
# For the theorist: how much each accounting route loses against the exact answer.
#
# * The Gaussian mechanism N(0,1) vs N(μ,1) composed T times is again Gaussian with μ√T, so
#   its profile δ(ε) = Φ(μ/2 − ε/μ) − e^ε Φ(−μ/2 − ε/μ) is **exact** (`gaussian`).
# * The Rényi route keeps only the curve D_α = α·μ²/2 and converts it to (ε, δ): an **upper**
#   bound; `conversion="mironov"` (Mironov 2017, Prop. 3) and `"improved"` (the default) lose
#   different amounts.
# * The PLD accountant (`pld`) discretises the privacy-loss distribution pessimistically: an
#   **upper** bound whose gap to the exact value is the grid error.
#
# Then Poisson-subsampled Gaussian composition (DP-SGD), where no closed form exists: RDP with
# each conversion against the PLD route.
#
# Run: `python notebooks/01_privacy_curves.py` (full mode) or with
# `UNLEARN_NOTEBOOK_MODE=fast` (small sizes, as the test suite runs it). Figures go to
# `$UNLEARN_FIGURES_DIR` (default `./figures`).

# %%
import os
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from unlearn_theory import conversions, dp_sgd_epsilon, gaussian, pld, renyi

FAST = os.environ.get("UNLEARN_NOTEBOOK_MODE", "full") == "fast"
FIGURES = Path(os.environ.get("UNLEARN_FIGURES_DIR", "figures"))
FIGURES.mkdir(parents=True, exist_ok=True)
# the PLD discretisation: the default grid in full mode; a coarser one (still an upper bound,
# only looser) in fast mode
PLD_GRID = 1e-3 if FAST else None


def new_figure(width=6.4, height=4.0, ncols=1):
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def save(fig, name):
    fig.tight_layout()
    path = FIGURES / name
    fig.savefig(path, dpi=90)
    print("saved", path)


# %% [markdown]
# ## 1. Gaussian composition: ε at δ = 1e-5 against the number of compositions
#
# One step has μ = 0.5; T steps are exactly Gaussian with μ√T.

# %%
DELTA = 1e-5
MU_STEP = 0.5
T_VALUES = [1, 4, 16, 64] if FAST else [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]

rows = []
for T in T_VALUES:
    mu = MU_STEP * np.sqrt(T)
    exact = float(gaussian.epsilon(DELTA, mu=mu))
    # the Rényi curve of T Gaussian steps is α·T·μ²/2 (exact); each conversion is an upper bound
    improved = float(conversions.linear_epsilon(T * MU_STEP**2 / 2, delta=DELTA))
    mironov = float(
        conversions.linear_epsilon(T * MU_STEP**2 / 2, delta=DELTA, conversion="mironov")
    )
    composed = pld.PrivacyLossDistribution.from_gaussian(mu=MU_STEP).self_compose(T)
    pld_eps = float(composed.epsilon(DELTA, grid=PLD_GRID).upper)
    rows.append((T, exact, improved, mironov, pld_eps))
    # soundness: every route is at or above the exact value
    assert min(improved, mironov, pld_eps) >= exact * (1 - 1e-12), (T, exact)

print(f"{'T':>5} {'exact':>9} {'RDP impr.':>10} {'RDP Mir.':>9} {'PLD':>9}   cost over exact")
for T, ex, im, mi, pl in rows:
    print(
        f"{T:>5} {ex:>9.4f} {im:>10.4f} {mi:>9.4f} {pl:>9.4f}   "
        f"improved +{100 * (im / ex - 1):.1f}%, Mironov +{100 * (mi / ex - 1):.1f}%, "
        f"PLD +{100 * (pl / ex - 1):.3f}%"
    )

# %%
T_arr = np.array([r[0] for r in rows])
exact_arr = np.array([r[1] for r in rows])
fig, (ax1, ax2) = new_figure(10.0, 3.8, ncols=2)
for col, label, style in ((2, "Rényi, improved conversion", "--"), (3, "Rényi, Mironov", ":")):
    vals = np.array([r[col] for r in rows])
    ax1.loglog(T_arr, vals, style, marker="o", label=label)
    ax2.semilogx(T_arr, vals / exact_arr, style, marker="o", label=label)
pld_arr = np.array([r[4] for r in rows])
ax1.loglog(T_arr, pld_arr, "-.", marker="x", label="PLD (upper)")
ax2.semilogx(T_arr, pld_arr / exact_arr, "-.", marker="x", label="PLD (upper)")
ax1.loglog(T_arr, exact_arr, "k-", label="exact Gaussian")
ax2.axhline(1.0, color="k", linewidth=0.8)
ax1.set_xlabel("compositions T (μ = 0.5 each)")
ax1.set_ylabel("ε at δ = 1e-5")
ax1.legend(fontsize="small")
ax2.set_xlabel("compositions T")
ax2.set_ylabel("certified ε / exact ε")
ax2.set_title("what each route costs")
ax2.legend(fontsize="small")
save(fig, "01_gaussian_composition_cost.png")

# %% [markdown]
# ## 2. The whole profile δ(ε) for one μ
#
# Exact against the Rényi route with each conversion and the PLD upper bound.

# %%
mu = 2.0
eps_grid = np.linspace(0.0, 8.0, 9 if FAST else 41)
orders = 1 + np.geomspace(1e-2, 1e3, 100 if FAST else 400)
curve = renyi.gaussian(orders, mu=mu)
exact_d = gaussian.delta(eps_grid, mu=mu)
via_improved = np.array([float(renyi.to_delta(orders, curve, epsilon=e)) for e in eps_grid])
via_mironov = np.array(
    [float(renyi.to_delta(orders, curve, epsilon=e, conversion="mironov")) for e in eps_grid]
)
single = pld.PrivacyLossDistribution.from_gaussian(mu=mu)
pld_d = np.array([float(single.delta(e, grid=PLD_GRID).upper) for e in eps_grid])
assert np.all(via_improved >= exact_d * (1 - 1e-9)) and np.all(pld_d >= exact_d * (1 - 1e-9))

fig, (ax,) = new_figure()
ax.semilogy(eps_grid, exact_d, "k-", label="exact δ(ε)")
ax.semilogy(eps_grid, np.minimum(via_improved, 1.0), "--", label="Rényi, improved")
ax.semilogy(eps_grid, np.minimum(via_mironov, 1.0), ":", label="Rényi, Mironov")
ax.semilogy(eps_grid, pld_d, "-.", label="PLD (upper)")
ax.set_xlabel("ε")
ax.set_ylabel("δ")
ax.set_title(f"Gaussian mechanism, μ = {mu:g}")
ax.legend(fontsize="small")
save(fig, "01_gaussian_profile.png")
i = int(np.searchsorted(eps_grid, 4.0))
print(
    f"at ε = {eps_grid[i]:g}: exact δ = {exact_d[i]:.3e}, Rényi improved {via_improved[i]:.3e} "
    f"(x{via_improved[i] / exact_d[i]:.1f}), Mironov {via_mironov[i]:.3e} "
    f"(x{via_mironov[i] / exact_d[i]:.1f}), PLD {pld_d[i]:.3e}"
)

# %% [markdown]
# ## 3. DP-SGD: Poisson-subsampled Gaussian composition
#
# No closed form: the PLD route (`dp_sgd_epsilon`) against RDP with each conversion.

# %%
q, z = 0.01, 1.0
steps_values = [100, 1000] if FAST else [10, 100, 300, 1000, 3000, 10000]
orders = np.concatenate([1 + np.geomspace(1e-2, 1, 20), np.arange(3, 129)])
sg_rows = []
for T in steps_values:
    rdp = T * renyi.subsampled_gaussian(orders, sample_rate=q, noise_multiplier=z)
    improved = float(renyi.to_dp(orders, rdp, delta=DELTA))
    mironov = float(renyi.to_dp(orders, rdp, delta=DELTA, conversion="mironov"))
    best = dp_sgd_epsilon(noise_multiplier=z, sample_rate=q, steps=T, delta=DELTA, grid=PLD_GRID)
    sg_rows.append((T, improved, mironov, float(best), best.details["pld_epsilon"]))
print(f"{'steps':>6} {'RDP impr.':>10} {'RDP Mir.':>9} {'PLD':>8}")
for T, im, mi, _, pl in sg_rows:
    print(f"{T:>6} {im:>10.4f} {mi:>9.4f} {pl:>8.4f}   RDP improved / PLD = {im / pl:.2f}")

fig, (ax,) = new_figure()
Ts = [r[0] for r in sg_rows]
ax.loglog(Ts, [r[1] for r in sg_rows], "--", marker="o", label="Rényi, improved")
ax.loglog(Ts, [r[2] for r in sg_rows], ":", marker="o", label="Rényi, Mironov")
ax.loglog(Ts, [r[4] for r in sg_rows], "-", marker="x", label="PLD (upper)")
ax.set_xlabel("steps")
ax.set_ylabel("ε at δ = 1e-5")
ax.set_title(f"Poisson-subsampled Gaussian, q = {q:g}, z = {z:g}")
ax.legend(fontsize="small")
save(fig, "01_dp_sgd_routes.png")

# %% [markdown]
# ## 4. A Rényi bound is a curve, not a number
#
# Converting the coefficient a of D_α ≤ α·a as if D_α ≤ a held at every order (the "flat-α"
# mistake) reports an ε several times too small.

# %%
orders = 1 + np.geomspace(1e-3, 1e5, 400)
a = 0.05
right = float(renyi.to_dp(orders, a * orders, delta=DELTA))
wrong = float(renyi.to_dp(orders, np.full_like(orders, a), delta=DELTA))
print(f"curve α·a: ε = {right:.3f}; flat a: ε = {wrong:.3f} (x{right / wrong:.1f} too small)")
