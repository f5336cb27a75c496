"""Planner method ``"langevin"``: noisy projected (S)GD unlearning (Chien et al. 2024).

Registered by :mod:`unlearn_theory.planning` (lazily) as ``LangevinAccountant()``. The bounds,
the noise convention and the references are in :mod:`unlearn_theory.langevin`.

Parameters (keyword arguments of ``plan("langevin", ...)`` / ``certify("langevin", ...)``):
learning_rate, strong_convexity, smoothness, lipschitz, dataset_size, batch_size (default: full
batch), radius (projection radius R; default none), forget_size (default 1), training_epochs
(default None = well-trained regime, Cor. 3.7), route ("pabi" default, or "lsi"), steps
(unlearning noisy steps), noise_std (injected per-coordinate std = √(2ησ²)), max_steps.

``plan``: with ``steps`` → least noise; with ``noise_std`` → fewest steps; with both → the
configuration is certified as is; with neither → InvalidParameterError.
``accounting="paper"``: the published forms (last-step shift allocation, proofs' noise variance
ησ² = noise_std²/2, Thm 3.2 as printed) compute the noise, and the tight accountant re-certifies
it (the plan reports the tight ε; the published noise is always conservative here).
"""

from __future__ import annotations

from . import _validate as v
from . import langevin
from .errors import InvalidParameterError
from .planning import MethodAccountant, make_certified

__all__ = ["LangevinAccountant"]

_PROBLEM_KEYS = (
    "learning_rate",
    "strong_convexity",
    "smoothness",
    "lipschitz",
    "dataset_size",
    "batch_size",
    "radius",
    "forget_size",
)


def _req(params, name):
    if name not in params:
        raise InvalidParameterError(name, None, "is required for method 'langevin'")
    return params[name]


class LangevinAccountant(MethodAccountant):
    """``"langevin"``: PNSGD / Langevin unlearning, PABI (default) or LSI route."""

    name = "langevin"
    parameters = frozenset(
        _PROBLEM_KEYS + ("training_epochs", "route", "steps", "noise_std", "max_steps")
    )
    description = (
        "projected noisy (S)GD under strong convexity and smoothness (Chien et al. 2024, "
        "arXiv 2403.17105 / 2401.10371)"
    )

    def applicable(self, params):
        return all(
            k in params
            for k in (
                "learning_rate",
                "strong_convexity",
                "smoothness",
                "lipschitz",
                "dataset_size",
            )
        )

    @staticmethod
    def _split(params):
        problem = {k: params[k] for k in _PROBLEM_KEYS if k in params}
        for k in ("learning_rate", "strong_convexity", "smoothness", "lipschitz", "dataset_size"):
            _req(params, k)
        extra = {
            "training_epochs": params.get("training_epochs"),
            "route": params.get("route", "pabi"),
        }
        return problem, extra

    def certify(self, *, delta, noise_std, steps, convention="injected", form="tight", **params):
        if noise_std is None:
            raise InvalidParameterError("noise_std", None, "is required to certify")
        if steps is None:
            raise InvalidParameterError("steps", None, "is required to certify")
        problem, extra = self._split(params)
        curve = langevin.unlearning_curve(
            steps=steps, noise_std=noise_std, convention=convention, form=form, **extra, **problem
        )
        eps, order = curve.epsilon(delta)
        return make_certified(
            eps,
            delta=delta,
            kind="upper",
            accountant=f"langevin[{extra['route']}]: {curve.description}",
            method=self.name,
            order=order,
            details={
                "route": extra["route"],
                "convention": convention,
                "form": form,
                "temperature": langevin.temperature_from_noise_std(
                    noise_std=noise_std, learning_rate=problem["learning_rate"]
                ),
                **{k: val for k, val in curve.details.items() if isinstance(val, float)},
            },
        )

    def plan(self, *, epsilon, delta, accounting, **params):
        problem, extra = self._split(params)
        inputs = dict(params, epsilon=epsilon, delta=delta, accounting=accounting)
        max_steps = v.check_int("max_steps", params.get("max_steps", 10_000_000), minimum=1)
        steps = params.get("steps")
        s = params.get("noise_std")
        notes = [
            "noise_std is the injected per-coordinate std sqrt(2*learning_rate*temperature); "
            "the tight bound uses that variance (the published proofs use half of it)"
        ]
        form = "paper" if accounting == "paper" else "tight"
        conv = "paper" if accounting == "paper" else "injected"
        common = dict(convention=conv, form=form, **extra, **problem)
        if steps is None and s is None:
            raise InvalidParameterError(
                "steps", None, "method 'langevin' needs steps (-> least noise) or noise_std"
            )
        paper_s = None
        if steps is not None and s is None:
            steps = v.check_int("steps", steps, minimum=0)
            s = langevin.noise_std_for_steps(epsilon=epsilon, delta=delta, steps=steps, **common)
            if accounting == "paper":
                paper_s = s
        elif steps is None:
            s = v.check_positive("noise_std", s)
            steps = langevin.steps_needed(
                epsilon=epsilon, delta=delta, noise_std=s, max_steps=max_steps, **common
            )
        else:
            notes.append("noise_std and steps both given: the configuration is certified as is")
        res = self.certify(delta=delta, noise_std=s, steps=steps, **extra, **problem)
        if res.epsilon > epsilon:
            notes.append(
                f"NOT CERTIFIED: the configuration certifies only epsilon={res.epsilon:.6g} "
                f"> target {epsilon:g}"
            )
        return self.make_plan(
            accounting=accounting,
            target_epsilon=epsilon,
            certified=res,
            noise_std=s,
            steps=steps,
            inputs=inputs,
            paper_noise_std=paper_s,
            paper_epsilon=None if paper_s is None else res.epsilon,
            notes=notes,
        )
