"""Command line: ``unlearn plan | certify | methods | audit | verify | demo``.

A thin shell over :func:`unlearn_theory.plan`, :func:`unlearn_theory.certify` and
:mod:`verification.audit`. ``plan`` and ``certify`` have one subcommand per method; each method's
options are read from its spec class (:data:`unlearn_theory.methods.SPEC_CLASSES`: field names,
types from the annotations, required fields), so ``unlearn plan langevin --help`` lists
langevin's parameters and says which are required. Any parameter can also be given as
``--param NAME=VALUE``; ``unlearn methods [METHOD]`` lists every method's required and
optional parameters. Missing required parameters are named all at once, in ONE error.

Exit status: 0 success; 1 a check failed (``certify --claimed-epsilon`` not certified, ``verify``
found the file invalid, ``audit`` inconsistent); 2 bad input, printed as ONE line naming the
argument (no traceback for the library's own errors).

Examples::

    unlearn plan gradient_clipping --epsilon 1 --delta 1e-5 --clip-initial 20 \\
        --clip-gradient 10 --learning-rate 0.01 --weight-decay 50
    unlearn plan model_clipping --epsilon 1 --delta 1e-5 --clip-initial 20 --clip-model 20 \\
        --noise-std 4 --json
    unlearn certify gradient_clipping --delta 1e-5 --noise-std 0.3 --steps 11 \\
        --clip-initial 20 --clip-gradient 10 --learning-rate 0.01 --weight-decay 50
    unlearn plan langevin --help
    unlearn methods langevin
    unlearn --version
    unlearn audit gradient_clipping ...
    unlearn verify demo_output/gradient_clipping_eps1/certificate.json \\
        --model demo_output/gradient_clipping_eps1/model.pt
    unlearn verify plan.json
    unlearn demo [--out DIR] [--quick]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import json
import math
import os
import platform
import sys
import textwrap
import types
import typing
from collections.abc import Sequence
from importlib import metadata

from unlearn_theory._validate import check_delta, check_positive
from unlearn_theory._version import __version__
from unlearn_theory.errors import UnlearnError
from unlearn_theory.methods import SPEC_CLASSES

__all__ = ["main", "build_parser", "method_options", "MethodOption", "versions"]

#: what the exit statuses mean (shown in --help)
EXIT_STATUS = (
    "exit status: 0 success; 1 a check failed (certify --claimed-epsilon not certified, "
    "verify: file invalid, audit: inconsistent); 2 bad input (one line on stderr naming "
    "the argument)"
)

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


class _HelpFormatter(argparse.HelpFormatter):
    """Help that shows each option's default (when it has one and the text does not say it)."""

    @staticmethod
    def _shows_default(action: argparse.Action) -> bool:
        default = action.default
        return not (
            action.help == argparse.SUPPRESS
            or not action.option_strings
            or action.required
            or default is None
            or default is False
            or default == []
            or default is argparse.SUPPRESS
            or "default" in (action.help or "")
        )

    def _format_action(self, action: argparse.Action) -> str:
        if action.help is None and self._shows_default(action):
            # an option without a help text still shows its default
            return super()._format_action(_with_help(action, "(default: %(default)s)"))
        return super()._format_action(action)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not self._shows_default(action):
            return text
        return (text + " " if text else "") + "(default: %(default)s)"


def _with_help(action: argparse.Action, text: str) -> argparse.Action:
    """A shallow copy of ``action`` with help ``text`` (for display only)."""
    out = copy.copy(action)
    out.help = text
    return out


class _OneLineParser(argparse.ArgumentParser):
    """argparse parser whose errors are one line on stderr and exit status 2, and whose help
    shows the defaults."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

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

    >>> [o.flag for o in method_options("output_perturbation") if o.required]
    ['--clip-initial', '--noise-std']
    >>> [o.name for o in method_options("output_perturbation", command="plan") if o.required]
    ['clip_initial']
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
        sub.add_parser(method, help=summary, description=f"{summary}.", epilog=EXIT_STATUS),
        method,
        options,
    )


def _configure_plan(p, method: str, options) -> None:
    one_of = _plan_needs_one_of(method) if method in SPEC_CLASSES else ()
    one_of_note = (
        f" [{' or '.join('--' + n.replace('_', '-') for n in one_of)} required]"
        if {"steps", "noise_std"} & set(one_of)
        else ""
    )
    p.add_argument(
        "--epsilon",
        type=_finite_float("epsilon"),
        required=True,
        help="target epsilon (> 0, nats) the plan must certify",
    )
    p.add_argument(
        "--delta",
        type=_finite_float("delta"),
        required=True,
        help="target delta in (0, 1), e.g. 1e-5",
    )
    p.add_argument(
        "--accounting",
        choices=["tight", "paper"],
        default="tight",
        help="'tight': the library's tightest accountant; 'paper': the published closed form, "
        "re-certified by the tight accountant",
    )
    p.add_argument(
        "--steps",
        type=_integer("steps"),
        default=None,
        help="T: number of noisy steps; omitted: the planner chooses" + one_of_note,
    )
    p.add_argument(
        "--noise-std",
        dest="noise_std",
        type=_finite_float("noise_std"),
        default=None,
        help="given noise_std (the planner then chooses steps)" + one_of_note,
    )
    p.add_argument(
        "--max-steps",
        dest="max_steps",
        type=_integer("max_steps"),
        default=None,
        help="largest step count the planner may choose (omitted: the method's own cap)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print the plan as JSON (UnlearningPlan.to_json: inputs, spec, delta, bound kind, "
        "library version)",
    )
    _add_method_options(p, options, method)


def _add_certify_method(sub, method: str, options, summary: str) -> None:
    _configure_certify(
        sub.add_parser(method, help=summary, description=f"{summary}.", epilog=EXIT_STATUS),
        method,
        options,
    )


def _configure_certify(p, method: str, options) -> None:
    p.add_argument(
        "--delta",
        type=_finite_float("delta"),
        required=True,
        help="delta in (0, 1) at which epsilon is certified, e.g. 1e-5",
    )
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
        help="a published or labelled epsilon to check against the tight accountant; "
        "exit status 1 when it is NOT certified (a CI gate)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print the result as JSON: epsilon, delta, bound kind, accountant, the certified "
        "spec, the inputs and the library/numpy/scipy versions",
    )
    _add_method_options(p, options, method)


class _ListMethods(argparse.Action):
    """``--list``: print :func:`methods_listing` (as ``unlearn methods``) and exit 0."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(_format_listing(methods_listing()))
        parser.exit(0)


def _summary(method: str) -> str:
    doc = (SPEC_CLASSES[method].__doc__ or method).strip().splitlines()[0]
    return doc.rstrip(".")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="unlearn",
        description="Certified machine unlearning: plan, certify and audit (epsilon, delta) "
        "guarantees. `unlearn methods` lists every method's parameters; "
        "`unlearn COMMAND --help` explains a command.",
        epilog=EXIT_STATUS,
    )
    parser.add_argument(
        "--version",
        action="version",
        version=_version_line(),
        help="print the library, numpy, scipy and python versions and exit",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineParser)
    methods = list(SPEC_CLASSES)

    p_plan = sub.add_parser(
        "plan",
        help="least noise (and steps) certifying (epsilon, delta)",
        description="Least noise (and steps) certifying (epsilon, delta). "
        "`unlearn plan METHOD --help` lists the method's parameters; `unlearn plan --list` "
        "(or `unlearn methods`) lists every method's.",
        epilog=EXIT_STATUS,
    )
    p_plan.add_argument(
        "--list", action=_ListMethods, help="list every method's parameters and exit"
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
        "`unlearn certify METHOD --help` lists the method's parameters; `unlearn certify "
        "--list` (or `unlearn methods`) lists every method's.",
        epilog=EXIT_STATUS,
    )
    p_cert.add_argument(
        "--list", action=_ListMethods, help="list every method's parameters and exit"
    )
    cert_sub = p_cert.add_subparsers(
        dest="method", metavar="METHOD", parser_class=_OneLineParser, required=True
    )
    for m in methods:
        _add_certify_method(cert_sub, m, method_options(m, command="certify"), _summary(m))

    p_methods = sub.add_parser(
        "methods",
        help="the methods and, per method, its required and optional parameters",
        description="Every method (or the one named) with its parameters, read from its spec "
        "class: required by plan and certify, chosen by plan (required by certify), optional "
        "with their defaults.",
    )
    p_methods.add_argument(
        "name", nargs="?", default=None, metavar="METHOD", help="one method (omitted: all)"
    )
    p_methods.add_argument("--json", action="store_true", help="print the listing as JSON")

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
    # the targets first (as the library checks them), then every missing parameter at once
    check_positive("epsilon", args.epsilon)
    check_delta(args.delta)
    _check_required(args.method, "plan", params)
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
    check_delta(args.delta)
    _check_required(args.method, "certify", params)
    inputs = dict(params)
    if args.claimed_epsilon is not None:
        params["claimed_epsilon"] = args.claimed_epsilon
    result = certify(args.method, delta=args.delta, **params)
    eps = float(result.epsilon)
    kind = result.kind.value
    if args.json:
        print(json.dumps(_certify_payload(args, result, inputs), indent=2, default=str))
    else:
        print(
            f"certified epsilon = {eps:.6g} at delta = {args.delta:g} "
            f"({kind} bound, method {args.method})"
        )
        if result.note:
            print(result.note)
    return 1 if result.claim_holds is False else 0


def versions() -> dict[str, str]:
    """Versions of the library and of what its numbers depend on (for JSON outputs)."""
    out = {"unlearn": __version__}
    for name in ("numpy", "scipy", "mpmath"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # pragma: no cover - installed with the library
            out[name] = "not installed"
    out["python"] = platform.python_version()
    return out


def _version_line() -> str:
    v = versions()
    rest = ", ".join(f"{k} {val}" for k, val in v.items() if k != "unlearn")
    return f"unlearn {v['unlearn']} ({rest})"


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, tuple | list):
        return [_jsonable(x) for x in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(x) for k, x in value.items()}
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _jsonable(value.item())
    return value


def _certify_payload(args: argparse.Namespace, result, inputs: dict) -> dict:
    """What ``certify --json`` prints: the certificate and what it certifies (the spec, the
    command-line inputs, delta), the bound kind and accountant, and the versions."""
    spec = result.spec.to_dict() if result.spec is not None else None
    payload = {
        "command": "certify",
        "method": args.method,
        "epsilon": float(result.epsilon),
        "delta": float(result.delta),
        "kind": result.kind.value,
        "accountant": result.accountant,
        "order": result.details.get("order"),
        "spec": spec,
        "inputs": dict(inputs, delta=args.delta),
        "details": dict(result.details),
        "claimed_epsilon": result.claimed_epsilon,
        "claim_holds": result.claim_holds,
        "note": result.note,
        "library_version": __version__,
        "versions": versions(),
    }
    return _jsonable(payload)


#: a required field is also satisfied by these (the library derives one from the other)
_ALTERNATIVES = {
    "noise_multiplier": ("noise_std",),
    "noise_std": ("noise_multiplier",),
    "steps_per_block": ("steps",),
    "steps": ("steps_per_block",),
}


def _alternatives(method: str, name: str) -> tuple[str, ...]:
    """Parameters that can stand for ``name`` on ``method`` (its own fields, or steps/noise_std,
    which every method's command accepts)."""
    fields = set(SPEC_CLASSES[method].field_names()) | set(_COMMON)
    return tuple(a for a in _ALTERNATIVES.get(name, ()) if a in fields)


def _plan_needs_one_of(method: str) -> tuple[str, ...]:
    """Parameters of which ``plan`` needs at least one (the accountant's
    ``plan_requires_one_of``, e.g. langevin: steps or noise_std); () when it chooses both."""
    from unlearn_theory.methods import get_method

    try:
        return tuple(getattr(get_method(method), "plan_requires_one_of", ()) or ())
    except UnlearnError:  # pragma: no cover - a spec class without a registered accountant
        return ()


def missing_parameters(method: str, command: str, params: dict) -> list[MethodOption]:
    """The required options of ``unlearn COMMAND METHOD`` that ``params`` does not give (a
    method the CLI does not know, or ``auto``: none; the library then names what it misses).
    A per-step schedule (a list) gives the step count. On ``plan``, where the accountant
    says it needs one of several parameters (``plan_requires_one_of``) and none is given, the
    first of them is reported (the error names the others)."""
    if method not in SPEC_CLASSES:
        return []
    schedule = any(isinstance(val, list | tuple) for val in params.values())
    missing = []
    for opt in method_options(method, command=command):
        if not opt.required:
            continue
        names = (opt.name, *_alternatives(method, opt.name))
        if any(params.get(n) is not None for n in names):
            continue
        if schedule and opt.name in ("steps", "steps_per_block"):
            continue
        missing.append(opt)
    one_of = _plan_needs_one_of(method) if command == "plan" else ()
    if one_of and all(params.get(n) is None for n in one_of):
        options = {o.name: o for o in method_options(method, command="certify")}
        if one_of[0] in options:
            missing.append(options[one_of[0]])
    return missing


def _check_required(method: str, command: str, params: dict) -> None:
    missing = missing_parameters(method, command, params)
    if missing:
        one_of = _plan_needs_one_of(method) if command == "plan" else ()
        flags = ", ".join(
            opt.flag
            if opt.name not in one_of
            else " or ".join("--" + n.replace("_", "-") for n in one_of)
            for opt in missing
        )
        raise _CliError(
            f"method {method!r} misses required parameter{'s' if len(missing) > 1 else ''} "
            f"{flags} (`unlearn {command} {method} --help` or `unlearn methods {method}` "
            "lists them all)"
        )


def methods_listing(name: str | None = None) -> list[dict]:
    """Per method (all, or ``name``): summary, description and its parameters, read from the
    spec class: ``required`` (plan and certify), ``chosen_by_plan`` (certify requires them),
    ``optional`` (with defaults), and the accountant's certify options.

    >>> (entry,) = methods_listing("output_perturbation")
    >>> [r["name"] for r in entry["required"]], [r["name"] for r in entry["chosen_by_plan"]]
    (['clip_initial'], ['noise_std'])
    """
    from unlearn_theory.methods import get_method

    names = list(SPEC_CLASSES) if name is None else [name]
    if name is not None and name not in SPEC_CLASSES:
        raise _CliError(
            f"invalid METHOD={name!r}: unknown method; known: {', '.join(sorted(SPEC_CLASSES))}"
        )
    out = []
    for method in names:
        plan_opts = {o.name: o for o in method_options(method, command="plan")}
        cert_opts = method_options(method, command="certify")
        rows = {"required": [], "chosen_by_plan": [], "optional": []}
        for opt in cert_opts:
            group = (
                "optional"
                if not opt.required
                else ("required" if plan_opts[opt.name].required else "chosen_by_plan")
            )
            row = {"name": opt.name, "flag": opt.flag, "kind": opt.kind, "help": opt.help}
            if group == "optional":
                row["default"] = opt.default
            alternatives = _alternatives(method, opt.name)
            if opt.required and alternatives:
                row["or"] = ["--" + a.replace("_", "-") for a in alternatives]
            rows[group].append(row)
        try:
            accountant = get_method(method)
            description = accountant.description
            options = sorted(accountant.certify_options)
        except UnlearnError:  # pragma: no cover - a spec class without a registered accountant
            description, options = "", []
        out.append(
            {
                "method": method,
                "summary": _summary(method),
                "description": description,
                **rows,
                "plan_needs_one_of": list(_plan_needs_one_of(method)),
                "certify_options": options,
            }
        )
    return out


def _format_listing(entries: list[dict]) -> str:
    lines = []
    width = max(
        (
            len(r["flag"]) + 1 + len(_METAVARS[r["kind"]])
            for e in entries
            for g in ("required", "chosen_by_plan", "optional")
            for r in e[g]
        ),
        default=10,
    )
    titles = {
        "required": "required (plan and certify):",
        "chosen_by_plan": "chosen by plan when omitted (required by certify):",
        "optional": "optional:",
    }
    for entry in entries:
        one_of = entry.get("plan_needs_one_of")
        titles["chosen_by_plan"] = (
            f"plan needs one of {', '.join(one_of)} and chooses the other (certify needs all):"
            if one_of
            else "chosen by plan when omitted (required by certify):"
        )
        lines.append(f"{entry['method']}: {entry['summary']}")
        if entry["description"]:
            lines.extend(
                textwrap.wrap(
                    entry["description"], 100, initial_indent="  ", subsequent_indent="  "
                )
            )
        for group, title in titles.items():
            if not entry[group]:
                continue
            lines.append(f"  {title}")
            for r in entry[group]:
                left = f"{r['flag']} {_METAVARS[r['kind']]}"
                text = r["help"]
                if r.get("or"):
                    text += f" (or {' / '.join(r['or'])})"
                if group == "optional" and r.get("default") is not None:
                    text += f" (default: {r['default']})"
                lines.extend(
                    textwrap.wrap(
                        text,
                        width=100,
                        initial_indent=f"    {left:<{width}}  ",
                        subsequent_indent=" " * (width + 6),
                    )
                )
        if entry["certify_options"]:
            lines.append(
                "  certify options (--param NAME=VALUE): " + ", ".join(entry["certify_options"])
            )
        lines.append("")
    return "\n".join(lines).rstrip("\n")


def _cmd_methods(args: argparse.Namespace) -> int:
    entries = methods_listing(args.name)
    if args.json:
        print(json.dumps(_jsonable(entries), indent=2))
    else:
        print(_format_listing(entries))
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
        "methods": _cmd_methods,
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
    """Run ``unlearn ARGS`` (default: ``sys.argv[1:]``); returns the exit status (0 success,
    1 a check failed, 2 bad input; argparse's own errors and ``--help`` raise SystemExit).

    >>> main(["certify", "output_perturbation", "--delta", "1e-5", "--noise-std", "8",
    ...       "--clip-initial", "1", "--claimed-epsilon", "0.5"])
    certified epsilon = 0.926342 at delta = 1e-05 (exact bound, method output_perturbation)
    NOT CERTIFIED: claimed epsilon=0.5, but the tight accountant certifies only epsilon=0.926342 (x1.85) at delta=1e-05
    1
    """
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
