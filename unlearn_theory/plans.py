"""The :class:`UnlearningPlan` record: what to run, and what it certifies. JSON only.

A plan is frozen. It stores every input the planner saw, the noise and step count it chose, the
(ε, δ) that the tight accountant certifies for *exactly* that configuration (re-checked after
calibration), the kind of that bound and the accountant that produced it, and -- for comparison --
the noise the published closed form would use ("paper mode") where that is defined.

A plan carries its spec (``plan.spec``, a :class:`~unlearn_theory.methods.MethodSpec`): the
complete configuration, so ``certify(plan.spec, delta=plan.delta).epsilon == plan.epsilon``.

Serialisation is JSON (``to_json`` / ``from_json``), never pickle. ``from_json`` validates the
schema version, the field set, the types and the ranges, and raises
:class:`~unlearn_theory.errors.InvalidParameterError` naming the offending field. Schema 2 adds
the ``spec`` object; a schema-1 file is upgraded on load by rebuilding the spec from its method,
inputs, noise_std and steps (or refused with a message saying how to re-plan). Schema 3 adds
``versions`` (the library, Python, numpy, scipy and mpmath versions that computed the plan), so a
plan file says what computed its certificate; a schema-1 or -2 file is upgraded with only the
library version it recorded.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from typing import Any

from ._version import __version__
from .bounds import BoundKind, certifies
from .errors import InvalidParameterError, UnlearnError
from .methods import MethodSpec, get_method, spec_from_dict

__all__ = ["UnlearningPlan", "SCHEMA_VERSION", "BOUND_KINDS"]

SCHEMA_VERSION = 3
#: the bound kinds a plan may report: those that certify (bounds.certifies)
BOUND_KINDS = tuple(kind.value for kind in BoundKind if certifies(kind))
_ACCOUNTING = ("tight", "paper")


def _library_version() -> str:
    return __version__


def _environment_versions() -> dict:
    """The versions of the code that computes a certificate: this library and its numerics."""
    import platform

    import mpmath
    import numpy
    import scipy

    return {
        "unlearn": __version__,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "mpmath": mpmath.__version__,
    }


def _jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays and tuples to plain JSON types; reject NaN/inf floats."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        np = None
    if np is not None:
        if isinstance(value, np.ndarray):
            return [_jsonable(x) for x in value.tolist()]
        if isinstance(value, np.generic):
            return _jsonable(value.item())
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            raise InvalidParameterError("value", value, "NaN cannot be stored in a plan")
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


@dataclass(frozen=True)
class UnlearningPlan:
    """A certified unlearning configuration (frozen; JSON round-trippable).

    Fields
    ------
    method, accounting : the method name (see ``planning.available_methods()``) and
        ``"tight"`` or ``"paper"``.
    noise_std : σ per coordinate of every noisy step (block-wise: the per-block σ_b).
    steps : number of noisy steps that run (block-wise: total over all blocks; output
        perturbation: 0, a single noise draw after the projection).
    epsilon, delta : the (ε, δ) CERTIFIED by the tight accountant for exactly this
        configuration (re-checked after calibration). In paper mode ε is the true certified ε of
        the published noise, which may exceed ``target_epsilon`` (then ``certifies_target`` is
        False).
    target_epsilon : the ε the caller asked for.
    bound_kind : "exact" or "upper"; accountant : which accountant certified it.
    certifies_target : epsilon <= target_epsilon.
    paper_noise_std, paper_epsilon : the published closed form's noise for the same steps and its
        true certified ε, where defined (None otherwise).
    inputs : every argument the planner received. details : method-specific extras (coefficient,
        order, steps_per_block, noise_multiplier, ...). alternatives : for "auto", the other
        methods considered. notes : human-readable remarks (side conditions, flags).
    spec : the method's spec (the complete configuration; JSON: its ``to_dict()``), or None for
        a plan built by hand.
    """

    method: str
    accounting: str
    noise_std: float
    steps: int
    epsilon: float
    delta: float
    target_epsilon: float
    bound_kind: str
    accountant: str
    certifies_target: bool
    inputs: dict = field(default_factory=dict)
    paper_noise_std: float | None = None
    paper_epsilon: float | None = None
    details: dict = field(default_factory=dict)
    alternatives: tuple = ()
    notes: tuple = ()
    schema_version: int = SCHEMA_VERSION
    library_version: str = field(default_factory=_library_version)
    spec: MethodSpec | None = None
    versions: dict = field(default_factory=_environment_versions)

    def __post_init__(self):
        # Normalise the free-form fields to their JSON form (lists, plain floats, "inf"), so that
        # ``from_json(p.to_json()) == p`` holds exactly.
        for name in ("inputs", "details"):
            val = self.__dict__[name]
            if isinstance(val, dict):
                object.__setattr__(self, name, _jsonable(val))
        for name in ("alternatives", "notes"):
            val = self.__dict__[name]
            if isinstance(val, (list, tuple)):
                object.__setattr__(self, name, tuple(_jsonable(list(val))))
        for name in ("noise_std", "epsilon", "delta", "target_epsilon"):
            val = self.__dict__[name]
            if _is_real(val):
                object.__setattr__(self, name, float(val))
        for name in ("paper_noise_std", "paper_epsilon"):
            val = self.__dict__[name]
            if _is_real(val):
                object.__setattr__(self, name, float(val))
        if isinstance(self.spec, dict):
            object.__setattr__(self, "spec", spec_from_dict(self.spec))
        _validate_fields(self.__dict__)

    # dict fields make the default hash unusable; plans are compared by value.
    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict:
        """Plain-JSON dictionary (floats, ints, strings, lists, dicts; inf as "inf")."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["spec"] = None if self.spec is None else self.spec.to_dict()
        return _jsonable(out)

    def to_json(self, *, indent: int | None = 2) -> str:
        """JSON text; ``UnlearningPlan.from_json(p.to_json()) == p``.

        >>> import json
        >>> from unlearn_theory import plan
        >>> p = plan("output_perturbation", epsilon=1.0, delta=1e-5, clip_initial=1.0)
        >>> data = json.loads(p.to_json())
        >>> data["method"], data["bound_kind"], data["spec"]["clip_initial"]
        ('output_perturbation', 'exact', 1.0)
        """
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict) -> UnlearningPlan:
        if not isinstance(data, dict):
            raise InvalidParameterError("plan", data, "must be a JSON object")
        known = set(cls.__dataclass_fields__)
        extra = set(data) - known
        if extra:
            raise InvalidParameterError("plan", sorted(extra), "unknown fields in plan JSON")
        required = {
            "method",
            "accounting",
            "noise_std",
            "steps",
            "epsilon",
            "delta",
            "target_epsilon",
            "bound_kind",
            "accountant",
            "certifies_target",
            "schema_version",
            "library_version",
        }
        missing = required - set(data)
        if missing:
            raise InvalidParameterError("plan", sorted(missing), "missing fields in plan JSON")
        kwargs = dict(data)
        if data["schema_version"] not in (1, 2, SCHEMA_VERSION):
            raise InvalidParameterError(
                "schema_version",
                data["schema_version"],
                f"unsupported plan schema (this library reads versions 1 to {SCHEMA_VERSION})",
            )
        if data["schema_version"] == 1:
            kwargs = _upgrade_schema_1(kwargs)
        if kwargs["schema_version"] == 2:  # schema 2 -> 3: only the library version is known
            if "versions" in kwargs:
                raise InvalidParameterError(
                    "versions", kwargs["versions"], "is a schema-3 field in a schema-2 plan"
                )
            kwargs["versions"] = {"unlearn": str(kwargs["library_version"])}
            kwargs["schema_version"] = SCHEMA_VERSION
        elif "versions" not in kwargs:
            raise InvalidParameterError("plan", ["versions"], "missing fields in plan JSON")
        for name in ("epsilon", "paper_epsilon", "paper_noise_std"):
            if kwargs.get(name) == "inf":
                kwargs[name] = math.inf
        kwargs["alternatives"] = tuple(kwargs.get("alternatives", ()) or ())
        kwargs["notes"] = tuple(kwargs.get("notes", ()) or ())
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> UnlearningPlan:
        """Parse and validate a plan written by :meth:`to_json` (never unpickles anything).

        >>> from unlearn_theory import plan
        >>> p = plan("output_perturbation", epsilon=1.0, delta=1e-5, clip_initial=1.0)
        >>> UnlearningPlan.from_json(p.to_json()) == p
        True
        >>> UnlearningPlan.from_json('{"method": "x"}')  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        unlearn_theory.errors.InvalidParameterError: invalid plan=...: missing fields in plan JSON
        """
        if not isinstance(text, (str, bytes, bytearray)):
            raise InvalidParameterError("text", text, "must be JSON text")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidParameterError(
                "text", str(text)[:60], f"is not valid JSON: {exc}"
            ) from exc
        return cls.from_dict(data)


def _upgrade_schema_1(data: dict) -> dict:
    """A schema-1 plan (no spec) as schema 2: its spec rebuilt from method, inputs, noise, steps."""
    data = dict(data)
    method = data.get("method")
    try:
        accountant = get_method(method)
        accepted = accountant.certify_parameters
        inputs = data.get("inputs") or {}
        params = {k: val for k, val in inputs.items() if k in accepted and val is not None}
        for key, val in params.items():
            if val == "inf":
                params[key] = math.inf
        params.pop("noise_multiplier", None)
        params["noise_std"] = data["noise_std"]
        params["steps"] = data["steps"]
        spec = accountant.build_spec(**params)
    except (UnlearnError, TypeError, ValueError, KeyError) as err:
        raise InvalidParameterError(
            "schema_version",
            1,
            f"this plan was written with plan schema 1 (no spec) and its spec cannot be rebuilt "
            f"({err}); re-plan it with unlearn_theory.plan({method!r}, epsilon=..., delta=..., "
            "**inputs) and save the new plan",
        ) from None
    data["spec"] = spec
    data["schema_version"] = 2
    return data


def _is_real(x) -> bool:
    try:
        import numpy as np

        if isinstance(x, np.generic) and not isinstance(x, np.bool_):
            return isinstance(x, (np.integer, np.floating))
    except ImportError:  # pragma: no cover
        pass
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _validate_fields(d: dict) -> None:
    def need(cond: bool, name: str, req: str):
        if not cond:
            raise InvalidParameterError(name, d.get(name), req)

    need(isinstance(d["method"], str) and d["method"] != "", "method", "must be a non-empty string")
    need(d["accounting"] in _ACCOUNTING, "accounting", f"must be one of {_ACCOUNTING}")
    need(
        _is_real(d["noise_std"]) and math.isfinite(d["noise_std"]) and d["noise_std"] > 0,
        "noise_std",
        "must be a finite number > 0",
    )
    need(
        isinstance(d["steps"], int) and not isinstance(d["steps"], bool) and d["steps"] >= 0,
        "steps",
        "must be an integer >= 0",
    )
    eps = d["epsilon"]
    need(_is_real(eps) and not math.isnan(eps) and eps >= 0, "epsilon", "must be a number >= 0")
    need(
        _is_real(d["delta"]) and 0.0 < d["delta"] < 1.0,
        "delta",
        "must lie in (0, 1)",
    )
    need(
        _is_real(d["target_epsilon"])
        and math.isfinite(d["target_epsilon"])
        and d["target_epsilon"] > 0,
        "target_epsilon",
        "must be a finite number > 0",
    )
    need(d["bound_kind"] in BOUND_KINDS, "bound_kind", f"must be one of {BOUND_KINDS}")
    need(isinstance(d["accountant"], str) and d["accountant"], "accountant", "must be a string")
    need(isinstance(d["certifies_target"], bool), "certifies_target", "must be a bool")
    need(
        d["certifies_target"] == (eps <= d["target_epsilon"]),
        "certifies_target",
        "must equal epsilon <= target_epsilon",
    )
    need(isinstance(d["inputs"], dict), "inputs", "must be a JSON object")
    need(isinstance(d["details"], dict), "details", "must be a JSON object")
    for name in ("paper_noise_std", "paper_epsilon"):
        val = d[name]
        need(
            val is None or (_is_real(val) and not math.isnan(val) and val >= 0),
            name,
            "must be null or a number >= 0",
        )
    need(isinstance(d["alternatives"], tuple), "alternatives", "must be a list")
    for alt in d["alternatives"]:
        need(isinstance(alt, dict), "alternatives", "every entry must be a JSON object")
    need(isinstance(d["notes"], tuple), "notes", "must be a list")
    for note in d["notes"]:
        need(isinstance(note, str), "notes", "every entry must be a string")
    need(
        isinstance(d["schema_version"], int) and d["schema_version"] == SCHEMA_VERSION,
        "schema_version",
        f"must be {SCHEMA_VERSION}",
    )
    need(isinstance(d["library_version"], str), "library_version", "must be a string")
    need(
        isinstance(d["versions"], dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in d["versions"].items()),
        "versions",
        "must be a JSON object of strings (package -> version)",
    )
    spec = d["spec"]
    need(spec is None or isinstance(spec, MethodSpec), "spec", "must be a method spec or null")
    need(
        spec is None or spec.method == d["method"],
        "spec",
        f"must be a spec of method {d['method']!r}",
    )
