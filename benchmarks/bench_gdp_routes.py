"""Noise at equal (ε, δ): the shifted-Rényi route against the Gaussian-DP route.

Run from the repository root:

    .venv/bin/python benchmarks/bench_gdp_routes.py

A tightness table, not a timing. For the README's settings it prints the least noise that
certifies (ε, δ) = (1, 1e-5) through the shifted-Rényi route alone ("before": the curve α·a,
improved conversion at the optimal order; ``analysis="renyi"``) and through the default
certificate ("after": the smaller of that and the Gaussian-DP route μ = √(2a) with the exact
Gaussian profile, docs/gdp_amplification_by_iteration.md), both re-certified by their own
accountant at the same step count, and the ratio. A second table gives the certified ε of fixed
Langevin configurations with finite training (weak Rényi triangle inequality against the
trade-off triangle inequality of the two Gaussian-DP legs). Output: markdown on stdout.
"""

from __future__ import annotations

from unlearn_theory import certify, gaussian, iteration, langevin, plan, subspace
from unlearn_theory.calibration import calibrate_decreasing

EPS, DELTA = 1.0, 1e-5

GRADIENT = {
    "CIFAR-10 config (C0=1, C1=100, γ=1e-3, λ=500)": dict(
        clip_initial=1.0, clip_gradient=100.0, learning_rate=0.001, weight_decay=500.0
    ),
    "MNIST-like (C0=20, C1=10, γ=1e-2, λ=50)": dict(
        clip_initial=20.0, clip_gradient=10.0, learning_rate=0.01, weight_decay=50.0
    ),
    "interior optimum (C0=1, C1=10, γ=1e-3, λ=5)": dict(
        clip_initial=1.0, clip_gradient=10.0, learning_rate=0.001, weight_decay=5.0
    ),
    "λ = 0 (C0=1, C1=10, γ=1e-3)": dict(
        clip_initial=1.0, clip_gradient=10.0, learning_rate=0.001, weight_decay=0.0
    ),
}

#: the README's command-line example (well-trained) and a finite-training variant
LANGEVIN_README = dict(
    learning_rate=0.5,
    strong_convexity=0.01,
    smoothness=1.1,
    lipschitz=1.0,
    dataset_size=10000,
    batch_size=1000,
    radius=10.0,
)
#: the projected 1-D example of docs/langevin_and_per_instance.md §2
LANGEVIN_GRID = dict(
    learning_rate=0.3,
    strong_convexity=1.0,
    smoothness=1.0,
    lipschitz=1.0,
    dataset_size=10,
    radius=1.0,
)


def renyi_gradient_noise(steps, kw):
    """Least σ certifying (EPS, DELTA) at ``steps`` through the shifted-Rényi route alone."""
    if steps == 1:
        start = iteration.constant_B(steps=1, **kw) / gaussian.mu(epsilon=EPS, delta=DELTA)
    else:
        a_max = iteration.max_coefficient(epsilon=EPS, delta=DELTA)
        start = iteration.noise_std_for_coefficient(a_max, steps=steps, **kw)

    def cert(s):
        return certify(
            "gradient_clipping", delta=DELTA, noise_std=s, steps=steps, analysis="renyi", **kw
        )

    return calibrate_decreasing(cert, EPS, start)[0]


def gradient_rows():
    print(
        "| method / setting | steps | Rényi route σ (before) | default σ (after) | route | ratio |"
    )
    print("|---|---:|---:|---:|---|---:|")
    for name, kw in GRADIENT.items():
        p = plan("gradient_clipping", epsilon=EPS, delta=DELTA, **kw)
        before = renyi_gradient_noise(p.steps, kw)
        print(
            f"| gradient clipping, {name} | {p.steps} | {before:.4g} | {p.noise_std:.4g} | "
            f"{p.details['route'] if p.steps > 1 else 'exact (T=1)'} | "
            f"{before / p.noise_std:.3f} |"
        )


def blockwise_rows():
    kw = GRADIENT["CIFAR-10 config (C0=1, C1=100, γ=1e-3, λ=500)"]
    kw_int = GRADIENT["interior optimum (C0=1, C1=10, γ=1e-3, λ=5)"]
    for label, setting in (("CIFAR-10", kw), ("interior", kw_int)):
        for k in (4, 16):
            for allocation in ("per_block", "joint"):
                after = subspace.blockwise_schedule(
                    epsilon=EPS, delta=DELTA, blocks=k, allocation=allocation, **setting
                )
                before = subspace.blockwise_schedule(
                    epsilon=EPS,
                    delta=DELTA,
                    blocks=k,
                    allocation=allocation,
                    analysis="renyi",
                    steps_per_block=after.steps_per_block,
                    **setting,
                )
                route = "gaussian_dp" if "interpolation" in after.accountant else "exact (T_b=1)"
                print(
                    f"| block-wise {allocation}, {label}, k={k} | {after.steps_per_block} per "
                    f"block | {before.noise_std:.4g} | {after.noise_std:.4g} | {route} | "
                    f"{before.noise_std / after.noise_std:.3f} |"
                )


def langevin_rows():
    cases = [
        ("README CLI example, well-trained", LANGEVIN_README, None, 10),
        ("README CLI example, training_epochs=40", LANGEVIN_README, 40, 100),
        ("docs §2 projected example, well-trained", LANGEVIN_GRID, None, 6),
        ("docs §2 projected example, training_epochs=12", LANGEVIN_GRID, 12, 6),
    ]
    for name, kw, T, N in cases:
        common = dict(epsilon=EPS, delta=DELTA, steps=N, training_epochs=T, **kw)
        before = langevin.noise_std_for_steps(analysis="renyi", **common)
        p = plan("langevin", **common)
        print(
            f"| Langevin (PABI), {name} | {N} | {before:.4g} | {p.noise_std:.4g} | "
            f"{p.details['analysis_route']} | {before / p.noise_std:.3f} |"
        )


def langevin_epsilon_rows():
    print()
    print(
        "| Langevin finite training (fixed noise) | T, N | ε weak Rényi triangle (before) | "
        "ε Gaussian-DP legs + trade-off triangle (after) | ratio | ε vs retrained-then-unlearned |"
    )
    print("|---|---|---:|---:|---:|---:|")
    cases = [
        ("docs §2 projected example, s = 0.3", LANGEVIN_GRID, 0.3, [(3, 1), (5, 3), (12, 6)]),
        ("README CLI example, s = 0.05", LANGEVIN_README, 0.05, [(20, 50), (40, 100)]),
    ]
    for name, kw, s, pairs in cases:
        for T, N in pairs:
            spec = dict(noise_std=s, steps=N, training_epochs=T, **kw)
            after = certify("langevin", delta=DELTA, **spec)
            before = certify("langevin", delta=DELTA, analysis="renyi", **spec)
            other = after.details["epsilon_vs_retrained_then_unlearned"]
            print(
                f"| {name} | {T}, {N} | {before.epsilon:.4g} | {after.epsilon:.4g} | "
                f"{before.epsilon / after.epsilon:.3f} | {other:.4g} |"
            )


def worst_case_rows():
    """Certified ε / exact ε on the worst-case toys (verification.toys), at the planned noise."""
    from verification.toys import BlockwiseChain, GradientClippingChain

    print()
    print(
        "| worst-case toy (exact laws Gaussian) | exact ε | Rényi route ε / exact | default ε / exact |"
    )
    print("|---|---:|---:|---:|")
    kw = GRADIENT["CIFAR-10 config (C0=1, C1=100, γ=1e-3, λ=500)"]
    p = plan("gradient_clipping", epsilon=EPS, delta=DELTA, **kw)
    toy = GradientClippingChain(noise_std=p.noise_std, steps=p.steps, field="saturating", **kw)
    spec = dict(noise_std=p.noise_std, steps=p.steps, **kw)
    exact = toy.epsilon(DELTA)
    renyi = certify("gradient_clipping", delta=DELTA, analysis="renyi", **spec).epsilon
    best = certify("gradient_clipping", delta=DELTA, **spec).epsilon
    print(
        f"| gradient clipping, saturating field, CIFAR-10 plan (T={p.steps}) | {exact:.6g} | "
        f"{renyi / exact:.4f} | {best / exact:.9f} |"
    )
    for k, tb in ((4, 9), (16, 6)):
        s = subspace.blockwise_schedule(
            epsilon=EPS, delta=DELTA, blocks=k, allocation="joint", **kw
        ).noise_std
        toy = BlockwiseChain(s, k, tb, split=(1.0,) * k, **kw)
        exact = toy.epsilon(DELTA)
        common = dict(delta=DELTA, noise_std=s, blocks=k, steps_per_block=tb, **kw)
        renyi = subspace.blockwise_epsilon(allocation="joint", analysis="renyi", **common).value
        best = subspace.blockwise_epsilon(allocation="joint", **common).value
        print(
            f"| block-wise joint, saturating, equal split, CIFAR-10, k={k}, T_b={tb} | "
            f"{exact:.6g} | {renyi / exact:.4f} | {best / exact:.9f} |"
        )


def main() -> None:
    gradient_rows()
    blockwise_rows()
    langevin_rows()
    langevin_epsilon_rows()
    worst_case_rows()


if __name__ == "__main__":
    main()
