"""One module per unlearning method: its spec, accountant, paper form and update rule.

Adding a method = one new module here (a :class:`~.base.MethodSpec` subclass, a
:class:`~.accountant.MethodAccountant` subclass, and ``register_method(...)`` at the bottom)
plus one import line below. The registry is open: a method defined elsewhere registers itself
the same way.
"""

from . import (  # noqa: F401  (each import registers its method)
    blockwise_gradient_clipping,
    dp_sgd_group,
    gradient_clipping,
    langevin,
    model_clipping,
    output_perturbation,
)
from .accountant import CertifiedEpsilon, MethodAccountant, PlanDraft, make_certified
from .base import SPEC_CLASSES, MethodSpec, spec_class, spec_from_dict
from .blockwise_gradient_clipping import BlockwiseGradientClipping, BlockwiseGradientClippingSpec
from .dp_sgd_group import DPSGDGroup, DPSGDGroupSpec
from .gradient_clipping import GradientClipping, GradientClippingSpec
from .langevin import Langevin, LangevinSpec
from .model_clipping import ModelClipping, ModelClippingSpec
from .output_perturbation import OutputPerturbation, OutputPerturbationSpec
from .registry import available_methods, get_method, register_method, unregister_method

__all__ = [
    "MethodSpec",
    "MethodAccountant",
    "CertifiedEpsilon",
    "PlanDraft",
    "make_certified",
    "SPEC_CLASSES",
    "spec_class",
    "spec_from_dict",
    "register_method",
    "unregister_method",
    "get_method",
    "available_methods",
    "GradientClippingSpec",
    "GradientClipping",
    "ModelClippingSpec",
    "ModelClipping",
    "OutputPerturbationSpec",
    "OutputPerturbation",
    "BlockwiseGradientClippingSpec",
    "BlockwiseGradientClipping",
    "DPSGDGroupSpec",
    "DPSGDGroup",
    "LangevinSpec",
    "Langevin",
]
