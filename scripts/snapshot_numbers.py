"""Print every number the README examples, ``unlearn demo`` and the planner benchmarks produce.

One ``label: value`` line per number, at full ``repr`` precision, so that two runs (before and
after a refactor) can be compared with ``diff``. Timings are left out (the demo's "plan ms"
column is cut off). Written to work against both the old API (``certify`` returning a float
subclass) and the new one (``certify`` returning a Bound): results are read with
``getattr(res, "epsilon", res)``.

Run from the repository root:

    PYTHONPATH=. .venv/bin/python scripts/snapshot_numbers.py > numbers.txt
"""

from __future__ import annotations

import re

from unlearn_theory import certify, conversions, dp_sgd_epsilon, gaussian, plan, renyi

DELTA = 1e-5


def _num(x):
    """A float from a result that is a number, a Bound-like object or a tuple's first entry."""
    if isinstance(x, tuple):
        x = x[0]
    for attr in ("epsilon", "value"):
        if hasattr(x, attr) and not isinstance(x, (int, float)):
            return float(getattr(x, attr))
    return float(x)


def emit(label, value):
    if value is None or isinstance(value, (bool, str, int)):
        print(f"{label}: {value!r}")
    else:
        print(f"{label}: {float(value)!r}")


def emit_plan(label, p):
    for field in (
        "method",
        "accounting",
        "noise_std",
        "steps",
        "epsilon",
        "delta",
        "target_epsilon",
        "bound_kind",
        "certifies_target",
        "paper_noise_std",
        "paper_epsilon",
    ):
        emit(f"{label}.{field}", getattr(p, field))
    for key in sorted(p.details):
        val = p.details[key]
        if isinstance(val, (int, float)) and not isinstance(val, bool):
            emit(f"{label}.details.{key}", val)
    for i, alt in enumerate(p.alternatives):
        for key in ("method", "noise_std", "steps", "epsilon"):
            if key in alt:
                emit(f"{label}.alternatives[{i}].{key}", alt[key])


def emit_certify(label, res):
    emit(f"{label}.epsilon", getattr(res, "epsilon", res))
    emit(f"{label}.kind", str(getattr(res, "kind", None)))
    order = getattr(res, "order", None)
    emit(f"{label}.order", order)
    claim = getattr(res, "claim_holds", None)
    if claim is not None:
        emit(f"{label}.claim_holds", claim)
        print(f"{label}.note: {res.note}")


def readme():
    emit("readme.gaussian.delta", _num(gaussian.delta(1.0, mu=0.5)))
    emit("readme.gaussian.epsilon", _num(gaussian.epsilon(1e-5, mu=0.5)))
    emit("readme.gaussian.mu", _num(gaussian.mu(epsilon=1.0, delta=1e-5)))
    orders = [1.5, 2, 4, 8, 16, 32, 64]
    import numpy as np

    rdp = 1000 * np.asarray(
        renyi.subsampled_gaussian(orders, sample_rate=0.01, noise_multiplier=1.0)
    )
    res = renyi.to_dp(orders, rdp, delta=1e-5)
    emit("readme.renyi.to_dp.epsilon", _num(res))
    emit("readme.conversions.linear_epsilon", _num(conversions.linear_epsilon(0.02, delta=1e-5)))
    emit(
        "readme.dp_sgd_epsilon",
        _num(dp_sgd_epsilon(noise_multiplier=1.0, sample_rate=0.01, steps=10_000, delta=1e-5)),
    )
    setting = dict(clip_initial=1.0, clip_gradient=100.0, learning_rate=0.001, weight_decay=500.0)
    emit_plan("readme.plan_gc", plan("gradient_clipping", epsilon=1.0, delta=1e-5, **setting))
    emit_certify(
        "readme.certify_gc_claim",
        certify(
            "gradient_clipping",
            delta=1e-5,
            noise_std=0.0873,
            steps=5,
            claimed_epsilon=10,
            **setting,
        ),
    )
    emit_plan("readme.plan_auto", plan("auto", epsilon=1.0, delta=1e-5, **setting))
    emit_plan(
        "readme.plan_gc_paper",
        plan("gradient_clipping", epsilon=1.0, delta=1e-5, accounting="paper", **setting),
    )
    # command line block
    emit_certify(
        "cli.certify_op",
        certify("output_perturbation", delta=1e-5, noise_std=8.0, clip_initial=1.0),
    )
    emit_plan(
        "cli.plan_langevin",
        plan(
            "langevin",
            epsilon=1.0,
            delta=1e-5,
            steps=10,
            learning_rate=0.5,
            strong_convexity=0.01,
            smoothness=1.1,
            lipschitz=1.0,
            dataset_size=10000,
            batch_size=1000,
            radius=10.0,
        ),
    )


def demo():
    try:
        from unlearn_cli.demo import _method_rows, run_demo

        def planner_parts(out):
            return run_demo(out=out, real=False)
    except ModuleNotFoundError:  # before the command line moved out of unlearn_theory
        from unlearn_theory.demo import _method_rows, run_demo

        planner_parts = run_demo

    lines = []
    planner_parts(lines.append)
    row = re.compile(r"^  [a-z_]+ +\S+ +\d+ +\S+ +(upper|exact) ")
    for i, line in enumerate(lines):
        if row.match(line):
            line = line.rsplit(None, 1)[0]  # drop the timing column
        print(f"demo.line[{i}]: {line}")
    for method, params in _method_rows():
        for accounting in ("tight", "paper"):
            try:
                p = plan(method, epsilon=1.0, delta=DELTA, accounting=accounting, **params)
            except Exception as err:  # noqa: BLE001 - record what happened
                print(f"demo.plan.{method}.{accounting}: error {type(err).__name__}: {err}")
                continue
            emit_plan(f"demo.plan.{method}.{accounting}", p)


def bench_planner():
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "bench_planner.py"
    spec = importlib.util.spec_from_file_location("bench_planner", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for label, _kind, method, kw in mod.CASES + mod.SLOW_CASES:
        emit_plan(f"bench_planner[{label}]", plan(method, epsilon=1.0, delta=1e-5, **kw))
    for name, kw in [
        ("CIFAR", mod.CIFAR),
        ("MNIST_LIKE", mod.MNIST_LIKE),
        ("LAMBDA0", mod.LAMBDA0),
    ]:
        paper = plan("gradient_clipping", epsilon=1.0, delta=1e-5, accounting="paper", **kw)
        same = plan("gradient_clipping", epsilon=1.0, delta=1e-5, steps=paper.steps, **kw)
        own = plan("gradient_clipping", epsilon=1.0, delta=1e-5, **kw)
        emit_plan(f"bench_planner.noise_table[{name}].paper", paper)
        emit_plan(f"bench_planner.noise_table[{name}].same", same)
        emit_plan(f"bench_planner.noise_table[{name}].own", own)
    for eps in (1.0, 5.0, 10.0, 20.0, 30.0):
        p = plan("gradient_clipping", epsilon=eps, delta=1e-5, accounting="paper", **mod.LAMBDA0)
        emit_plan(f"bench_planner.lambda0[{eps:g}]", p)


def bench_blockwise():
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "bench_blockwise.py"
    spec = importlib.util.spec_from_file_location("bench_blockwise", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for name, kw in mod.SETTINGS.items():
        emit_plan(
            f"bench_blockwise[{name}].one", plan("gradient_clipping", epsilon=1.0, delta=1e-5, **kw)
        )
        for k in (1, 4, 16, 64):
            for alloc in ("per_block", "joint"):
                p = plan(
                    "blockwise_gradient_clipping",
                    epsilon=1.0,
                    delta=1e-5,
                    blocks=k,
                    allocation=alloc,
                    **kw,
                )
                emit_plan(f"bench_blockwise[{name}].k{k}.{alloc}", p)


def main():
    readme()
    demo()
    bench_planner()
    bench_blockwise()


if __name__ == "__main__":
    main()
