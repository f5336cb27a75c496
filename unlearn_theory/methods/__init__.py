"""One module per unlearning method: its spec, accountant, paper form and update rule.

Adding a method = one new module here (a :class:`~.base.MethodSpec` subclass and a registered
accountant) plus one import line below.
"""

from . import (  # noqa: F401  (each import registers its method)
    blockwise_gradient_clipping,
    dp_sgd_group,
    gradient_clipping,
    langevin,
    model_clipping,
    output_perturbation,
)
from .base import SPEC_CLASSES, MethodSpec, spec_class, spec_from_dict
from .blockwise_gradient_clipping import BlockwiseGradientClippingSpec
from .dp_sgd_group import DPSGDGroupSpec
from .gradient_clipping import GradientClippingSpec
from .langevin import LangevinSpec
from .model_clipping import ModelClippingSpec
from .output_perturbation import OutputPerturbationSpec

__all__ = [
    "MethodSpec",
    "SPEC_CLASSES",
    "spec_class",
    "spec_from_dict",
    "GradientClippingSpec",
    "ModelClippingSpec",
    "OutputPerturbationSpec",
    "BlockwiseGradientClippingSpec",
    "DPSGDGroupSpec",
    "LangevinSpec",
]
