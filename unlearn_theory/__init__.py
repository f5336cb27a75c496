"""unlearn_theory: exact, tight and verified accounting for certified machine unlearning.

Imports only numpy, scipy and mpmath (sympy lazily inside the symbolic modules). The planner
(:func:`plan`, :func:`certify`, :class:`UnlearningPlan`) and the accountants live in submodules;
they are re-exported here lazily so that ``import unlearn_theory`` stays light.

>>> import unlearn_theory as ut
>>> round(ut.gaussian.epsilon(1e-5, mu=1.0), 4)  # exact ε of one Gaussian comparison
4.3772
>>> p = ut.plan("output_perturbation", epsilon=1.0, delta=1e-5, clip_initial=1.0)
>>> float(ut.certify(p.spec, delta=p.delta)) == p.epsilon <= 1.0
True
"""

from __future__ import annotations

import importlib

from . import gaussian
from ._version import __version__
from .errors import InvalidParameterError, NumericalPrecisionError, UnlearnError

_LAZY = {
    "renyi": ("unlearn_theory.renyi", None),
    "conversions": ("unlearn_theory.conversions", None),
    "pld": ("unlearn_theory.pld", None),
    "dp_sgd_epsilon": ("unlearn_theory.dp_sgd", "dp_sgd_epsilon"),
    "plan": ("unlearn_theory.planning", "plan"),
    "certify": ("unlearn_theory.planning", "certify"),
    "UnlearningPlan": ("unlearn_theory.plans", "UnlearningPlan"),
}

__all__ = [
    "gaussian",
    "renyi",
    "conversions",
    "pld",
    "dp_sgd_epsilon",
    "plan",
    "certify",
    "UnlearningPlan",
    "InvalidParameterError",
    "NumericalPrecisionError",
    "UnlearnError",
    "__version__",
]


def __getattr__(name: str):
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'unlearn_theory' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
