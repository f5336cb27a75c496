"""Block-wise scheduling: planned per-block noise, per-block against joint allocation.

Run from the repository root:

    .venv/bin/python benchmarks/bench_blockwise.py

This is a tightness table, not a timing. For k blocks at ε = 1, δ = 1e-5 it prints the planned
σ_b and T_b of ``plan("blockwise_gradient_clipping", ..., allocation=...)`` for the published
per-block argument and for the joint allocation (docs/blockwise_joint_allocation.md), with the
one-shot gradient-clipping σ for reference. Every plan is re-certified by the planner. Output:
markdown on stdout.
"""

from __future__ import annotations

from unlearn_theory import plan

SETTINGS = {
    "CIFAR-10 config (C0=1, C1=100, γ=1e-3, λ=500)": dict(
        clip_initial=1.0, clip_gradient=100.0, learning_rate=0.001, weight_decay=500.0
    ),
    "interior optimum (C0=1, C1=10, γ=1e-3, λ=5)": dict(
        clip_initial=1.0, clip_gradient=10.0, learning_rate=0.001, weight_decay=5.0
    ),
    "λ = 0 (C0=1, C1=10, γ=1e-3)": dict(
        clip_initial=1.0, clip_gradient=10.0, learning_rate=0.001, weight_decay=0.0
    ),
    "pure weight decay, ≤ 20 steps (C0=1, C1=0, γ=0.1, λ=0.5)": dict(
        clip_initial=1.0, clip_gradient=0.0, learning_rate=0.1, weight_decay=0.5, max_steps=20
    ),
}


def main() -> None:
    print("| setting | k | one-shot σ | per-block σ_b (T_b) | joint σ_b (T_b) | per-block/joint |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, kw in SETTINGS.items():
        one = plan("gradient_clipping", epsilon=1.0, delta=1e-5, **kw)
        for k in (1, 4, 16, 64):
            rows = []
            for alloc in ("per_block", "joint"):
                p = plan(
                    "blockwise_gradient_clipping",
                    epsilon=1.0,
                    delta=1e-5,
                    blocks=k,
                    allocation=alloc,
                    **kw,
                )
                assert p.certifies_target
                rows.append(p)
            per, joint = rows
            print(
                f"| {name} | {k} | {one.noise_std:.4g} | {per.noise_std:.4g} ({per.steps // k}) "
                f"| {joint.noise_std:.4g} ({joint.steps // k}) "
                f"| {per.noise_std / joint.noise_std:.3f} |"
            )


if __name__ == "__main__":
    main()
