"""``unlearn audit METHOD ...``: Monte Carlo audit of a method's update rule, from the shell.

The command-line face of :func:`verification.audit.audit_method`: it simulates the method's own
update rule (``spec.update_rule()`` run by :mod:`verification.interpreter`) from the two
worst-case starts and sets a Monte Carlo lower bound on epsilon (valid confidence) beside the
certified upper bound. Exit status 0 when consistent (lower <= certified), 1 on a violation.

With ``--torch`` the draws come from the REAL torch layer instead
(:func:`verification.torch_audit.audit_torch_method`): each draw is one run of
``unlearn_torch``'s interpreter with its keyed noise source on a one-coordinate model (for
``dp_sgd_group``: one ``train_dp_sgd`` run through Opacus), so the
audit checks the code that unlearns, not a simulation of it (slower: a few hundred runs per
second; ``--inject-fault`` then corrupts the torch noise source itself).
"""

from __future__ import annotations

import argparse
import contextlib
import json
from concurrent.futures import ProcessPoolExecutor

from unlearn_theory._validate import check_int, check_nonnegative
from unlearn_theory.errors import InvalidParameterError
from verification.audit import FAULTS, LOSSES, METHODS, audit_method, tightness_rows
from verification.report import audit_report, plot_audit, tightness_table

__all__ = ["add_audit_arguments", "run_audit_command"]

_LANGEVIN_ARGS = (
    ("strong_convexity", float),
    ("smoothness", float),
    ("lipschitz", float),
    ("dataset_size", int),
    ("batch_size", int),
    ("radius", float),
    ("route", str),
)


def add_audit_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``unlearn audit METHOD ...``."""
    parser.add_argument("method", choices=METHODS, help="method whose update rule is simulated")
    parser.add_argument("--delta", type=float, default=1e-3)
    parser.add_argument("--noise-std", dest="noise_std", type=float, required=True)
    parser.add_argument("--steps", type=int, default=None, help="default: 1 (0 for output)")
    parser.add_argument("--clip-initial", dest="clip_initial", type=float, default=1.0)
    parser.add_argument("--clip-gradient", dest="clip_gradient", type=float, default=1.0)
    parser.add_argument("--clip-model", dest="clip_model", type=float, default=1.0)
    parser.add_argument("--learning-rate", dest="learning_rate", type=float, default=0.1)
    parser.add_argument("--weight-decay", dest="weight_decay", type=float, default=0.0)
    parser.add_argument("--initial-noise-std", dest="initial_noise_std", type=float, default=None)
    parser.add_argument("--blocks", type=int, default=1)
    parser.add_argument("--sample-rate", dest="sample_rate", type=float, default=1.0)
    parser.add_argument("--forget-size", dest="forget_size", type=int, default=1)
    parser.add_argument("--loss", choices=LOSSES, default=None, help="retain-set gradient field")
    parser.add_argument("--anchor", type=float, default=0.0, help="a in g(x) = C1 sign(x - a)")
    for flag, typ in _LANGEVIN_ARGS:  # method "langevin" only (see verification.audit)
        parser.add_argument(f"--{flag.replace('_', '-')}", dest=flag, type=typ, default=None)
    parser.add_argument(
        "--samples",
        type=int,
        default=None,
        help="draws per world (default: 1000000; 2000 with --torch)",
    )
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--min-epsilon",
        dest="min_epsilon",
        type=float,
        default=None,
        help="required lower bound; below it the audit reports insufficient precision",
    )
    parser.add_argument("--device", default=None, help="torch device (e.g. cpu, cuda)")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes drawing the chunks in parallel (chunks of 1000 runs with --torch); "
        "the result does not depend on it",
    )
    parser.add_argument(
        "--torch",
        dest="torch_layer",
        action="store_true",
        help="draw from the real unlearn_torch code (the interpreter and its noise source; "
        "dp_sgd_group: train_dp_sgd through Opacus; one run per draw) "
        "instead of the vectorised numpy simulation of the update rule",
    )
    parser.add_argument(
        "--inject-fault",
        dest="fault",
        choices=FAULTS,
        default=None,
        help="simulate a buggy loop (to see the audit catch it); with --torch the fault is "
        "injected at the torch noise source",
    )
    parser.add_argument("--plot", default=None, help="write a privacy-profile PNG here")
    parser.add_argument(
        "--tightness",
        action="store_true",
        help="also print the certified/exact table of every method on its exact toy",
    )
    parser.add_argument("--json", action="store_true")


def run_audit_command(args) -> int:
    """Run ``unlearn audit METHOD ...``; exit status 0 when consistent, 1 when a violation."""
    steps = args.steps
    if steps is None:
        steps = 0 if args.method == "output_perturbation" else 1
    workers = check_int("workers", getattr(args, "workers", 1), minimum=1)
    with contextlib.ExitStack() as stack:
        executor = None
        if workers > 1:
            executor = stack.enter_context(ProcessPoolExecutor(workers))
        out = _run(args, steps, executor)
    return _show(args, out)


def _run(args, steps, executor) -> dict:
    params = dict(
        noise_std=args.noise_std,
        steps=steps,
        clip_initial=args.clip_initial,
        clip_gradient=args.clip_gradient,
        clip_model=args.clip_model,
        learning_rate=args.learning_rate,
        weight_decay=check_nonnegative("weight_decay", args.weight_decay),
        initial_noise_std=args.initial_noise_std,
        blocks=args.blocks,
        sample_rate=args.sample_rate,
        forget_size=args.forget_size,
        loss=args.loss,
        anchor=args.anchor,
        fault=args.fault,
        **{k: getattr(args, k) for k, _ in _LANGEVIN_ARGS if getattr(args, k, None) is not None},
    )
    common = dict(
        executor=executor,
        delta=args.delta,
        seed=args.seed,
        confidence=args.confidence,
        min_epsilon=args.min_epsilon,
    )
    if getattr(args, "torch_layer", False):
        from verification.torch_audit import TORCH_METHODS, audit_torch_method

        if args.method not in TORCH_METHODS:
            raise InvalidParameterError(
                "method",
                args.method,
                f"--torch audits the methods unlearn_torch runs: {TORCH_METHODS}",
            )
        out = audit_torch_method(
            args.method,
            samples=2_000 if args.samples is None else args.samples,
            device=args.device or "cpu",
            **common,
            **params,
        )
    else:
        out = audit_method(
            args.method,
            samples=1_000_000 if args.samples is None else args.samples,
            device=args.device,
            **common,
            **params,
        )
    return out


def _show(args, out: dict) -> int:
    if args.plot:
        plot_audit(out, path=args.plot)
    rows = tightness_rows(delta=args.delta) if getattr(args, "tightness", False) else None
    if args.json:
        print(json.dumps(audit_report([out], tightness=rows), indent=2))
    else:
        lo = "n/a" if out["epsilon_lower"] is None else f"{out['epsilon_lower']:.4f}"
        ex = "n/a" if out["epsilon_exact"] is None else f"{out['epsilon_exact']:.4f}"
        where = out.get("code_path") or "update-rule simulation"
        fault = f", injected fault {out['fault']}" if out.get("fault") else ""
        print(
            f"audit {out['method']} (loss={out['loss']}{fault}) at delta={out['delta']:g} [{where}]"
        )
        print(
            f"  empirical lower bound ({out['confidence']:.0%}, {out['samples']} samples/side): {lo}"
        )
        print(f"  exact epsilon:      {ex}")
        print(f"  certified epsilon:  {out['epsilon_certified']:.4f}  [{out['certified_source']}]")
        print(f"  consistent (lower <= certified): {out['consistent']}  status={out['status']}")
        if out.get("runs_per_second") is not None:
            print(f"  throughput: {out['runs_per_second']:.0f} runs/s on {out['device']}")
        if out["message"]:
            print(f"  {out['message']}")
        if rows:
            print(tightness_table(rows))
    return 0 if out["consistent"] else 1
