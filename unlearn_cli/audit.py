"""``unlearn audit METHOD ...``: Monte Carlo audit of a method's update rule, from the shell.

The command-line face of :func:`verification.audit.audit_method`: it simulates the method's own
update rule (``spec.update_rule()`` run by :mod:`verification.interpreter`) from the two
worst-case starts and sets a Monte Carlo lower bound on epsilon (valid confidence) beside the
certified upper bound. The last line is the verdict: PASS (lower <= certified, exit 0), FAIL (the
lower bound exceeds the certificate: a privacy violation, exit 1) or INCONCLUSIVE (the requested
``--min-epsilon`` was not reached, exit 0). Bad input (including a ``--device`` this machine
does not have) is one ``unlearn: error:`` line and exit 2. A progress bar goes to stderr when
it is a terminal (``--quiet`` turns it off).

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
import sys
from concurrent.futures import ProcessPoolExecutor

from unlearn_theory._validate import check_int, check_nonnegative
from unlearn_theory.errors import InvalidParameterError
from verification.audit import FAULTS, LOSSES, METHODS, audit_method, tightness_rows
from verification.report import audit_report, plot_audit, tightness_table

__all__ = ["add_audit_arguments", "run_audit_command", "verdict", "DEFAULT_DELTA"]

#: Default delta of ``unlearn audit`` (the delta of the library's examples and tightness tables).
DEFAULT_DELTA = 1e-5

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
    parser.add_argument(
        "--delta",
        type=float,
        default=DEFAULT_DELTA,
        help="delta at which the lower and the certified epsilon are compared (default: "
        "%(default)g, the delta of the library's examples and tightness tables; the threshold "
        "lower bound hardly depends on delta, the certified epsilon grows as delta shrinks)",
    )
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
    parser.add_argument(
        "--device",
        default=None,
        help="draw with torch on this device (e.g. cpu, cuda, cuda:1); refused when this "
        "machine does not have it",
    )
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
        help="simulate a buggy loop, to see whether the audit catches it (with --torch the fault "
        "is injected at the torch noise source). half_noise halves every noise std: caught "
        "where the certificate is tight, e.g. output_perturbation --noise-std 2. reuse_noise "
        "reuses one noise draw at every step: it needs --steps >= 2 (with one step it changes "
        "nothing and is refused), and it is caught only where the reused draws cancel or are "
        "contracted away, e.g. model_clipping --noise-std 1 --steps 6 --learning-rate 1 "
        "--clip-gradient 2 --loss repel; on (near-)linear chains it ADDS variance to the released "
        "model, which then stays within its certificate (no violation to catch)",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bar (it is shown on stderr only when stderr is a terminal)",
    )
    parser.add_argument("--plot", default=None, help="write a privacy-profile PNG here")
    parser.add_argument(
        "--tightness",
        action="store_true",
        help="also print the certified/exact table of every method on its exact toy",
    )
    parser.add_argument("--json", action="store_true")


def run_audit_command(args) -> int:
    """Run ``unlearn audit METHOD ...``; exit status 0 (PASS or INCONCLUSIVE), 1 (FAIL: the lower
    bound exceeds the certificate); bad input raises InvalidParameterError (exit 2 from main)."""
    steps = args.steps
    if steps is None:
        steps = 0 if args.method == "output_perturbation" else 1
    workers = check_int("workers", getattr(args, "workers", 1), minimum=1)
    _check_device(args.device)
    if args.fault == "reuse_noise" and steps < 2:
        raise InvalidParameterError(
            "steps",
            steps,
            "--inject-fault reuse_noise needs --steps >= 2 (with one noisy step there is no draw "
            "to reuse, so the fault changes nothing)",
        )
    with contextlib.ExitStack() as stack:
        executor = None
        if workers > 1:
            executor = stack.enter_context(ProcessPoolExecutor(workers))
        out = _run(args, steps, executor)
    return _show(args, out)


def _check_device(device) -> None:
    """Refuse a torch device this machine cannot use (InvalidParameterError, one line)."""
    if device is None:
        return
    try:
        import torch
    except ImportError:
        raise InvalidParameterError(
            "device", device, "needs torch, which is not installed"
        ) from None
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise InvalidParameterError("device", device, "is not a torch device") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise InvalidParameterError("device", device, "CUDA is not available on this machine")
        if dev.index is not None and dev.index >= count:
            raise InvalidParameterError(
                "device", device, f"this machine has {count} CUDA device(s)"
            )
    elif dev.type != "cpu":
        raise InvalidParameterError("device", device, "must be cpu or cuda[:N]")


def _show_progress(args) -> bool:
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


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
        progress=_show_progress(args),
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


def verdict(out: dict) -> tuple[str, str, int]:
    """(word, one-line verdict, exit status) of an audit result.

    FAIL (exit 1): the Monte Carlo lower bound exceeds the certified epsilon, a privacy
    violation at the stated confidence (this is how an injected fault shows). PASS (exit 0):
    lower <= certified. INCONCLUSIVE (exit 0): the audit did not reach ``--min-epsilon``, so no
    lower bound is reported.
    """
    fault = f" (injected fault {out['fault']})" if out.get("fault") else ""
    cert = out["epsilon_certified"]
    lo = out["epsilon_lower"]
    if not out["consistent"]:
        return (
            "FAIL",
            f"verdict: FAIL{fault}: empirical lower bound {lo:.4f} exceeds the certified "
            f"epsilon {cert:.4f} at delta={out['delta']:g} ({out['confidence']:.0%} confidence)",
            1,
        )
    if lo is None:
        return "INCONCLUSIVE", f"verdict: INCONCLUSIVE{fault}: {out['message']}", 0
    note = " -- the fault was NOT detected (see --inject-fault in --help)" if fault else ""
    return "PASS", f"verdict: PASS{fault}: lower bound {lo:.4f} <= certified {cert:.4f}{note}", 0


def _show(args, out: dict) -> int:
    if args.plot:
        plot_audit(out, path=args.plot)
    rows = tightness_rows(delta=args.delta) if getattr(args, "tightness", False) else None
    word, line, code = verdict(out)
    if args.json:
        report = audit_report([out], tightness=rows)
        report.update(verdict=word, verdict_line=line, exit_status=code)
        print(json.dumps(report, indent=2))
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
        if out.get("runs_per_second") is not None:
            print(f"  throughput: {out['runs_per_second']:.0f} runs/s on {out['device']}")
        if out["message"] and out["epsilon_lower"] is not None:
            print(f"  {out['message']}")
        if rows:
            print(tightness_table(rows))
        print(line)
    return code
