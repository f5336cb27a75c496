"""Command line: ``unlearn plan | certify | audit | demo``.

A thin shell over :func:`unlearn_theory.plan`, :func:`unlearn_theory.certify` and
:mod:`verification.audit`. Bad input prints ONE line naming the argument and exits with status 2;
no traceback is shown for the library's own errors.

Examples::

    unlearn plan gradient_clipping --epsilon 1 --delta 1e-5 --clip-initial 20 \\
        --clip-gradient 10 --learning-rate 0.01 --weight-decay 50
    unlearn plan model_clipping --epsilon 1 --delta 1e-5 --clip-initial 20 --clip-model 20 \\
        --noise-std 4 --json
    unlearn certify gradient_clipping --delta 1e-5 --noise-std 0.3 --steps 11 \\
        --clip-initial 20 --clip-gradient 10 --learning-rate 0.01 --weight-decay 50
    unlearn audit gradient_clipping ...
    unlearn demo
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys
from collections.abc import Sequence

from .errors import UnlearnError

__all__ = ["main", "build_parser"]

# Vocabulary of the architecture doc: every planner parameter gets a documented option.
_FLOAT_PARAMS = {
    "clip_initial": "C0: radius the model is projected to before unlearning",
    "clip_gradient": "C1: l2 clip of the (mini-batch) gradient (gradient clipping)",
    "clip_model": "C2: radius of the per-step model projection (model clipping)",
    "learning_rate": "gamma: step size",
    "weight_decay": "lambda: weight decay",
    "initial_noise_std": "sigma0: noise added right after the initial projection",
    "sample_rate": "q: Poisson sampling probability (DP-SGD baseline)",
    "noise_multiplier": "noise_std / sensitivity (DP-SGD convention)",
}
_INT_PARAMS = {
    "blocks": "k: number of orthogonal subspaces (block-wise scheduling)",
    "forget_size": "size of the forget set (group privacy baseline)",
}


class _OneLineParser(argparse.ArgumentParser):
    """argparse parser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"unlearn: error: {message}\n")


def _number(text: str):
    try:
        value = int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            return text
    return value


def _finite_float(name: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {name}={text!r}: not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"invalid {name}={text!r}: must be finite")
        return value

    return parse


def _steps(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid steps={text!r}: must be an integer") from None
    return value


def _add_method_params(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("method parameters (architecture vocabulary)")
    for name, help_text in _FLOAT_PARAMS.items():
        group.add_argument(
            "--" + name.replace("_", "-"), dest=name, type=_finite_float(name), help=help_text
        )
    for name, help_text in _INT_PARAMS.items():
        group.add_argument("--" + name.replace("_", "-"), dest=name, type=_steps, help=help_text)
    group.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any other method parameter (e.g. --param strong_convexity=0.1), repeatable",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="unlearn",
        description="Certified machine unlearning: plan, certify and audit (epsilon, delta) guarantees.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineParser)

    p_plan = sub.add_parser("plan", help="least noise (and steps) certifying (epsilon, delta)")
    p_plan.add_argument(
        "method",
        help="gradient_clipping, model_clipping, output_perturbation, "
        "blockwise_gradient_clipping, langevin, dp_sgd_group, or auto",
    )
    p_plan.add_argument("--epsilon", type=_finite_float("epsilon"), required=True)
    p_plan.add_argument("--delta", type=_finite_float("delta"), required=True)
    p_plan.add_argument("--accounting", choices=["tight", "paper"], default="tight")
    p_plan.add_argument(
        "--steps", type=_steps, default=None, help="T; omitted: the planner chooses"
    )
    p_plan.add_argument(
        "--noise-std",
        dest="noise_std",
        type=_finite_float("noise_std"),
        default=None,
        help="given noise_std (the planner then chooses steps)",
    )
    p_plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    _add_method_params(p_plan)

    p_cert = sub.add_parser("certify", help="smallest certified epsilon of a configuration")
    p_cert.add_argument("method")
    p_cert.add_argument("--delta", type=_finite_float("delta"), required=True)
    p_cert.add_argument(
        "--noise-std", dest="noise_std", type=_finite_float("noise_std"), default=None
    )
    p_cert.add_argument("--steps", type=_steps, default=None)
    p_cert.add_argument(
        "--claimed-epsilon",
        dest="claimed_epsilon",
        type=_finite_float("claimed_epsilon"),
        default=None,
        help="a published or labelled epsilon to check against the tight accountant",
    )
    p_cert.add_argument("--json", action="store_true")
    _add_method_params(p_cert)

    # The audit options live in the verification package (a layer above this one); they are
    # loaded only when ``unlearn audit`` runs, so plan/certify never import it.
    p_audit = sub.add_parser(
        "audit",
        help="Monte Carlo audit of a method's update rule (unlearn audit --help)",
        add_help=False,
        prefix_chars="\0",
    )
    p_audit.add_argument("rest", nargs=argparse.REMAINDER)

    sub.add_parser("demo", help="realistic plans of every method, tight beside paper mode")
    return parser


def _collect_params(args: argparse.Namespace) -> dict:
    params = {}
    for name in list(_FLOAT_PARAMS) + list(_INT_PARAMS):
        value = getattr(args, name, None)
        if value is not None:
            params[name] = value
    for item in getattr(args, "param", []) or []:
        if "=" not in item:
            raise _CliError(f"invalid --param {item!r}: expected NAME=VALUE")
        key, value = item.split("=", 1)
        params[key.strip().replace("-", "_")] = _number(value.strip())
    return params


class _CliError(Exception):
    pass


def _plan_table(data: dict) -> str:
    rows = [
        ("method", data.get("method")),
        ("accounting", data.get("accounting")),
        ("noise_std", data.get("noise_std")),
        ("steps", data.get("steps")),
        ("certified epsilon", data.get("epsilon")),
        ("certified delta", data.get("delta")),
        ("bound kind", data.get("bound_kind", data.get("kind"))),
        ("accountant", data.get("accountant")),
        ("paper-mode noise_std", data.get("paper_noise_std")),
    ]
    width = max(len(k) for k, _ in rows)
    lines = []
    for key, value in rows:
        if value is None:
            continue
        if isinstance(value, float):
            value = f"{value:.6g}"
        lines.append(f"{key:<{width}}  {value}")
    alternatives = data.get("alternatives")
    if alternatives:
        lines.append("alternatives:")
        for alt in alternatives:
            if isinstance(alt, dict):
                lines.append(
                    "  "
                    + ", ".join(
                        f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in alt.items()
                        if k in ("method", "noise_std", "steps", "epsilon", "delta", "reason")
                    )
                )
            else:
                lines.append(f"  {alt}")
    return "\n".join(lines)


def _cmd_plan(args: argparse.Namespace) -> int:
    from .planning import plan

    params = _collect_params(args)
    if args.steps is not None:
        params["steps"] = args.steps
    if args.noise_std is not None:
        params["noise_std"] = args.noise_std
    p = plan(
        args.method, epsilon=args.epsilon, delta=args.delta, accounting=args.accounting, **params
    )
    text = p.to_json()
    if args.json:
        print(text)
    else:
        print(_plan_table(json.loads(text)))
    return 0


def _cmd_certify(args: argparse.Namespace) -> int:
    from .planning import certify

    params = _collect_params(args)
    if args.steps is not None:
        params["steps"] = args.steps
    if args.noise_std is not None:
        params["noise_std"] = args.noise_std
    if args.claimed_epsilon is not None:
        params["claimed_epsilon"] = args.claimed_epsilon
    result = certify(args.method, delta=args.delta, **params)
    eps = float(getattr(result, "epsilon", result))
    if args.json:
        payload = {"method": args.method, "delta": args.delta, "epsilon": eps}
        for key in ("kind", "accountant", "order", "claimed_epsilon", "claim_holds", "note"):
            if hasattr(result, key):
                payload[key] = getattr(result, key)
        print(json.dumps(payload, default=str))
    else:
        kind = getattr(result, "kind", "upper")
        print(
            f"certified epsilon = {eps:.6g} at delta = {args.delta:g} ({kind} bound, method {args.method})"
        )
        note = getattr(result, "note", "")
        if note:
            print(note)
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    try:
        audit = importlib.import_module("verification.audit")
    except ImportError as err:  # pragma: no cover - verification ships with the package
        raise _CliError(f"the audit needs the verification package: {err}") from None
    parser = _OneLineParser(
        prog="unlearn audit",
        description="Simulate a method's exact update rule from the two worst-case starts and "
        "compare a Monte Carlo lower bound (valid confidence) with the certified upper bound.",
    )
    audit.add_audit_arguments(parser)
    return int(audit.run_audit_command(parser.parse_args(args.rest)))


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    handlers = {"plan": _cmd_plan, "certify": _cmd_certify, "audit": _cmd_audit, "demo": _cmd_demo}
    try:
        return handlers[args.command](args)
    except (UnlearnError, _CliError) as err:
        print(f"unlearn: error: {err}", file=sys.stderr)
        return 2
    except ValueError as err:  # a ValueError from validation deeper down
        print(f"unlearn: error: {err}", file=sys.stderr)
        return 2
    except TypeError as err:  # unknown keyword for the chosen method
        print(f"unlearn: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
