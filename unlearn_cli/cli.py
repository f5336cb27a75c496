"""Command line: ``unlearn plan | certify | audit | verify | demo``.

A thin shell over :func:`unlearn_theory.plan`, :func:`unlearn_theory.certify` and
:mod:`verification.audit`. ``plan`` and ``certify`` have one subcommand per method; each method's
options are read from its spec class (:data:`unlearn_theory.methods.SPEC_CLASSES`: field names,
types from the annotations, required fields), so ``unlearn plan langevin --help`` lists
langevin's parameters and says which are required. Any parameter can also be given as
``--param NAME=VALUE``. Bad input prints ONE line naming the argument and exits with status 2;
no traceback is shown for the library's own errors.

Examples::

    unlearn plan gradient_clipping --epsilon 1 --delta 1e-5 --clip-initial 20 \\
        --clip-gradient 10 --learning-rate 0.01 --weight-decay 50
    unlearn plan model_clipping --epsilon 1 --delta 1e-5 --clip-initial 20 --clip-model 20 \\
        --noise-std 4 --json
    unlearn certify gradient_clipping --delta 1e-5 --noise-std 0.3 --steps 11 \\
        --clip-initial 20 --clip-gradient 10 --learning-rate 0.01 --weight-decay 50
    unlearn plan langevin --help
    unlearn audit gradient_clipping ...
    unlearn verify demo_output/gradient_clipping_eps1/certificate.json \\
        --model demo_output/gradient_clipping_eps1/model.pt
    unlearn verify plan.json
    unlearn demo [--out DIR] [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import sys
import types
import typing
from collections.abc import Sequence

from unlearn_theory.errors import UnlearnError
from unlearn_theory.methods import SPEC_CLASSES

__all__ = ["main", "build_parser", "method_options"]

#: The shared vocabulary (architecture doc): help text of every spec field, in the order in
#: which collected parameters are handed to the planner. A field missing here gets a generic
#: help line naming its spec class.
_VOCABULARY = {
    "steps": "T: number of noisy steps",
    "noise_std": "sigma: std of the Gaussian noise",
    "clip_initial": "C0: radius the model is projected to before unlearning",
    "clip_gradient": "C1: l2 clip of the (mini-batch or per-example) gradient",
    "clip_model": "C2: radius of the per-step model projection (model clipping)",
    "learning_rate": "gamma: step size",
    "weight_decay": "lambda: weight decay (applied after clipping)",
    "initial_noise_std": "sigma0: noise added right after the initial projection",
    "sample_rate": "q: Poisson sampling probability (DP-SGD baseline)",
    "noise_multiplier": "z = noise_std / clip_gradient (DP-SGD convention)",
    "blocks": "k: number of orthogonal coordinate blocks (block-wise scheduling)",
    "forget_size": "size of the forget set",
    "steps_per_block": "T_b: steps on each block (steps = blocks * steps_per_block)",
    "allocation": "'per_block' (the published argument) or 'joint' (blocks share the C0 ball)",
    "strong_convexity": "m: strong-convexity constant of the loss",
    "smoothness": "L: smoothness constant (Lipschitz constant of the gradient)",
    "lipschitz": "M: Lipschitz constant of the loss (each example's gradient is clipped to it)",
    "dataset_size": "n: number of training examples",
    "batch_size": "b: mini-batch size (omitted: full batch)",
    "radius": "R: radius of the projection ball (omitted: no projection)",
    "training_epochs": "epochs trained before unlearning (omitted: the well-trained regime)",
    "route": "'pabi' or 'lsi' (Langevin bound route)",
}
#: options common to every method (not repeated among a method's parameters)
_COMMON = ("steps", "noise_std")
#: what ``plan`` chooses when omitted (never required on ``plan``)
_CHOSEN_BY_PLAN = ("steps", "noise_std", "noise_multiplier", "steps_per_block")


class _OneLineParser(argparse.ArgumentParser):
    """argparse parser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"unlearn: error: {message}\n")


class _CliError(Exception):
    pass


# -- value parsers --------------------------------------------------------------------------------
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


def _integer(name: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"invalid {name}={text!r}: must be an integer"
            ) from None
        return value

    return parse


def _schedule(name: str):
    """One number, or a per-step schedule of comma-separated numbers (a list)."""
    one = _finite_float(name)

    def parse(text: str):
        parts = [p for p in text.split(",") if p.strip()]
        if len(parts) > 1:
            return [one(p.strip()) for p in parts]
        return one(text)

    return parse


def _field_kind(annotation) -> str:
    """Kind of a spec field from its annotation: "schedule" (a number or a per-step tuple),
    "int", "float" or "str"."""
    args = typing.get_args(annotation) if _is_union(annotation) else (annotation,)
    bases = {typing.get_origin(a) or a for a in args} - {type(None)}
    if tuple in bases:
        return "schedule"
    if int in bases and float not in bases:
        return "int"
    if float in bases or int in bases:
        return "float"
    return "str"


def _is_union(annotation) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


_PARSERS = {"schedule": _schedule, "int": _integer, "float": _finite_float, "str": lambda n: str}
_METAVARS = {"schedule": "X[,X...]", "int": "N", "float": "X", "str": "NAME"}


# -- per-method options from the spec classes -----------------------------------------------------
@dataclasses.dataclass(frozen=True)
class MethodOption:
    """One method parameter as the CLI offers it."""

    name: str
    kind: str  # "float", "int", "schedule" or "str"
    required: bool
    default: object
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@functools.cache
def method_options(method: str, *, command: str = "certify") -> tuple[MethodOption, ...]:
    """The options of ``unlearn COMMAND METHOD``, read from the method's spec class.

    ``required`` is the spec's ``required_fields()``; on ``plan`` the fields the planner
    chooses (steps, noise_std, noise_multiplier, steps_per_block) are never required.
    """
    cls = SPEC_CLASSES[method]
    hints = typing.get_type_hints(cls)
    required = set(cls.required_fields())
    if command == "plan":
        required -= set(_CHOSEN_BY_PLAN)
    out = []
    for f in dataclasses.fields(cls):
        kind = _field_kind(hints[f.name])
        default = None if f.default is dataclasses.MISSING else f.default
        text = _VOCABULARY.get(f.name, f"parameter {f.name} of {cls.__name__}")
        out.append(MethodOption(f.name, kind, f.name in required, default, text))
    return tuple(out)


def _option_help(opt: MethodOption) -> str:
    text = opt.help
    if opt.kind == "schedule":
        text += "; one value or a per-step schedule X1,X2,..."
    if opt.required:
        return text + " [required]"
    if opt.default is not None:
        return text + f" (default: {opt.default})"
    return text


def _all_options(command: str) -> list[MethodOption]:
    """Union of every method's options (for ``auto``), none required."""
    seen: dict[str, MethodOption] = {}
    for method in SPEC_CLASSES:
        for opt in method_options(method, command=command):
            if opt.name not in seen:
                seen[opt.name] = dataclasses.replace(opt, required=False, default=None)
    return list(seen.values())


def _add_method_options(parser: argparse.ArgumentParser, options, method: str) -> None:
    req = parser.add_argument_group(f"required parameters of {method}")
    opt_group = parser.add_argument_group(f"optional parameters of {method}")
    for opt in options:
        if opt.name in _COMMON:
            continue
        group = req if opt.required else opt_group
        group.add_argument(
            opt.flag,
            dest=opt.name,
            type=_PARSERS[opt.kind](opt.name),
            default=None,
            metavar=_METAVARS[opt.kind],
            help=_option_help(opt),
        )
    # every other parameter of the vocabulary stays accepted (hidden from --help), so that the
    # library names it in its error ("is not a parameter of method ...")
    own = {opt.name for opt in options} | set(_COMMON)
    for other in _all_options("certify"):
        if other.name not in own:
            parser.add_argument(
                other.flag,
                dest=other.name,
                type=_PARSERS[other.kind](other.name),
                default=None,
                help=argparse.SUPPRESS,
            )
    opt_group.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any method parameter as NAME=VALUE (e.g. --param strong_convexity=0.1), repeatable",
    )


def _add_plan_method(sub, method: str, options, summary: str) -> None:
    _configure_plan(
        sub.add_parser(method, help=summary, description=f"{summary}."), method, options
    )


def _configure_plan(p, method: str, options) -> None:
    p.add_argument("--epsilon", type=_finite_float("epsilon"), required=True, help="target epsilon")
    p.add_argument("--delta", type=_finite_float("delta"), required=True, help="target delta")
    p.add_argument(
        "--accounting",
        choices=["tight", "paper"],
        default="tight",
        help="tight accountant (default) or the published closed form, re-certified",
    )
    p.add_argument(
        "--steps",
        type=_integer("steps"),
        default=None,
        help="T: number of noisy steps; omitted: the planner chooses",
    )
    p.add_argument(
        "--noise-std",
        dest="noise_std",
        type=_finite_float("noise_std"),
        default=None,
        help="given noise_std (the planner then chooses steps)",
    )
    p.add_argument(
        "--max-steps",
        dest="max_steps",
        type=_integer("max_steps"),
        default=None,
        help="largest step count the planner may choose",
    )
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    _add_method_options(p, options, method)


def _add_certify_method(sub, method: str, options, summary: str) -> None:
    _configure_certify(
        sub.add_parser(method, help=summary, description=f"{summary}."), method, options
    )


def _configure_certify(p, method: str, options) -> None:
    p.add_argument("--delta", type=_finite_float("delta"), required=True, help="target delta")
    req = {o.name for o in options if o.required}
    kinds = {o.name: o.kind for o in options}
    p.add_argument(
        "--noise-std",
        dest="noise_std",
        type=_PARSERS[kinds.get("noise_std", "float")]("noise_std"),
        default=None,
        help="sigma: noise std" + (" [required]" if "noise_std" in req else ""),
    )
    p.add_argument(
        "--steps",
        type=_integer("steps"),
        default=None,
        help="T: number of noisy steps" + (" [required]" if "steps" in req else ""),
    )
    p.add_argument(
        "--claimed-epsilon",
        dest="claimed_epsilon",
        type=_finite_float("claimed_epsilon"),
        default=None,
        help="a published or labelled epsilon to check against the tight accountant",
    )
    p.add_argument("--json", action="store_true")
    _add_method_options(p, options, method)


def _summary(method: str) -> str:
    doc = (SPEC_CLASSES[method].__doc__ or method).strip().splitlines()[0]
    return doc.rstrip(".")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="unlearn",
        description="Certified machine unlearning: plan, certify and audit (epsilon, delta) guarantees.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineParser)
    methods = list(SPEC_CLASSES)

    p_plan = sub.add_parser(
        "plan",
        help="least noise (and steps) certifying (epsilon, delta)",
        description="Least noise (and steps) certifying (epsilon, delta). "
        "`unlearn plan METHOD --help` lists the method's parameters.",
    )
    plan_sub = p_plan.add_subparsers(
        dest="method", metavar="METHOD", parser_class=_OneLineParser, required=True
    )
    for m in methods:
        _add_plan_method(plan_sub, m, method_options(m, command="plan"), _summary(m))
    _add_plan_method(
        plan_sub,
        "auto",
        _all_options("plan"),
        "Least noise among the methods that apply to the given parameters",
    )

    p_cert = sub.add_parser(
        "certify",
        help="smallest certified epsilon of a configuration",
        description="Smallest certified epsilon of a configuration. "
        "`unlearn certify METHOD --help` lists the method's parameters.",
    )
    cert_sub = p_cert.add_subparsers(
        dest="method", metavar="METHOD", parser_class=_OneLineParser, required=True
    )
    for m in methods:
        _add_certify_method(cert_sub, m, method_options(m, command="certify"), _summary(m))

    # ``unlearn audit ...`` is parsed by the audit's own parser (unlearn_cli.audit), built only
    # when the command runs, so that plan/certify do not load the verification package.
    sub.add_parser(
        "audit",
        help="Monte Carlo audit of a method's update rule (unlearn audit --help)",
        add_help=False,
    )
    from .verify import add_verify_arguments

    add_verify_arguments(sub)
    p_demo = sub.add_parser(
        "demo",
        help="plans of every method, then real unlearning of an MLP on scikit-learn's digits",
    )
    p_demo.add_argument(
        "--out",
        default="demo_output",
        help="folder for the certificates, histories and plots (default: demo_output)",
    )
    p_demo.add_argument(
        "--quick", action="store_true", help="small sizes (a smoke test of every step)"
    )
    return parser


def _collect_params(args: argparse.Namespace) -> dict:
    names = [n for n in _VOCABULARY] + [
        n for cls in SPEC_CLASSES.values() for n in cls.field_names() if n not in _VOCABULARY
    ]
    params = {}
    for name in names:
        if name in _COMMON or name in params:
            continue
        value = getattr(args, name, None)
        if value is not None:
            params[name] = value
    for item in getattr(args, "param", []) or []:
        if "=" not in item:
            raise _CliError(f"invalid --param {item!r}: expected NAME=VALUE")
        key, value = item.split("=", 1)
        params[key.strip().replace("-", "_")] = _number(value.strip())
    return params


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
    from unlearn_theory.planning import plan

    params = _collect_params(args)
    if args.steps is not None:
        params["steps"] = args.steps
    if args.noise_std is not None:
        params["noise_std"] = args.noise_std
    if args.max_steps is not None:
        params["max_steps"] = args.max_steps
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
    from unlearn_theory.planning import certify

    params = _collect_params(args)
    if args.steps is not None:
        params["steps"] = args.steps
    if args.noise_std is not None:
        params["noise_std"] = args.noise_std
    if args.claimed_epsilon is not None:
        params["claimed_epsilon"] = args.claimed_epsilon
    result = certify(args.method, delta=args.delta, **params)
    eps = float(getattr(result, "epsilon", result))
    kind = str(getattr(result, "kind", "upper"))
    if args.json:
        payload = {"method": args.method, "delta": args.delta, "epsilon": eps}
        for key in ("kind", "accountant", "order", "claimed_epsilon", "claim_holds", "note"):
            if hasattr(result, key):
                payload[key] = kind if key == "kind" else getattr(result, key)
        print(json.dumps(payload, default=str))
    else:
        print(
            f"certified epsilon = {eps:.6g} at delta = {args.delta:g} ({kind} bound, method {args.method})"
        )
        note = getattr(result, "note", "")
        if note:
            print(note)
    return 0


def _cmd_audit(argv: Sequence[str]) -> int:
    from .audit import add_audit_arguments, run_audit_command

    parser = _OneLineParser(
        prog="unlearn audit",
        description="Simulate a method's exact update rule from the two worst-case starts and "
        "compare a Monte Carlo lower bound (valid confidence) with the certified upper bound.",
    )
    add_audit_arguments(parser)
    return int(run_audit_command(parser.parse_args(list(argv))))


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return int(run_demo(out_dir=args.out, quick=args.quick) or 0)


def _cmd_verify(args: argparse.Namespace) -> int:
    from .verify import run_verify

    return int(run_verify(args))


def _unregistered_parser(command: str) -> argparse.ArgumentParser:
    """``unlearn plan|certify NAME ...`` for a NAME without a subcommand (a method registered
    at run time, or a typo): every known option, and the library names the error."""
    p = _OneLineParser(prog=f"unlearn {command}")
    p.add_argument("method")
    configure = _configure_plan if command == "plan" else _configure_certify
    configure(p, "any method", _all_options(command))
    return p


def _dispatch(argv: list[str]) -> int:
    if argv[:1] == ["audit"]:
        return _cmd_audit(argv[1:])
    handlers = {
        "plan": _cmd_plan,
        "certify": _cmd_certify,
        "demo": _cmd_demo,
        "verify": _cmd_verify,
    }
    known = set(SPEC_CLASSES) | {"auto"}
    if (
        argv[:1] in (["plan"], ["certify"])
        and len(argv) > 1
        and not argv[1].startswith("-")
        and argv[1] not in known
    ):
        args = _unregistered_parser(argv[0]).parse_args(argv[1:])
        return handlers[argv[0]](args)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return handlers[args.command](args)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(argv)
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
