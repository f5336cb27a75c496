"""Tests for unlearn_theory.methods: one module per method (spec + accountant + update rule),
the registry, plans carrying their spec, and CertifiedEpsilon as a Bound."""

from __future__ import annotations

import dataclasses
import json
import math
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unlearn_theory import UnlearningPlan, bounds, certify, plan, planning, plans
from unlearn_theory.errors import InvalidParameterError
from unlearn_theory.methods import (
    SPEC_CLASSES,
    CertifiedEpsilon,
    GradientClippingSpec,
    MethodAccountant,
    MethodSpec,
    PlanDraft,
    available_methods,
    get_method,
    register_method,
    unregister_method,
)
from unlearn_theory.update_rule import AddNoise, Phase, ProjectBall, UpdateRule

CIFAR = dict(clip_initial=1.0, clip_gradient=100.0, learning_rate=0.001, weight_decay=500.0)
INTERIOR = dict(clip_initial=1.0, clip_gradient=10.0, learning_rate=0.001, weight_decay=5.0)
LANGEVIN = dict(
    learning_rate=0.5,
    strong_convexity=0.01,
    smoothness=1.1,
    lipschitz=1.0,
    dataset_size=10_000,
    batch_size=1000,
    radius=10.0,
)

#: one typical planning query per registered method (a new method must add one here)
QUERIES = {
    "gradient_clipping": dict(INTERIOR),
    "model_clipping": dict(clip_initial=1.0, clip_model=1.0, steps=5, learning_rate=0.1),
    "output_perturbation": dict(clip_initial=1.0),
    "blockwise_gradient_clipping": dict(INTERIOR, blocks=4),
    "dp_sgd_group": dict(sample_rate=0.05, steps=20, forget_size=3),
    "langevin": dict(LANGEVIN, steps=10),
}


# ---------------------------------------------------------------------------------------------
# every registered method is one complete thing


def test_every_registered_method_has_spec_update_rule_and_accountant():
    names = [n for n in available_methods() if n != "auto"]
    assert set(names) == set(QUERIES), "add a planning query for the new method to QUERIES"
    for name in names:
        accountant = get_method(name)
        assert isinstance(accountant, MethodAccountant)
        assert accountant.spec_class is SPEC_CLASSES[name]
        assert issubclass(accountant.spec_class, MethodSpec)
        assert accountant.description
        p = plan(name, epsilon=1.0, delta=1e-5, **QUERIES[name])
        assert isinstance(p.spec, accountant.spec_class)
        rule = p.spec.update_rule()
        assert isinstance(rule, UpdateRule)
        ops = list(rule.prologue) + [op for phase in rule.phases for op in phase.ops]
        assert len(ops) >= 1


def test_auto_never_checks_method_names():
    src = open(planning.__file__, encoding="utf-8").read()
    auto_src = src[src.index("def _plan_auto") :]
    for name in QUERIES:
        assert f'"{name}"' not in auto_src


def test_planning_imports_methods_and_methods_never_import_planning():
    import pathlib

    root = pathlib.Path(planning.__file__).parent / "methods"
    for path in root.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "from ..planning" not in text and "import planning" not in text, path.name
        assert "from ..plans" not in text, path.name
    assert not hasattr(planning, "_OPTIONAL_METHODS")
    assert not hasattr(planning, "_ensure_builtin_methods")


# ---------------------------------------------------------------------------------------------
# the plan's ε is what certify(plan.spec) returns, for every method and for "auto"


def _check_round_trip(p: UnlearningPlan):
    again = certify(p.spec, delta=p.delta)
    assert isinstance(again, CertifiedEpsilon)
    assert again.epsilon == pytest.approx(p.epsilon, rel=1e-12, abs=0.0)
    assert again.spec == p.spec
    assert p.noise_std == pytest.approx(float(p.spec.noise_std), rel=0, abs=0)
    assert p.steps == p.spec.steps
    back = UnlearningPlan.from_json(p.to_json())
    assert back == p and back.spec == p.spec
    if p.accounting == "tight":
        assert p.epsilon <= p.target_epsilon and p.certifies_target


@settings(max_examples=25, deadline=None)
@given(
    eps=st.floats(0.2, 6.0),
    logd=st.floats(-14.0, -3.0),
    clip_initial=st.floats(0.1, 10.0),
    clip_gradient=st.floats(0.0, 20.0),
    lr=st.floats(1e-3, 0.1),
    decay=st.floats(0.0, 0.5),
    accounting=st.sampled_from(["tight", "paper"]),
)
def test_gradient_clipping_family_plan_reproduced_by_certify_spec(
    eps, logd, clip_initial, clip_gradient, lr, decay, accounting
):
    kw = dict(
        clip_initial=clip_initial,
        clip_gradient=clip_gradient,
        learning_rate=lr,
        weight_decay=decay / lr,
    )
    delta = math.exp(logd)
    for method, extra in (
        ("gradient_clipping", {}),
        ("blockwise_gradient_clipping", {"blocks": 3}),
        ("output_perturbation", None),
    ):
        params = {"clip_initial": clip_initial} if extra is None else dict(kw, **extra)
        try:
            p = plan(
                method, epsilon=eps, delta=delta, accounting=accounting, max_steps=500, **params
            )
        except InvalidParameterError:  # paper side conditions, budget
            continue
        _check_round_trip(p)


@settings(max_examples=15, deadline=None)
@given(
    eps=st.floats(0.2, 4.0),
    logd=st.floats(-12.0, -3.0),
    clip_model=st.floats(0.2, 3.0),
    steps=st.integers(1, 12),
    accounting=st.sampled_from(["tight", "paper"]),
)
def test_model_clipping_plan_reproduced_by_certify_spec(eps, logd, clip_model, steps, accounting):
    p = plan(
        "model_clipping",
        epsilon=eps,
        delta=math.exp(logd),
        accounting=accounting,
        clip_initial=1.0,
        clip_model=clip_model,
        steps=steps,
    )
    _check_round_trip(p)


@settings(max_examples=6, deadline=None)
@given(
    eps=st.floats(0.3, 3.0),
    steps=st.integers(1, 30),
    route=st.sampled_from(["pabi", "lsi"]),
    accounting=st.sampled_from(["tight", "paper"]),
)
def test_langevin_plan_reproduced_by_certify_spec(eps, steps, route, accounting):
    try:
        p = plan(
            "langevin",
            epsilon=eps,
            delta=1e-5,
            accounting=accounting,
            steps=steps,
            route=route,
            **LANGEVIN,
        )
    except InvalidParameterError:
        return
    _check_round_trip(p)


@pytest.mark.parametrize("accounting", ["tight", "paper"])
def test_dp_sgd_group_plan_reproduced_by_certify_spec(accounting):
    p = plan(
        "dp_sgd_group",
        epsilon=1.0,
        delta=1e-5,
        accounting=accounting,
        sample_rate=0.05,
        steps=20,
        forget_size=3,
    )
    _check_round_trip(p)


@settings(max_examples=8, deadline=None)
@given(eps=st.floats(0.3, 4.0), clip_model=st.floats(0.3, 3.0), max_steps=st.integers(1, 200))
def test_auto_plan_reproduced_by_certify_spec(eps, clip_model, max_steps):
    p = plan("auto", epsilon=eps, delta=1e-5, clip_model=clip_model, max_steps=max_steps, **CIFAR)
    _check_round_trip(p)


def test_old_keyword_certify_matches_spec_certify_and_rejects_unknown_keys():
    p = plan("gradient_clipping", epsilon=1.0, delta=1e-5, **CIFAR)
    old = certify("gradient_clipping", delta=1e-5, noise_std=p.noise_std, steps=p.steps, **CIFAR)
    assert old.epsilon == certify(p.spec, delta=1e-5).epsilon == p.epsilon
    with pytest.raises(InvalidParameterError, match="sigma"):
        certify("gradient_clipping", delta=1e-5, noise_std=1.0, steps=3, sigma=2.0, **CIFAR)
    with pytest.raises(InvalidParameterError, match="noise_std"):
        certify(p.spec, delta=1e-5, noise_std=3.0)
    with pytest.raises(InvalidParameterError, match="refined"):
        certify(p.spec, delta=1e-5, refined=False)
    # a per-step schedule keeps working (tuple, list or array)
    sched = certify("gradient_clipping", delta=1e-5, noise_std=(0.7,) * 4, **INTERIOR)
    assert sched.spec.steps == 4 and sched.spec.is_schedule
    const = certify("gradient_clipping", delta=1e-5, noise_std=0.7, steps=4, **INTERIOR)
    assert sched.epsilon == pytest.approx(const.epsilon, rel=1e-9)


def test_certify_options_stay_options():
    mc = plan("model_clipping", epsilon=1.0, delta=1e-5, clip_initial=1.0, clip_model=1.0, steps=5)
    plain = certify(mc.spec, delta=1e-5, refined=False)
    assert "plain" in plain.accountant and plain.epsilon >= mc.epsilon
    old = certify(
        "model_clipping",
        delta=1e-5,
        noise_std=mc.noise_std,
        steps=5,
        clip_initial=1.0,
        clip_model=1.0,
        refined=False,
    )
    assert old.epsilon == plain.epsilon
    lv = plan("langevin", epsilon=1.0, delta=1e-5, steps=10, **LANGEVIN)
    paper_form = certify(lv.spec, delta=1e-5, convention="paper", form="paper")
    assert paper_form.details["form"] == "paper" and paper_form.epsilon > lv.epsilon


# ---------------------------------------------------------------------------------------------
# CertifiedEpsilon is a Bound


def test_certified_epsilon_is_a_bound():
    res = certify(
        "gradient_clipping", delta=1e-5, noise_std=0.0873, steps=5, claimed_epsilon=10, **CIFAR
    )
    assert isinstance(res, bounds.Bound) and not isinstance(res, float)
    assert float(res) == res.epsilon == res.value
    assert res.kind == bounds.BoundKind.UPPER and res.certifies
    assert res.accountant == res.source and res.order == res.details["order"]
    assert res.claim_holds is False and "NOT CERTIFIED" in res.note and "flat-alpha" in res.note
    assert res.method == "gradient_clipping" and res.delta == 1e-5
    assert isinstance(res.spec, GradientClippingSpec)
    assert pickle.loads(pickle.dumps(res)) == res
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.value = 0.0  # type: ignore[misc]
    with pytest.raises(InvalidParameterError, match="kind"):
        CertifiedEpsilon(value=1.0, kind="estimate", source="x", delta=1e-5, method="m")
    assert plans.BOUND_KINDS == ("exact", "upper")


# ---------------------------------------------------------------------------------------------
# plan files: schema 2 carries the spec, schema 3 the versions; older files are upgraded or
# refused clearly


def test_schema_1_plans_are_upgraded_or_refused():
    p = plan("blockwise_gradient_clipping", epsilon=1.0, delta=1e-5, blocks=4, **INTERIOR)
    data = json.loads(p.to_json())
    assert data["schema_version"] == 3 and data["spec"]["method"] == p.method
    old = dict(data, schema_version=1)
    del old["spec"], old["versions"]
    upgraded = UnlearningPlan.from_dict(old)
    assert upgraded.spec == p.spec and upgraded.schema_version == 3
    assert upgraded.versions == {"unlearn": data["library_version"]}
    assert certify(upgraded.spec, delta=upgraded.delta).epsilon == p.epsilon
    broken = dict(old, inputs={"clip_initial": 1.0})
    with pytest.raises(InvalidParameterError, match="schema 1"):
        UnlearningPlan.from_dict(broken)
    with pytest.raises(InvalidParameterError, match="schema"):
        UnlearningPlan.from_dict(dict(data, schema_version=4))


def test_schema_3_plans_record_the_versions_that_computed_them():
    import platform

    import mpmath
    import numpy
    import scipy

    p = plan("output_perturbation", epsilon=1.0, delta=1e-5, clip_initial=1.0)
    data = json.loads(p.to_json())
    assert data["versions"] == {
        "unlearn": data["library_version"],
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "mpmath": mpmath.__version__,
    }
    two = {k: v for k, v in data.items() if k != "versions"}
    two["schema_version"] = 2  # a schema-2 file: upgraded, knowing only the library version
    q = UnlearningPlan.from_dict(two)
    assert q.schema_version == 3 and q.versions == {"unlearn": data["library_version"]}
    assert q.spec == p.spec and q.epsilon == p.epsilon
    with pytest.raises(InvalidParameterError, match="versions"):
        UnlearningPlan.from_dict({k: v for k, v in data.items() if k != "versions"})
    with pytest.raises(InvalidParameterError, match="versions"):
        UnlearningPlan.from_dict(dict(data, versions={"numpy": 2}))
    with pytest.raises(InvalidParameterError, match="versions"):
        UnlearningPlan.from_dict(dict(two, versions={}))


# ---------------------------------------------------------------------------------------------
# adding a method touches one module: a toy method defined entirely here


@dataclasses.dataclass(frozen=True, kw_only=True)
class _ToyOneGaussianSpec(MethodSpec):
    """Toy: project onto the C0 ball, add N(0, σ²I) once; exact Gaussian with μ = 2C0/σ."""

    method = "toy_one_gaussian"

    radius: float
    noise_std: float
    steps: int = 0

    def __post_init__(self):
        if not self.radius > 0:
            raise InvalidParameterError("radius", self.radius, "must be > 0")
        if not self.noise_std > 0:
            raise InvalidParameterError("noise_std", self.noise_std, "must be > 0")

    def update_rule(self):
        return UpdateRule(prologue=(ProjectBall(self.radius), AddNoise(self.noise_std)))


class _ToyAccountant(MethodAccountant):
    name = "toy_one_gaussian"
    spec_class = _ToyOneGaussianSpec
    description = "test-only toy: one Gaussian after a projection"
    auto_required = ("radius",)

    def certify_spec(self, spec, *, delta):
        from unlearn_theory import gaussian

        mu = 2.0 * spec.radius / spec.noise_std
        return self.certified(
            spec,
            float(gaussian.epsilon(delta, mu=mu)),
            delta=delta,
            kind="exact",
            accountant="toy gaussian profile",
        )

    def plan(self, *, epsilon, delta, accounting, **params):
        from unlearn_theory import gaussian
        from unlearn_theory.calibration import calibrate_decreasing

        radius = params["radius"]
        start = float(gaussian.noise_std(epsilon=epsilon, delta=delta, sensitivity=2 * radius))
        _, certified = calibrate_decreasing(
            lambda s: self.certify(_ToyOneGaussianSpec(radius=radius, noise_std=s), delta=delta),
            epsilon,
            start,
        )
        return PlanDraft(
            spec=certified.spec,
            certified=certified,
            accounting=accounting,
            target_epsilon=epsilon,
            inputs=dict(params, epsilon=epsilon, delta=delta),
        )


# Defining the subclass registered its spec class; it is registered only while a test uses it,
# so that other test modules (e.g. the CLI's per-method parametrisations) never see it.
SPEC_CLASSES.pop("toy_one_gaussian", None)


@pytest.fixture
def toy_method():
    SPEC_CLASSES["toy_one_gaussian"] = _ToyOneGaussianSpec
    register_method(_ToyAccountant())
    yield "toy_one_gaussian"
    unregister_method("toy_one_gaussian")
    SPEC_CLASSES.pop("toy_one_gaussian", None)


def test_a_toy_method_defined_in_one_module_plans_and_certifies(toy_method):
    assert toy_method in available_methods()
    p = plan(toy_method, epsilon=1.0, delta=1e-5, radius=2.0)
    assert p.certifies_target and p.bound_kind == "exact" and p.steps == 0
    assert certify(p.spec, delta=1e-5).epsilon == p.epsilon
    assert certify(toy_method, delta=1e-5, noise_std=p.noise_std, radius=2.0).epsilon == p.epsilon
    assert UnlearningPlan.from_json(p.to_json()) == p
    # the same number as the built-in output perturbation with C0 = radius
    op = plan("output_perturbation", epsilon=1.0, delta=1e-5, clip_initial=2.0)
    assert p.noise_std == op.noise_std
    # "auto" asks the accountant (auto_required), never the name
    auto = plan("auto", epsilon=1.0, delta=1e-5, radius=2.0)
    assert auto.method == toy_method
    with pytest.raises(InvalidParameterError, match="colour"):
        plan(toy_method, epsilon=1.0, delta=1e-5, radius=2.0, colour="red")
    assert isinstance(p.spec.update_rule().prologue[0], ProjectBall)
    assert not any(isinstance(x, Phase) for x in p.spec.update_rule().prologue)
