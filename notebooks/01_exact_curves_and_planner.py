# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Exact curves, Rényi conversions and the planner
#
# A theorist's tour of `unlearn_theory`: the exact Gaussian privacy profile, what the Rényi
# route loses, and how much noise the tight planner saves over the published closed forms.
# Run it as a script (`python notebooks/01_exact_curves_and_planner.py`) or open it with
# jupytext.

# %%
import numpy as np

from unlearn_theory import certify, conversions, gaussian, plan, renyi

# %% [markdown]
# ## 1. The exact Gaussian profile against the Rényi route
#
# δ(ε; μ) = Φ(μ/2 − ε/μ) − e^ε Φ(−μ/2 − ε/μ) is exact. Converting the Rényi curve α·μ²/2
# (exact too) to (ε, δ) is an upper bound: the curve discards information.

# %%
mu = 1.0
for delta in (1e-3, 1e-5, 1e-10, 1e-50):
    exact = gaussian.epsilon(delta, mu=mu)
    _b = conversions.linear_epsilon(mu * mu / 2, delta=delta)
    improved, order = _b.value, _b.order
    mironov = float(conversions.linear_epsilon(mu * mu / 2, delta=delta, conversion="mironov"))
    print(
        f"delta={delta:.0e}: exact eps={exact:.4f}  RDP improved={improved:.4f} "
        f"(order {order:.2f}, +{100 * (improved / exact - 1):.1f}%)  Mironov={mironov:.4f}"
    )

# %% [markdown]
# ## 2. A Rényi bound is a curve, not a number
#
# The published flat-α mistake converts the coefficient a of D_α ≤ α·a as if D_α ≤ a at
# every order. The certified ε of the true curve is several times larger.

# %%
orders = 1 + np.geomspace(1e-3, 1e5, 400)
a = 0.05
right = float(renyi.to_dp(orders, a * orders, delta=1e-5))
wrong = float(renyi.to_dp(orders, np.full_like(orders, a), delta=1e-5))
print(f"curve alpha*a: eps={right:.3f}; flat a: eps={wrong:.3f} (x{right / wrong:.1f} too small)")

# %% [markdown]
# ## 3. The planner: tight against paper mode
#
# Koloskova et al.'s CIFAR-10 sweep configuration (C0=1, C1=100, γ=0.001, λ=500).

# %%
setting = dict(clip_initial=1.0, clip_gradient=100.0, learning_rate=0.001, weight_decay=500.0)
tight = plan("gradient_clipping", epsilon=1.0, delta=1e-5, **setting)
print(tight.method, tight.noise_std, tight.steps, tight.epsilon, tight.bound_kind)
print("paper-mode noise_std:", tight.paper_noise_std)
print(
    "re-certified:",
    float(
        certify(
            "gradient_clipping", delta=1e-5, noise_std=tight.noise_std, steps=tight.steps, **setting
        )
    ),
)

# %% [markdown]
# ## 4. Plot: exact profile, RDP-converted profile (optional, needs matplotlib)

# %%
try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:  # plots are an optional extra
    plt = None

if plt is not None:
    eps = np.linspace(0.0, 6.0, 200)
    exact = gaussian.delta(eps, mu=mu)
    rdp_orders = 1 + np.geomspace(1e-2, 1e3, 300)
    via_rdp = [
        float(renyi.to_delta(rdp_orders, renyi.gaussian(rdp_orders, mu=mu), epsilon=e)) for e in eps
    ]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.semilogy(eps, exact, label="exact δ(ε)")
    ax.semilogy(eps, np.minimum(via_rdp, 1.0), "--", label="via Rényi (improved)")
    ax.set_xlabel("ε")
    ax.set_ylabel("δ")
    ax.legend()
    fig.tight_layout()
    plt.close(fig)
