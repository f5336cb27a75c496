r"""Certificates: what ran, the guarantee the accountant gives for it, and their verification.

A run's output is split in two (schema version 2; docs/certificate_promises.md, "What to
publish"):

* the PUBLIC certificate (JSON, schema ``"unlearn-certificate"``, :data:`SCHEMA_VERSION`),
  meant to be published next to the model. It holds only public inputs of the run and
  functions of the released model:

  - ``plan`` (the plan or spec object as given) and ``plan_sha256`` (SHA-256 of its canonical
    JSON), ``spec`` (the planned method spec);
  - ``ran``: status ("completed" or "stopped"), steps planned and run, the spec of what ran
    (``spec`` with the steps actually run; None when what ran is not a run of the method, e.g.
    a block-wise run stopped before its last block), its update rule (phases are the run-length
    encoding of the per-step ops), a per-quantity run-length encoded ``schedule`` (σ, γ, λ, C1,
    radii), the partition and rotation check, batch sizes (an unlearning run's: drawn from the
    retain set), coverage (noised and public parameters, buffer policy), dtype and device; for
    a ``dp_sgd_group`` run (``unlearn_torch.train_dp_sgd``, through Opacus) ``ran.dp_sgd``: the
    sampler ("poisson"), sample rate, expected batch size q·n, steps and optimizer steps, noise
    multiplier, clip (max_grad_norm) and the Opacus version; and ``distributed``: None for a
    single-process run, else the world size, backend, noise mode ("broadcast": rank 0 draws and
    broadcasts; "replicated": every rank draws the same keyed noise), the number of draws
    broadcast, the retain shard sizes, the gradient reduction and the parameter checksum
    comparisons (how often, how many, all matched, the final checksum);
  - ``noise``: key scheme, the salted seed commitment and the guard's configuration (draws,
    false-alarm rate, bands) and ``passed``;
  - ``model``: SHA-256 of the model state after the noisy phase and at the end (after
    optional noiseless fine-tuning on retain data, which is post-processing);
  - ``data``: retain (training) and forget sizes;
  - ``environment``: library, torch, CUDA and Python versions;
  - ``guarantee``: the (ε, δ) that ``unlearn_theory.certify`` gives for the spec that ran, its
    bound kind and accountant -- ε is an UPPER bound (or exact) on the privacy loss of what ran;
  - ``run_record``: a salted SHA-256 commitment to the private run record
    (:func:`commit_record`);
  - ``content_sha256``: SHA-256 of the canonical JSON of every other field (detects accidental
    edits; an adversary can recompute it, which is why :func:`verify_certificate` re-derives the
    guarantee instead of trusting it).

* the PRIVATE run record (schema ``"unlearn-run-record"``, ``run_record.json``, mode 0600): the
  fields of :data:`PRIVATE_FIELDS` at their schema-1 paths (starting model's SHA-256,
  projection and clipping statistics of the iterates, the guard's observed noise statistics,
  the SHA-256 of the sorted retain and forget ids, timing; a DP-SGD run's Poisson batch sizes),
  the SHA-256 of the history, the commitment's salt and the certificate's ``content_sha256``.

Schema-1 certificates (everything in one file) still verify. Files are written atomically
(temporary file in the same folder, then :func:`os.replace`).

This module imports torch only to hash a model file and rebuild its block partition.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path

import unlearn_theory
from unlearn_theory.errors import InvalidParameterError, NumericalPrecisionError
from unlearn_theory.methods import MethodSpec, spec_from_dict
from unlearn_theory.update_rule import (
    AddNoise,
    ClipGradient,
    Gradient,
    GradientStep,
    ProjectBall,
    UpdateRule,
    WeightDecay,
)

from ._partition_kinds import PARTITION_KINDS, ROTATION_TOLERANCE

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "canonical_json",
    "sha256_json",
    "jsonable",
    "write_json_atomic",
    "state_sha256",
    "spec_of_plan",
    "spec_for_steps",
    "schedule_rle",
    "guarantee_of",
    "verify_certificate",
    "verify_plan",
    "split_certificate",
    "merge_record",
    "commit_record",
    "load_record",
    "PRIVATE_FIELDS",
]

SCHEMA = "unlearn-certificate"
SCHEMA_VERSION = 2
SUPPORTED_SCHEMA_VERSIONS = (1, 2)
RECORD_SCHEMA = "unlearn-run-record"
RECORD_SCHEMA_VERSION = 1
RECORD_FILE = "run_record.json"
RECORD_COMMIT_SCHEME = "sha256(salt || canonical JSON of the record without salt and binding)"

#: Fields of a run's full record that are functions of quantities the guarantee does not
#: protect (the starting model, intermediate iterates, the raw noise, the data's ids, timing):
#: they go to the private run record, never into the public certificate. Paths into the
#: certificate dict; a path absent from a run is skipped.
PRIVATE_FIELDS = (
    ("model", "sha256_before"),
    ("ran", "projections"),
    ("ran", "clipping"),
    ("ran", "noise_scale"),
    ("data", "retain_ids_sha256"),
    ("data", "forget_ids_sha256"),
    ("data", "training_ids_sha256"),
    ("noise", "guard", "q_min"),
    ("noise", "guard", "q_max"),
    ("noise", "guard", "max_abs_z"),
    ("noise", "guard", "max_abs_correlation"),
    ("noise", "guard", "pooled_q"),
    ("wall_seconds",),
)
#: Private only for a DP-SGD run: its realised Poisson batch sizes count the sampled records
#: of the full training set (a forget-set member is in a batch or not); an unlearning run's
#: batches are drawn from the retain set, which both sides of the guarantee share.
PRIVATE_FIELDS_DP_SGD = (("ran", "batch_sizes"),)

_REL_TOL = 1e-9


# -- JSON helpers -----------------------------------------------------------------------------
def jsonable(value):
    """Plain JSON value: non-finite floats as "inf"/"-inf"/None, tuples as lists."""
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(x) for k, x in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(x) for x in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    try:  # numpy / torch scalars
        return jsonable(value.item())
    except AttributeError:
        return str(value)


def canonical_json(obj) -> str:
    return json.dumps(jsonable(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)


def sha256_json(obj) -> str:
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()


def write_json_atomic(path, obj, *, mode: int | None = None) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically (temporary file + os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(jsonable(obj), indent=2, sort_keys=True, allow_nan=False) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with _suppress():
            os.unlink(tmp)
        raise
    return path


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return True


def state_sha256(state: dict) -> str:
    """SHA-256 of a state dict: for each key in sorted order, its name, dtype, shape and the
    raw bytes of the tensor (on the CPU, contiguous)."""
    import torch

    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key]
        if not isinstance(t, torch.Tensor):
            h.update(f"{key}|object|{t!r}\n".encode())
            continue
        t = t.detach().to("cpu").contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


# -- specs, plans and the accountant ----------------------------------------------------------
def spec_of_plan(plan) -> MethodSpec:
    """The MethodSpec of ``plan``: ``plan.spec`` (an UnlearningPlan), a spec itself, a plan
    dict (schema-1 plans are upgraded by :meth:`UnlearningPlan.from_dict`), a spec dict, or a
    dict ``{"spec": {...}, ...}``."""
    if isinstance(plan, MethodSpec):
        return plan
    spec = getattr(plan, "spec", None)
    if isinstance(spec, MethodSpec):
        return spec
    if isinstance(spec, dict):
        return spec_from_dict(spec)
    data = plan.to_dict() if hasattr(plan, "to_dict") else plan
    if not isinstance(data, dict):
        raise InvalidParameterError(
            "plan", type(plan).__name__, "must be an UnlearningPlan, a MethodSpec or a dict"
        )
    if "schema_version" in data and "accounting" in data:
        from unlearn_theory.plans import UnlearningPlan

        spec = UnlearningPlan.from_dict(data).spec
    elif isinstance(data.get("spec"), dict):
        spec = spec_from_dict(data["spec"])
    elif "method" in data:
        spec = spec_from_dict(data)
    else:
        raise InvalidParameterError("plan", sorted(data)[:8], "has no 'method' or 'spec' field")
    if not isinstance(spec, MethodSpec):
        raise InvalidParameterError("plan", data.get("method"), "carries no method spec")
    return spec


_CERTIFIED: dict = {}  # (library version, canonical spec, delta) -> result; certify is pure
_CERTIFIED_MAX = 64


def _certify_spec(spec: MethodSpec, delta: float):
    """The ONE call into the accountant: ``unlearn_theory.certify(spec, delta=delta)`` (a
    CertifiedEpsilon, which is a :class:`~unlearn_theory.bounds.Bound`).

    Results are memoised per (library version, canonical spec JSON, δ) in this process: a run
    certifies its spec before and after it runs and verification certifies it again, and some
    accountants (DP-SGD's PLD) take seconds. Refusals (errors) are not memoised."""
    key = (unlearn_theory.__version__, canonical_json(spec.to_dict()), float(delta))
    hit = _CERTIFIED.get(key)
    if hit is None:
        hit = unlearn_theory.certify(spec, delta=delta)
        if len(_CERTIFIED) >= _CERTIFIED_MAX:
            _CERTIFIED.pop(next(iter(_CERTIFIED)))
        _CERTIFIED[key] = hit
    return hit


def guarantee_of(spec: MethodSpec | None, delta: float, *, target_epsilon=None) -> dict:
    """The certificate's ``guarantee`` block for ``spec`` (None: nothing certified, ε = inf)."""
    reason = "what ran is not a complete run of the method (no bound applies)"
    res = None
    if spec is not None:
        try:
            res = _certify_spec(spec, delta)
        except (InvalidParameterError, NumericalPrecisionError) as exc:
            reason = f"the accountant does not certify what ran: {exc}"
    if res is None:
        return {
            "epsilon": math.inf,
            "delta": float(delta),
            "bound_kind": None,
            "accountant": None,
            "certified": False,
            "target_epsilon": target_epsilon,
            "certifies_target": False,
            "reason": reason,
        }
    # a CertifiedEpsilon (epsilon, delta, kind, accountant) or a bounds.Bound (value, kind,
    # source, details)
    eps = float(res)
    kind = str(getattr(res.kind, "value", res.kind))
    certified = kind in ("exact", "upper") and math.isfinite(eps)
    return {
        "epsilon": eps,
        "delta": float(getattr(res, "delta", delta)),
        "bound_kind": kind,
        "accountant": str(getattr(res, "accountant", None) or getattr(res, "source", "")),
        "certified": certified,
        "target_epsilon": target_epsilon,
        "certifies_target": bool(certified and (target_epsilon is None or eps <= target_epsilon)),
    }


def spec_for_steps(spec: MethodSpec, steps: int) -> MethodSpec | None:
    """The spec of a run of ``spec`` stopped after ``steps`` noisy steps (the prologue ran),
    or None when that is not a run of the method (no bound applies)."""
    total = spec.steps_total
    if steps == total:
        return spec
    if steps > total or steps < 0:
        raise InvalidParameterError("steps", steps, f"the spec has {total} steps")
    method = spec.method
    if method == "gradient_clipping":
        if steps < 1:
            return None
        changes = {"steps": steps}
        for name in ("clip_gradient", "learning_rate", "weight_decay", "noise_std"):
            val = getattr(spec, name)
            if isinstance(val, tuple):
                changes[name] = val[:steps]
        return spec.replace(**changes)
    if method in ("model_clipping", "langevin"):
        return spec.replace(steps=steps)
    if method == "dp_sgd_group":
        return spec.replace(steps=steps) if steps >= 1 else None
    return None  # block-wise stopped before its last block; output perturbation has no steps


_QUANTITIES = (
    (AddNoise, "std", "noise_std"),
    (GradientStep, "learning_rate", "learning_rate"),
    (WeightDecay, "weight_decay", "weight_decay"),
    (ClipGradient, "clip", "clip_gradient"),
    (ProjectBall, "radius", "projection_radius"),
    (Gradient, "per_example_clip", "per_example_clip"),
)


def schedule_rle(rule: UpdateRule) -> dict:
    """Per-quantity run-length encoding over the noisy steps: name -> [[value, steps], ...]
    (values per step in order; a step with two ops of one kind lists both values as a list)."""
    out: dict[str, list] = {}
    for ph in rule.phases:
        for cls, attr, name in _QUANTITIES:
            vals = [getattr(op, attr) for op in ph.ops if isinstance(op, cls)]
            vals = [x for x in vals if x is not None]
            if not vals:
                continue
            val = vals[0] if len(vals) == 1 else vals
            runs = out.setdefault(name, [])
            if runs and runs[-1][0] == val:
                runs[-1][1] += ph.steps
            else:
                runs.append([val, ph.steps])
    blocks = [[ph.block, ph.steps] for ph in rule.phases]
    if any(b is not None for b, _ in blocks):
        out["block"] = blocks
    return out


# -- public certificate and private run record ------------------------------------------------
def _private_paths(full: dict) -> tuple:
    method = (full.get("spec") or {}).get("method")
    extra = PRIVATE_FIELDS_DP_SGD if method == "dp_sgd_group" else ()
    return PRIVATE_FIELDS + extra


def _pop_path(src: dict, path: tuple):
    node = src
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            return False, None
    if not isinstance(node, dict) or path[-1] not in node:
        return False, None
    return True, node.pop(path[-1])


def _put_path(dst: dict, path: tuple, value) -> None:
    node = dst
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


def commit_record(record: dict) -> str:
    """Salted commitment to a run record: SHA-256 of the salt's bytes followed by the
    canonical JSON of the record without ``salt`` and ``certificate_sha256`` (the binding to the
    certificate, which is written after the commitment). The salt (32 random bytes) makes the
    commitment hiding even when the record's content has little entropy (a hash of the
    starting model alone could be matched against a list of candidate models)."""
    try:
        salt = bytes.fromhex(record["salt"])
    except (KeyError, TypeError, ValueError):
        raise InvalidParameterError("record", "salt", "holds no hex salt") from None
    body = {k: val for k, val in record.items() if k not in ("salt", "certificate_sha256")}
    return hashlib.sha256(salt + canonical_json(body).encode()).hexdigest()


def split_certificate(full: dict, *, history=None, salt: bytes | None = None):
    """(public certificate, private run record) of a run's full record ``full`` (the
    certificate's fields with nothing removed, no ``content_sha256``).

    The fields of :data:`PRIVATE_FIELDS` move to the record, at the same paths; the record
    also holds the SHA-256 of the run's history (the history is private as a whole), a fresh
    salt and, after the certificate is hashed, ``certificate_sha256`` (the certificate's
    ``content_sha256``). The certificate holds ``run_record``: the salted commitment to the
    record (:func:`commit_record`), so that whoever is shown the record can check it is the
    run's, while the certificate alone reveals nothing of it."""
    import copy
    import secrets

    public = copy.deepcopy(jsonable(full))
    public.pop("content_sha256", None)
    record = {
        "schema": RECORD_SCHEMA,
        "schema_version": RECORD_SCHEMA_VERSION,
        "note": "PRIVATE: statistics of the starting model, of intermediate iterates and of "
        "the noise, the data's id hashes and timing; not covered by the guarantee. Keep with "
        "the seed file.",
    }
    for path in _private_paths(public):
        found, value = _pop_path(public, path)
        if found:
            _put_path(record, path, value)
    record["history_sha256"] = None if history is None else sha256_json(history)
    record["salt"] = (secrets.token_bytes(32) if salt is None else bytes(salt)).hex()
    public["schema_version"] = SCHEMA_VERSION
    public["run_record"] = {
        "scheme": RECORD_COMMIT_SCHEME,
        "sha256": commit_record(record),
        "file": RECORD_FILE,
    }
    public["content_sha256"] = sha256_json(public)
    record["certificate_sha256"] = public["content_sha256"]
    return public, jsonable(record)


def merge_record(cert: dict, record: dict | None) -> dict:
    """The run's full record: the certificate with the private fields of ``record`` put back
    at their paths (a copy; ``record`` None: a copy of ``cert``)."""
    import copy

    full = copy.deepcopy(cert)
    if record:
        for path in _private_paths(full):
            found, value = _pop_path(copy.deepcopy(record), path)
            if found:
                _put_path(full, path, value)
    return full


def load_record(path) -> dict:
    """A run record file (``run_record.json``); raises InvalidParameterError naming the path."""
    try:
        rec = _load_json(path)
    except InvalidParameterError:
        raise InvalidParameterError(
            "record_path", str(path), "is not a readable JSON object"
        ) from None
    if rec.get("schema") != RECORD_SCHEMA:
        raise InvalidParameterError(
            "record_path", str(path), f"is not a run record (schema={rec.get('schema')!r})"
        )
    return rec


_HEX64 = frozenset("0123456789abcdef")


def _is_sha256(x) -> bool:
    return isinstance(x, str) and len(x) == 64 and set(x) <= _HEX64


def _check_record(cert: dict, record: dict, problems: list[str]) -> None:
    """The record against the certificate: schema, the salted commitment, the binding to the
    certificate's content hash, and its content (hash formats, the guard's statistics inside
    the guard's own bands, fractions in [0, 1], the projections' radii and norms after
    projection against the recorded schedule)."""
    if record.get("schema_version") != RECORD_SCHEMA_VERSION:
        problems.append(f"unsupported run record schema_version {record.get('schema_version')!r}")
        return
    commitment = (cert.get("run_record") or {}).get("sha256")
    try:
        opened = commit_record(record)
    except InvalidParameterError:
        opened = None
    if opened is None or opened != commitment:
        problems.append("the run record does not open the certificate's run_record commitment")
    if record.get("certificate_sha256") != cert.get("content_sha256"):
        problems.append("the run record is bound to another certificate (certificate_sha256)")
    if not _is_sha256((record.get("model") or {}).get("sha256_before")):
        problems.append("the run record holds no SHA-256 of the starting model")
    rdata = record.get("data") or {}
    ids_keys = [k for k in ("retain_ids_sha256", "training_ids_sha256") if k in rdata]
    if not ids_keys or not all(_is_sha256(rdata[k]) for k in ids_keys):
        problems.append("the run record holds no SHA-256 of the retain (training) ids")
    forget_size = (cert.get("data") or {}).get("forget_size")
    fsha = rdata.get("forget_ids_sha256")
    if (forget_size is None) != (fsha is None) or (fsha is not None and not _is_sha256(fsha)):
        problems.append("the run record's forget ids hash does not match the forget size")
    guard_pub = (cert.get("noise") or {}).get("guard") or {}
    guard = (record.get("noise") or {}).get("guard") or {}
    bands = list((guard_pub.get("bands") or {}).values())
    if guard_pub.get("draws") and bands:
        try:
            lo = min(float(b["q_low"]) for b in bands)
            hi = max(float(b["q_high"]) for b in bands)
            q_min, q_max = float(guard["q_min"]), float(guard["q_max"])
            pooled = float(guard["pooled_q"])
            inside = lo <= q_min <= q_max <= hi
            if not (inside and q_min * (1 - 1e-9) <= pooled <= q_max * (1 + 1e-9)):
                problems.append("the run record's noise statistics lie outside the guard's bands")
            cos = [b.get("cosine_bound") for b in bands if b.get("cosine_bound") is not None]
            corr = guard.get("max_abs_correlation")
            if corr is not None and cos and float(corr) > max(float(c) for c in cos):
                problems.append("the run record's noise correlation exceeds the guard's bound")
        except (KeyError, TypeError, ValueError):
            problems.append("the run record lacks the noise guard's statistics")
    ran = record.get("ran") or {}
    radii = set()
    for val, _ in ((cert.get("ran") or {}).get("schedule") or {}).get("projection_radius", []):
        for r in val if isinstance(val, list) else [val]:
            radii.add(float(_as_float(r)))
    for key, rec in (ran.get("projections") or {}).items():
        try:
            radius = float(_as_float(rec["radius"]))
            frac = rec.get("fraction_projected")
            after = (rec.get("norm_after") or {}).get("max")
            if radii and not any(_close(radius, r) for r in radii):
                problems.append(f"projection {key}: radius {radius} is not in the schedule")
            if frac is not None and not 0 <= float(frac) <= 1:
                problems.append(f"projection {key}: fraction_projected {frac} not in [0, 1]")
            if after is not None and float(after) > radius * (1 + 1e-4):
                problems.append(f"projection {key}: a norm after projection exceeds its radius")
        except (KeyError, TypeError, ValueError):
            problems.append(f"projection {key}: unreadable record")
    for key, rec in (ran.get("clipping") or {}).items():
        frac = rec.get("fraction_clipped") if isinstance(rec, dict) else "?"
        try:
            if frac is not None and not 0 <= float(frac) <= 1:
                raise ValueError
        except (TypeError, ValueError):
            problems.append(f"clipping {key}: fraction_clipped {frac!r} not in [0, 1]")


def _check_no_private(cert: dict, problems: list[str]) -> None:
    """A public (schema-2) certificate must not carry a private field."""
    leaked = []
    for path in _private_paths(cert):
        found, _ = _pop_path(json.loads(canonical_json(cert)), path)
        if found:
            leaked.append(".".join(path))
    if leaked:
        problems.append(f"the public certificate carries private fields: {', '.join(leaked)}")
    rr = cert.get("run_record")
    if not isinstance(rr, dict) or not _is_sha256(rr.get("sha256")):
        problems.append("the certificate carries no run_record commitment")


# -- verification -----------------------------------------------------------------------------
def _close(a: float, b: float) -> bool:
    return a == b or abs(a - b) <= _REL_TOL * max(abs(a), abs(b))


def _as_float(x):
    if x == "inf":
        return math.inf
    return float(x)


def _check_guarantee(
    claimed: dict, spec, delta, problems: list[str], what: str, *, same_code: bool = True
) -> None:
    """A recorded ε below the recomputed one is always a problem; with ``same_code`` (a
    certificate, computed by this very helper) any relative difference above 1e-6 is too.
    A plan's ε may legitimately lie above ``certify``'s (the planner's own search)."""
    try:
        fresh = guarantee_of(spec, delta)
    except Exception as exc:  # the accountant refuses the spec: nothing certified
        problems.append(f"{what}: the accountant refuses the recorded spec: {exc}")
        return
    eps_claim = _as_float(claimed.get("epsilon", math.inf))
    eps_true = fresh["epsilon"]
    if eps_claim < eps_true and not _close(eps_claim, eps_true):
        problems.append(
            f"{what}: recorded epsilon {eps_claim:.6g} is below the certified epsilon "
            f"{eps_true:.6g} of the recorded spec at delta={delta:g}"
        )
    elif same_code and abs(eps_claim - eps_true) > 1e-6 * max(abs(eps_true), 1e-300):
        problems.append(
            f"{what}: recorded epsilon {eps_claim:.6g} differs from the recomputed {eps_true:.6g}"
        )
    kind_ok = claimed.get("bound_kind") == fresh["bound_kind"] or (
        not same_code and claimed.get("bound_kind") == "upper" and fresh["bound_kind"] == "exact"
    )
    if not kind_ok:
        problems.append(
            f"{what}: recorded bound kind {claimed.get('bound_kind')!r} differs from "
            f"{fresh['bound_kind']!r}"
        )


def _load_json(path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidParameterError(
            "path", str(path), f"is not a readable JSON file: {exc}"
        ) from None
    if not isinstance(data, dict):
        raise InvalidParameterError("path", str(path), "does not hold a JSON object")
    return data


def _check_dp_sgd_record(ran: dict, spec, problems: list[str]) -> None:
    """A ``dp_sgd_group`` certificate must record a DP-SGD run (``ran["dp_sgd"]``, written by
    ``unlearn_torch.train_dp_sgd``) whose sampling, steps, noise and clip are the spec's: the
    accountant certifies Poisson sampling at rate q for exactly T steps, nothing else."""
    rec = ran.get("dp_sgd")
    if not isinstance(rec, dict):
        problems.append("a dp_sgd_group certificate without its DP-SGD record (ran.dp_sgd)")
        return
    if rec.get("sampler") != "poisson":
        problems.append(f"DP-SGD sampler {rec.get('sampler')!r} is not Poisson (not certified)")
    if spec is None:
        return
    steps_run = ran.get("steps_run")
    for name in ("steps", "optimizer_steps"):
        if rec.get(name) != spec.steps or steps_run != spec.steps:
            problems.append(
                f"DP-SGD {name}={rec.get(name)!r} (steps_run={steps_run!r}) differs from the "
                f"spec's {spec.steps} steps"
            )
    for name, want in (
        ("sample_rate", spec.sample_rate),
        ("noise_multiplier", spec.noise_multiplier),
        ("max_grad_norm", spec.clip_gradient),
        ("learning_rate", spec.learning_rate),
    ):
        got = rec.get(name)
        if got is None or want is None or not _close(float(got), float(want)):
            problems.append(f"DP-SGD {name}={got!r} differs from the spec's {want!r}")
    try:
        expected = float(rec["sample_rate"]) * int(rec["training_size"])
        if not _close(float(rec["expected_batch_size"]), expected):
            problems.append("DP-SGD expected_batch_size is not sample_rate * training_size")
    except (KeyError, TypeError, ValueError):
        problems.append("DP-SGD record lacks sample_rate, training_size or expected_batch_size")


def _check_distributed(rec, guard: dict, retain_size, problems: list[str]) -> None:
    """A distributed run's record: a known noise mode, a world size, checksums that matched
    and (broadcast mode) every guarded draw broadcast from rank 0."""
    if rec is None:
        return
    if not isinstance(rec, dict):
        problems.append("ran.distributed is not a record")
        return
    if rec.get("noise") not in ("broadcast", "replicated"):
        problems.append(f"unknown distributed noise mode {rec.get('noise')!r}")
    world = rec.get("world_size")
    if not isinstance(world, int) or world < 1:
        problems.append(f"distributed world_size {world!r} is not a positive integer")
    sizes = rec.get("shard_sizes") or []
    if not isinstance(sizes, list) or len(sizes) != world or any(int(n) < 1 for n in sizes):
        problems.append("distributed shard_sizes do not give one non-empty shard per rank")
    elif sum(int(n) for n in sizes) != retain_size:
        problems.append("distributed shard sizes do not add up to the retain size")
    checksum = rec.get("checksum") or {}
    if checksum.get("matched") is not True or not checksum.get("checks"):
        problems.append("the ranks' parameter checksums were not compared or did not match")
    if rec.get("noise") == "broadcast" and rec.get("noise_draws_broadcast") != guard.get("draws"):
        problems.append("not every guarded noise draw was broadcast from rank 0")


def _check_partition(ran: dict, spec, problems: list[str]) -> None:
    """The recorded block partition against the spec's blocks and the noised dimension: kind
    known, one non-empty block per spec block, sizes summing to d, a seed exactly for the
    seeded kinds, and for ``"rotations"`` the rotation's seed and its passed isometry check."""
    try:
        blocks = spec.update_rule().blocks
    except Exception:  # dp_sgd_group and other specs without an update rule
        blocks = 1
    part = ran.get("partition")
    if blocks <= 1:
        if part is not None:
            problems.append("a partition is recorded for a method without blocks")
        return
    if not isinstance(part, dict):
        problems.append(f"the spec has {blocks} blocks but no partition is recorded")
        return
    kind, seed, sizes = part.get("kind"), part.get("seed"), part.get("sizes")
    if kind not in PARTITION_KINDS:
        problems.append(f"unknown partition kind {kind!r}")
    if part.get("blocks") != blocks or not isinstance(sizes, list) or len(sizes) != blocks:
        problems.append(f"the partition does not have the spec's {blocks} blocks")
    elif not all(isinstance(n, int) and n >= 1 for n in sizes):
        problems.append("the partition has an empty block")
    else:
        dim = (ran.get("coverage") or {}).get("dimension")
        if sum(sizes) != dim:
            problems.append(f"the partition's block sizes add up to {sum(sizes)}, not d={dim}")
    seeded = kind in ("random", "rotations")
    if seeded != (isinstance(seed, int) and seed >= 0):
        problems.append(f"partition {kind!r} records seed {seed!r}")
    if kind == "rotations":
        rot = part.get("rotation") or {}
        if rot.get("seed") != seed:
            problems.append("the rotation's seed differs from the partition's")
        check = ran.get("rotation_check") or {}
        tol = check.get("tolerance")
        errs = [check.get(k) for k in ("isometry", "inverse", "inverse_transposed")]
        if not (
            isinstance(tol, (int, float))
            and tol <= ROTATION_TOLERANCE
            and all(isinstance(e, (int, float)) and 0 <= e <= tol for e in errs)
        ):
            problems.append(f"the rotation's isometry check is missing or failed: {check}")
    elif ran.get("rotation_check") is not None:
        problems.append(f"a rotation check is recorded for partition {kind!r}")


def _check_partition_rebuilt(ran: dict, state: dict, problems: list[str]) -> None:
    """Rebuild the recorded partition (kind, blocks, seed) from the noised parameters' shapes in
    the model file and compare it with the record (assignment hash; for rotations the layers
    and the SHA-256 of the rotation's random draws)."""
    part = ran.get("partition")
    if not isinstance(part, dict) or part.get("kind") not in PARTITION_KINDS:
        return
    from .blocks import make_partition

    names = (ran.get("coverage") or {}).get("noised_parameters") or []
    missing = [n for n in names if n not in state]
    if missing:
        problems.append(f"the model file lacks noised parameters {missing[:4]}")
        return
    layout = [(n, tuple(state[n].shape), int(state[n].numel())) for n in names]
    try:
        again = make_partition(
            layout, int(part["blocks"]), part["kind"], seed=part.get("seed") or 0
        ).describe()
    except Exception as exc:
        problems.append(f"the recorded partition cannot be rebuilt: {exc}")
        return
    if canonical_json(again) != canonical_json(part):
        problems.append(
            "the recorded partition is not the one its kind, blocks and seed give for this model"
        )


def verify_certificate(path, model_path=None, *, seed_path=None, record_path=None) -> list[str]:
    """Re-derive a certificate's guarantee and hashes; return the problems (empty: valid).

    Checks: schema; content hash; plan hash; the planned spec against the plan; the spec that
    ran against the planned spec and the steps run; the recorded schedule against the spec's
    update rule; the (ε, δ) and bound kind recomputed by the accountant (a recorded ε below the
    certified one is a problem); the target when the certificate claims it; the noise guard;
    the block partition against the spec's blocks and the dimension (a ``"rotations"``
    partition: its seed and passed isometry check); with ``model_path``, the SHA-256 of the
    model file (loaded with ``weights_only=True``) against the recorded final model hash, and
    the partition rebuilt from the file's parameter shapes against the record; with
    ``seed_path``, the seed against the commitment.

    Schema 2 (public certificate, private run record): the certificate must carry none of the
    private fields (:data:`PRIVATE_FIELDS`) and a ``run_record`` commitment; with
    ``record_path`` (the run's ``run_record.json``) the record must open that salted commitment,
    be bound to this certificate's content hash and hold consistent content (hash formats,
    the noise guard's statistics inside its bands, projection and clipping fractions in [0, 1],
    norms after projection within the scheduled radii). The starting model's hash in the record
    is checked by :func:`unlearn_torch.replay_certificate`. Schema 1 (everything in one file)
    verifies as before; a ``record_path`` is then a problem (schema 1 has no run record).
    """
    problems: list[str] = []
    try:
        cert = _load_json(path)
    except InvalidParameterError as exc:
        return [str(exc)]
    if cert.get("schema") != SCHEMA:
        return [f"not an unlearn certificate (schema={cert.get('schema')!r})"]
    version = cert.get("schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        return [f"unsupported schema_version {version!r}"]
    body = {k: val for k, val in cert.items() if k != "content_sha256"}
    if sha256_json(body) != cert.get("content_sha256"):
        problems.append("content_sha256 does not match the certificate's content (edited)")
    if version >= 2:
        _check_no_private(cert, problems)
        if record_path is not None:
            try:
                _check_record(cert, load_record(record_path), problems)
            except InvalidParameterError as exc:
                problems.append(str(exc))
    elif record_path is not None:
        problems.append("a schema-1 certificate has no run record (record_path given)")
    if sha256_json(cert.get("plan")) != cert.get("plan_sha256"):
        problems.append("plan_sha256 does not match the recorded plan")
    guarantee = cert.get("guarantee") or {}
    try:
        delta = float(guarantee["delta"])
        spec = spec_from_dict(cert["spec"])
    except Exception as exc:
        return problems + [f"unreadable spec or delta: {exc}"]
    try:
        plan_spec = spec_of_plan(cert.get("plan"))
        if canonical_json(plan_spec.to_dict()) != canonical_json(spec.to_dict()):
            problems.append("the recorded spec differs from the plan's spec")
    except Exception as exc:
        problems.append(f"the recorded plan does not give a spec: {exc}")
    ran = cert.get("ran") or {}
    steps_run = ran.get("steps_run")
    spec_ran = None
    if ran.get("spec") is not None:
        try:
            spec_ran = spec_from_dict(ran["spec"])
        except Exception as exc:
            problems.append(f"unreadable spec of what ran: {exc}")
    try:
        expected = spec_for_steps(spec, int(steps_run))
    except Exception as exc:
        problems.append(f"steps_run={steps_run!r} is not a step count of the spec: {exc}")
        expected = None
    exp_dict = None if expected is None else canonical_json(expected.to_dict())
    got_dict = None if spec_ran is None else canonical_json(spec_ran.to_dict())
    if exp_dict != got_dict:
        problems.append("the spec of what ran is not the planned spec run for steps_run steps")
    if spec_ran is not None:
        rule = spec_ran.update_rule()
        if canonical_json(schedule_rle(rule)) != canonical_json(ran.get("schedule")):
            problems.append("the recorded schedule (noise, steps, radii) differs from the spec's")
        if canonical_json(rule.to_dict()) != canonical_json(ran.get("update_rule")):
            problems.append("the recorded update rule differs from the spec's")
    if spec.method == "dp_sgd_group":
        _check_dp_sgd_record(ran, spec_ran, problems)
    _check_guarantee(guarantee, spec_ran, delta, problems, "guarantee")
    if guarantee.get("certifies_target"):
        target = guarantee.get("target_epsilon")
        eps = _as_float(guarantee.get("epsilon", math.inf))
        if target is not None and eps > float(target):
            problems.append(f"claims to certify target {target} but epsilon is {eps:.6g}")
    guard = (cert.get("noise") or {}).get("guard") or {}
    if not guard.get("passed"):
        problems.append("the noise guard did not pass")
    retain_size = (cert.get("data") or {}).get("retain_size")
    _check_distributed(ran.get("distributed"), guard, retain_size, problems)
    _check_partition(ran, spec, problems)
    model = cert.get("model") or {}
    if model_path is not None:
        try:
            import torch

            state = torch.load(model_path, map_location="cpu", weights_only=True)
            if not isinstance(state, dict):
                problems.append("the model file does not hold a state dict")
            elif state_sha256(state) != model.get("sha256_final"):
                problems.append("the model file's SHA-256 differs from the certificate's")
            else:
                _check_partition_rebuilt(ran, state, problems)
        except Exception as exc:
            problems.append(f"cannot load the model file with weights_only=True: {exc}")
    if seed_path is not None:
        from .noise import check_commitment

        try:
            seed = int(_load_json(seed_path)["seed"])
            if not check_commitment(seed, (cert.get("noise") or {}).get("seed_commitment", {})):
                problems.append("the seed file does not open the certificate's seed commitment")
        except Exception as exc:
            problems.append(f"unreadable seed file: {exc}")
    return problems


def verify_plan(path) -> list[str]:
    """Re-certify a plan file; return the problems (empty: it certifies what it claims).

    The plan's spec (its ``spec`` field, or one rebuilt from method, noise_std, steps and
    inputs) is certified again at the plan's δ; a recorded ε below the recomputed one, a
    ``certifies_target`` that the recomputed ε does not support, or a spec whose noise or steps
    differ from the plan's top-level fields is a problem.
    """
    try:
        data = _load_json(path)
    except InvalidParameterError as exc:
        return [str(exc)]
    problems: list[str] = []
    try:
        spec = spec_of_plan(data)
    except Exception as exc:
        return [f"the plan does not give a method spec: {exc}"]
    try:
        delta = float(data["delta"])
        eps_claim = _as_float(data["epsilon"])
    except (KeyError, TypeError, ValueError) as exc:
        return [f"the plan lacks a readable epsilon/delta: {exc}"]
    for name in ("noise_std", "steps"):
        if name in data and isinstance(data.get("spec"), dict) and hasattr(spec, name):
            val = getattr(spec, name)
            if not isinstance(val, tuple) and not _close(float(val), float(data[name])):
                problems.append(f"plan {name}={data[name]} differs from its spec's {val}")
    if data.get("accounting", "tight") == "paper" and not data.get("certifies_target"):
        pass  # a paper-mode plan may honestly not certify its target; the ε check still runs
    _check_guarantee(
        {"epsilon": eps_claim, "bound_kind": data.get("bound_kind")},
        spec,
        delta,
        problems,
        "plan",
        same_code=False,
    )
    if data.get("certifies_target"):
        try:
            fresh = float(_certify_spec(spec, delta).epsilon)
            target = float(data["target_epsilon"])
            if fresh > target and not _close(fresh, target):
                problems.append(
                    f"plan claims to certify target epsilon {target:g} but its spec certifies "
                    f"only {fresh:.6g}"
                )
        except Exception as exc:
            problems.append(f"cannot re-certify the plan: {exc}")
    return problems
