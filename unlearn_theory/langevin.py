r"""Langevin unlearning: noisy projected (S)GD under strong convexity (Chien, Wang, Chen & Li).

Algorithm (Chien et al. 2024, "Certified Machine Unlearning via Noisy SGD", arXiv 2403.17105,
PNSGD; "Langevin Unlearning", arXiv 2401.10371, PNGD = full batch):

    x_{t+1} = Π_{C_R}( x_t − η·∇f_{B(t)}(x_t) + √(2ησ²)·W_t ),   W_t ~ N(0, I),

with f(·; d) m-strongly convex, L-smooth and with ‖∇f(·;d) − ∇f(·;d′)‖ ≤ 2M (M-Lipschitz),
one fixed partition of the n points into batches of size b used cyclically, and replacement
adjacency (a deleted point is swapped for a junk point; n stays fixed). Training runs T epochs
on D; unlearning runs ``steps`` = N further noisy steps on D′ from the learned model. The PABI
route compares laws at epoch boundaries, so with mini-batches N must be K whole epochs,
N = K·⌈n/b⌉ (InvalidParameterError otherwise). The comparison is against retraining on D′.

Noise convention (docs/theory.md §9.1, §13.9)
    ``noise_std`` is what the library calls it everywhere: the per-coordinate standard deviation
    s of the Gaussian that is *actually injected* at each step, s² = 2ησ² (σ² is the paper's
    temperature; :func:`noise_std_from_temperature`). The PABI lemma holds with the variance of
    the noise that is injected, so ``convention="injected"`` (default, correct) uses s² in the
    shifted-Rényi bounds. The published PNSGD proofs apply it with s² = ησ² = noise_std²/2,
    which is conservative by a factor 2 in every Rényi value: ``convention="paper"``. The LSI
    route is stated in the temperature σ² = noise_std²/(2η) and is not affected by the flag.
    Both facts are tested against exact Gaussian chains (tests/theory/test_langevin.py).

Two routes, each returning a Rényi *curve* (:class:`RenyiCurve`), never a scalar:

``route="pabi"`` (W∞ / privacy amplification by iteration; PNSGD §3) [paper; tight forms derived]
    Contraction c = max(1 − ηm, ηL − 1) for 0 < η < 2/L (c = 1 − ηm for η ≤ 1/L, the paper's
    range) [std]. W∞ tracker (Lemma 3.3, worst batch position):
        Z_T = min( e·(1 − c^{T·B})/(1 − c^{B}), 2R ),  e = 2ηM·S/b_min,  B = ⌈n/b⌉,
    (S = forget_size; b_min the smallest batch; T = ∞ gives Cor. 3.7's Z_B).
    PABI with N noisy c-contractive steps from laws at W∞ ≤ Z (Altschuler & Talwar 2022,
    arXiv 2205.13710; optimal shift allocation, docs/theory.md §6.3 with s_t = 0):
        D_α ≤ α·a,   a = Z²·c^{2N}(1 − c²) / (2 s²(1 − c^{2N}))   (c = 1: a = Z²/(2 s² N)).
    ``form="paper"`` uses the published last-step allocation a = Z²c^{2N}/(2 s²) (Cor. 3.7),
    a = Z²/(2 s² N) (Cor. 3.10, m = 0), which is never smaller.
    ``training_epochs=None``: the well-trained regime of Cor. 3.7 (learned model and retraining
    reference are the stationary laws): a linear curve. Finite ``training_epochs=T`` (Thm 3.2):
    the weak triangle inequality through the law of T + N steps on D′ gives, in each direction,
        ρ(α) = max( c_α·2α·a₂ + (2α − 1)·a₁,  c_α·2α·a₁ + (2α − 1)·a₂ ),  c_α = (α − ½)/(α − 1),
    with a₂ = a(Z_T, N) and a₁ = a(2R, T·B) (two starts in the ball, T epochs on D′). The
    published form ((α−½)/(α−1))·(ε₁(2α) + ε₂(2α)), with Z_B = 2Rc^{TB} + min(…), is
    ``form="paper"``.

``route="lsi"`` (Langevin Unlearning, full batch only) [2nd: LU Thm 3.2 as restated in PNSGD
    App. P; checked against exact Gaussian chains]:
        ρ(α) = exp(−mηN/α) · 4α S² M² / (m σ² n²) · (1 − e^{−mηT}),   σ² = noise_std²/(2η),
    valid for η ≤ 1/L, m > 0 (the LSI constant 2σ²/m of the stationary law). Not linear in α:
    converted by :func:`unlearn_theory.conversions.curve_epsilon` over continuous orders.

Every curve here is an UPPER bound on max(D_α(U‖R), D_α(R‖U)) for every α > 1.

Gaussian DP on the PABI route (``form="tight"``; proofs in docs/gdp_amplification_by_iteration.md)
    The same shift allocation run in f-DP (shifted interpolation; Bok, Su & Altschuler 2024,
    arXiv 2403.00278) makes the pair μ-GDP with μ = √(2a) in the well-trained regime. With
    finite training the two legs U→Q (μ₂ = √(2a₂)) and Q→R (μ₁ = √(2a₁)) are chained by the
    trade-off-function triangle inequality: T(P,Q) ≥ G_{μ₂}, T(Q,R) ≥ G_{μ₁} give
    T(P,R) ≥ G_{μ₁+μ₂} (no weak triangle inequality, no order doubling). The curve carries that
    μ (:attr:`RenyiCurve.gaussian_dp_mu`); :meth:`RenyiCurve.epsilon` reports the smaller of the
    exact Gaussian profile at μ and the Rényi conversion (``analysis`` forces one route).

Reference chain (``details["reference"]``): every certificate here compares the unlearned model
U with the RETRAINED model R = ν_T(D′) (T epochs on D′ from the same initial law; the stationary
law of D′ in the well-trained regime), as Chien et al. do. The other common definition compares
U with the retrained-then-unlearned chain Q = ν_{T+N}(D′) (the same N unlearning steps run from
R), as Koloskova et al. do; against Q only the U→Q leg counts, and ``details`` also reports that
leg's μ₂ and its certified ε (``epsilon_vs_retrained_then_unlearned``) for comparison.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import _validate as v
from ._logspace import exp_upper
from .bounds import Bound, BoundKind
from .errors import InvalidParameterError, NumericalPrecisionError, UnlearnError

__all__ = [
    "CONVENTIONS",
    "ROUTES",
    "FORMS",
    "RenyiCurve",
    "LangevinProblem",
    "BudgetExceededError",
    "DeletionRecord",
    "DeletionOdometer",
    "noise_std_from_temperature",
    "temperature_from_noise_std",
    "contraction_factor",
    "pabi_coefficient",
    "wasserstein_distance_bound",
    "unlearning_curve",
    "unlearning_rdp",
    "certified_epsilon",
    "steps_needed",
    "noise_std_for_steps",
]

CONVENTIONS = ("injected", "paper")
ROUTES = ("pabi", "lsi")
FORMS = ("tight", "paper")
_DEFAULT_MAX_STEPS = 10_000_000
_ROUND = 1e-12  # relative upward rounding allowance
_EPS_MACH = 2.0**-52
_LOG_MAX = math.log(np.finfo(np.float64).max) - 1e-9  # below: exp(x)·(1 + _ROUND) is finite


class BudgetExceededError(UnlearnError):
    """A deletion request would exceed the odometer's declared total budget (state unchanged)."""


# ---------------------------------------------------------------------------------------------
# noise parameterisation


def noise_std_from_temperature(*, temperature, learning_rate) -> float:
    """Injected per-coordinate std s = √(2ησ²) for the paper's temperature σ² (docs/theory.md §1).

    Evaluated as √2·√η·√σ² (no intermediate overflow or underflow). Raises
    InvalidParameterError naming ``temperature`` where s itself overflows or underflows to 0
    (a subnormal s is returned, with its reduced relative precision).
    """
    t = v.check_positive("temperature", temperature)
    lr = v.check_positive("learning_rate", learning_rate)
    s = math.sqrt(2.0) * math.sqrt(lr) * math.sqrt(t)
    if not (0.0 < s < math.inf):
        raise InvalidParameterError(
            "temperature",
            t,
            f"noise_std sqrt(2*learning_rate*temperature) with learning_rate="
            f"{lr!r} is outside the float64 range",
        )
    return s


def temperature_from_noise_std(*, noise_std, learning_rate) -> float:
    """Temperature σ² = s²/(2η) of the injected noise std s (inverse of the above).

    Evaluated as (s/(√2·√η))² (no inf/inf or 0/0). Raises InvalidParameterError naming
    ``noise_std`` where σ² itself overflows or underflows to 0 in float64 (a subnormal σ² is
    returned, with its reduced relative precision).
    """
    s = v.check_positive("noise_std", noise_std)
    lr = v.check_positive("learning_rate", learning_rate)
    r = s / (math.sqrt(2.0) * math.sqrt(lr))
    t = r * r
    if not (0.0 < t < math.inf):
        raise InvalidParameterError(
            "noise_std",
            s,
            f"temperature noise_std**2/(2*learning_rate) with learning_rate="
            f"{lr!r} is outside the float64 range",
        )
    return t


def _pabi_log_variance(noise_std: float, convention: str) -> float:
    """log of the PABI variance: s² (injected, correct) or ησ² = s²/2 (paper proofs).

    Kept in log space: s² underflows to 0 for s below ~1.5e-162.
    """
    lv = 2.0 * math.log(noise_std)
    return lv if convention == "injected" else lv - math.log(2.0)


# ---------------------------------------------------------------------------------------------
# contraction and W∞ tracking


def _log_contraction(learning_rate: float, strong_convexity: float, smoothness: float) -> float:
    """log c with c = max(1 − ηm, ηL − 1), computed without cancellation."""
    a = (
        math.log1p(-learning_rate * strong_convexity)
        if learning_rate * strong_convexity < 1
        else -math.inf
    )
    b = math.log(learning_rate * smoothness - 1.0) if learning_rate * smoothness > 1 else -math.inf
    return max(a, b)


def contraction_factor(
    *, learning_rate, strong_convexity, smoothness, theorem_range=False
) -> float:
    """c = max(|1 − ηm|, |1 − ηL|): the Lipschitz constant of x ↦ x − η∇f [std].

    For m-strongly convex, L-smooth f and 0 < η < 2/L. ``theorem_range=True`` enforces the
    papers' η ≤ 1/L (then c = 1 − ηm). Raises InvalidParameterError naming ``learning_rate``
    (η ≥ 2/L, or η > 1/L when required), ``strong_convexity`` (m < 0 or m > L) or
    ``smoothness``.
    """
    lr, m, L = _check_smooth(learning_rate, strong_convexity, smoothness, theorem_range)
    return math.exp(_log_contraction(lr, m, L))


def _check_smooth(learning_rate, strong_convexity, smoothness, theorem_range):
    lr = v.check_positive("learning_rate", learning_rate)
    m = v.check_nonnegative("strong_convexity", strong_convexity)
    L = v.check_positive("smoothness", smoothness)
    if m > L:
        raise InvalidParameterError(
            "strong_convexity", m, f"must be <= smoothness={L:g} (m <= L for any C^2 function)"
        )
    if lr * L >= 2.0:
        raise InvalidParameterError(
            "learning_rate",
            lr,
            f"must be < 2/smoothness = {2.0 / L:.6g} (no contraction otherwise)",
        )
    if theorem_range and lr * L > 1.0:
        raise InvalidParameterError(
            "learning_rate", lr, f"this theorem needs learning_rate <= 1/smoothness = {1.0 / L:.6g}"
        )
    return lr, m, L


def pabi_coefficient(distance, *, steps, contraction, variance, allocation="optimal") -> float:
    """Coefficient a of the PABI bound D_α ≤ α·a after N noisy c-contractive steps [UPPER].

    Two processes run the same kernel x ↦ Π(φ(x) + N(0, variance·I)), φ c-Lipschitz, from laws
    at W∞ distance ≤ ``distance`` = Z. ``allocation="optimal"``:
    a = Z²c^{2N}(1 − c²)/(2v(1 − c^{2N})) (c < 1), Z²/(2vN) (c = 1) — the Cauchy–Schwarz optimum
    of the shift allocation (docs/theory.md §6.3). ``allocation="last"`` (published Cor. 3.7):
    a = Z²c^{2N}/(2v) (c < 1); for c = 1 the published Cor. 3.10 is again Z²/(2vN).
    N = 0 gives +inf unless Z = 0. (Altschuler & Talwar 2022, arXiv 2205.13710; Chien et al.
    2024, arXiv 2403.17105, Lemma 2.6 / Cor. 3.7 / Cor. 3.10.)

    Evaluated in log space and rounded up: a positive a below the float64 range is returned
    as the smallest positive float (never 0), one above it as +inf (never NaN).
    """
    if isinstance(distance, float) and math.isinf(distance) and distance > 0:
        _inf_distance()
    z = v.check_nonnegative("distance", distance)
    n = v.check_int("steps", steps, minimum=0)
    c = v.check_in_range("contraction", contraction, 0.0, 1.0, low_open=False, high_open=False)
    var = v.check_positive("variance", variance)
    if allocation not in ("optimal", "last"):
        raise InvalidParameterError("allocation", allocation, "must be 'optimal' or 'last'")
    log_c = math.log(c) if c > 0 else -math.inf
    return _coef(z, n, log_c, math.log(var), allocation)


def _inf_distance():
    raise InvalidParameterError("distance", math.inf, "must be finite (give a finite radius)")


def _coef(z: float, n: int, log_c: float, log_var: float, allocation: str) -> float:
    """PABI coefficient a from Z = ``z`` and log v = ``log_var`` (see :func:`pabi_coefficient`)."""
    if z == 0.0:
        return 0.0
    return _coef_log_z(math.log(z), n, log_c, log_var, allocation)


def _coef_log_z(log_z: float, n: int, log_c: float, log_var: float, allocation: str) -> float:
    """Same with log Z: every factor in log space, exp rounded up (never 0, never NaN)."""
    if log_z == -math.inf:
        return 0.0
    if n == 0:
        return math.inf
    if log_c == -math.inf:  # c = 0: one step forgets everything
        return 0.0
    if log_c == 0.0:
        terms = [2.0 * log_z, -math.log(2.0), -log_var, -math.log(n)]
    else:
        try:
            two_n_log_c = 2.0 * float(n) * log_c
        except OverflowError:  # n beyond float range: c^{2N} is below every float
            two_n_log_c = -math.inf
        terms = [2.0 * log_z, two_n_log_c, -math.log(2.0), -log_var]
        if allocation != "last":
            # c^{2N}(1 − c²)/(1 − c^{2N}) in log space
            terms += [math.log(-math.expm1(2.0 * log_c)), -math.log(-math.expm1(two_n_log_c))]
    log_a = math.fsum(terms)
    if log_a == -math.inf:
        return _exp_up(log_a)
    # each log term is within a few ulps: allow 8u per unit of magnitude, upward
    return _exp_up(log_a + 8.0 * _EPS_MACH * (math.fsum(abs(t) for t in terms) + 1.0))


def _exp_up(log_a: float) -> float:
    """e^{log_a} for a positive upper bound: rounded up by _ROUND, +inf on overflow, and the
    smallest positive float (not 0) below the float64 range (log_a = -inf included)."""
    if log_a > _LOG_MAX:
        return math.inf
    return float(exp_upper(log_a)) * (1.0 + _ROUND)


# ---------------------------------------------------------------------------------------------
# the problem record


@dataclass(frozen=True)
class LangevinProblem:
    """Validated constants of a PNSGD unlearning problem (see the module docstring).

    ``batch_size=None`` means full batch (PNGD). ``radius=inf`` means no projection (allowed
    only where the bound does not need the 2R cap). ``forget_size`` S points are replaced.
    """

    learning_rate: float
    strong_convexity: float
    smoothness: float
    lipschitz: float
    dataset_size: int
    batch_size: int
    radius: float = math.inf
    forget_size: int = 1
    theorem_range: bool = False
    log_contraction: float = field(init=False)

    @classmethod
    def create(
        cls,
        *,
        learning_rate,
        strong_convexity,
        smoothness,
        lipschitz,
        dataset_size,
        batch_size=None,
        radius=math.inf,
        forget_size=1,
        theorem_range=False,
    ) -> LangevinProblem:
        lr, m, L = _check_smooth(learning_rate, strong_convexity, smoothness, theorem_range)
        M = v.check_positive("lipschitz", lipschitz)
        n = v.check_int("dataset_size", dataset_size, minimum=1)
        b = n if batch_size is None else v.check_int("batch_size", batch_size, minimum=1)
        if b > n:
            raise InvalidParameterError("batch_size", b, f"must be <= dataset_size={n}")
        if radius is None or (isinstance(radius, float) and math.isinf(radius) and radius > 0):
            R = math.inf
        else:
            R = v.check_positive("radius", radius)
        S = v.check_int("forget_size", forget_size, minimum=0)
        if S == 0:
            raise InvalidParameterError("forget_size", S, "the forget set is empty (need >= 1)")
        if S > n:
            raise InvalidParameterError("forget_size", S, f"must be <= dataset_size={n}")
        return cls(lr, m, L, M, n, b, R, S, bool(theorem_range))

    def __post_init__(self):
        object.__setattr__(
            self,
            "log_contraction",
            _log_contraction(self.learning_rate, self.strong_convexity, self.smoothness),
        )

    @property
    def contraction(self) -> float:
        return math.exp(self.log_contraction)

    @property
    def batches_per_epoch(self) -> int:
        return -(-self.dataset_size // self.batch_size)

    @property
    def smallest_batch(self) -> int:
        return self.dataset_size - (self.batches_per_epoch - 1) * self.batch_size

    @property
    def epoch_shift(self) -> float:
        """e = 2ηM·S/b_min: the largest per-epoch gap added by the S replaced points."""
        return 2.0 * self.learning_rate * self.lipschitz * self.forget_size / self.smallest_batch

    def with_forget_size(self, forget_size) -> LangevinProblem:
        return LangevinProblem.create(
            learning_rate=self.learning_rate,
            strong_convexity=self.strong_convexity,
            smoothness=self.smoothness,
            lipschitz=self.lipschitz,
            dataset_size=self.dataset_size,
            batch_size=self.batch_size,
            radius=self.radius,
            forget_size=forget_size,
            theorem_range=self.theorem_range,
        )

    def distance(self, training_epochs=None) -> float:
        """W∞ bound between training on D and on D′ (synchronous coupling; Lemma 3.3 / Cor 3.7).

        Z_T = min(e·(1 − c^{TB})/(1 − c^B), 2R); ``training_epochs=None`` is T = ∞ (stationary
        laws). Raises when no finite bound exists (c = 1, T = ∞ and no projection).
        """
        e = self.epoch_shift
        B = self.batches_per_epoch
        lc = self.log_contraction
        if training_epochs is None:
            if lc == 0.0:
                z = math.inf
            else:
                z = e / -math.expm1(B * lc)
        else:
            T = v.check_int("training_epochs", training_epochs, minimum=0)
            if lc == 0.0:
                z = e * T
            elif lc == -math.inf:
                z = e if T > 0 else 0.0
            else:
                z = e * math.expm1(T * B * lc) / math.expm1(B * lc)
        z = min(z, 2.0 * self.radius)
        if not math.isfinite(z):
            raise InvalidParameterError(
                "radius",
                self.radius,
                "no finite W-infinity bound: strong_convexity = 0 with unbounded training needs "
                "a finite projection radius",
            )
        return z


def wasserstein_distance_bound(*, training_epochs=None, **problem) -> float:
    """Z_T of :meth:`LangevinProblem.distance` from keyword constants (Lemma 3.3, Cor. 3.7)."""
    return LangevinProblem.create(**problem).distance(training_epochs)


# ---------------------------------------------------------------------------------------------
# Rényi curves


@dataclass(frozen=True)
class RenyiCurve:
    """A Rényi curve α ↦ ρ(α) (an UPPER bound on the symmetric D_α) with its provenance.

    Call it on orders (> 1) to get an array. ``linear_coefficient`` is a when ρ(α) = a·α.
    Convert with :meth:`epsilon` (continuous order, improved conversion by default).
    """

    function: Callable = field(repr=False)
    kind: BoundKind
    description: str
    linear_coefficient: float | None = None
    details: dict = field(default_factory=dict)
    #: μ such that the same pair is also μ-GDP in both directions (None where no f-DP proof
    #: applies: LSI route, published forms)
    gaussian_dp_mu: float | None = None
    #: the route's description when the Gaussian-DP bound is reported (default: ``description``)
    gaussian_dp_description: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "kind", BoundKind.parse(self.kind))

    def __call__(self, orders):
        alpha = v.check_orders(orders)
        out = np.asarray(self.function(alpha), dtype=np.float64)
        if np.any(np.isnan(out)):
            raise NumericalPrecisionError("Rényi curve evaluated to NaN")
        return float(out.reshape(-1)[0]) if np.ndim(orders) == 0 else out

    def epsilon(self, delta, *, conversion="improved", analysis="best") -> Bound:
        """Certified ε at ``delta`` as a :class:`Bound`.

        ``analysis="best"``: the smaller of the Rényi conversion (continuous order, ``conversion``)
        and, where the curve carries :attr:`gaussian_dp_mu`, the exact Gaussian profile at that
        μ; "renyi" / "gaussian_dp" force one ("gaussian_dp" raises InvalidParameterError naming
        ``analysis`` when the curve has no Gaussian-DP parameter). Its kind is the curve's (UPPER
        for every curve built here); ``b.details["route"]`` is the route used, ``b.order`` the
        Rényi order (None on the Gaussian-DP route or for a zero/infinite coefficient).
        """
        from . import gaussian, iteration

        d = v.check_delta(delta)
        iteration.check_analysis(analysis)
        mu = self.gaussian_dp_mu
        if analysis == "gaussian_dp" and mu is None:
            raise InvalidParameterError(
                "analysis", analysis, f"no Gaussian-DP bound for this curve ({self.description})"
            )
        gdp = None
        if mu is not None and analysis != "renyi":
            try:
                with np.errstate(over="ignore", under="ignore"):
                    eps_g = (
                        0.0
                        if mu == 0.0
                        else math.inf
                        if math.isinf(mu)
                        else gaussian.epsilon(d, mu=mu)
                    )
                gdp = float(eps_g)
            except (NumericalPrecisionError, OverflowError):
                if analysis == "gaussian_dp":
                    raise
        renyi = None if analysis == "gaussian_dp" else self._renyi_epsilon(d, conversion)
        if gdp is not None and (renyi is None or gdp <= renyi.value):
            return Bound(
                gdp,
                self.kind,
                source=(
                    f"{self.gaussian_dp_description or self.description}; "
                    "Gaussian DP (shifted interpolation), exact Gaussian profile"
                ),
                details={
                    "order": None,
                    "delta": d,
                    "route": "gaussian_dp",
                    "mu": mu,
                    "gaussian_dp_epsilon": gdp,
                    "renyi_epsilon": None if renyi is None else renyi.value,
                },
            )
        return Bound(
            renyi.value,
            renyi.kind,
            source=renyi.source,
            details=dict(renyi.details, route="renyi", gaussian_dp_epsilon=gdp),
        )

    def _renyi_epsilon(self, d, conversion) -> Bound:
        from . import conversions

        with np.errstate(over="ignore"):
            if self.linear_coefficient is not None:
                a = self.linear_coefficient
                if math.isinf(a):
                    eps, order = math.inf, None
                else:
                    b = conversions.linear_epsilon(a, delta=d, conversion=conversion)
                    eps, order = b.value, b.order
            else:
                b = conversions.curve_epsilon(self.function, delta=d, conversion=conversion)
                eps, order = b.value, b.order
        return Bound(
            eps,
            self.kind,
            source=f"{self.description}; {conversion} RDP conversion",
            details={"order": order, "conversion": conversion, "delta": d},
        )


#: the reference chain each route compares the unlearned model with (module docstring)
_REFERENCE_STATIONARY = (
    "retrained model: the stationary law of training on D' (well-trained regime; equal to the "
    "retrained-then-unlearned chain there)"
)
_REFERENCE_RETRAINED = (
    "retrained model nu_T(D') (T epochs on D' from the same initial law), NOT the "
    "retrained-then-unlearned chain nu_{T+N}(D')"
)


def _gdp_mu(coefficient: float) -> float:
    """μ = √(2a) of a PABI coefficient (rounded up; 0 and +inf kept)."""
    from . import iteration

    return iteration.gaussian_dp_mu(coefficient)


def _check_choice(name, value, allowed):
    if value not in allowed:
        raise InvalidParameterError(name, value, f"must be one of {', '.join(allowed)}")
    return value


def _pabi_curve(p: LangevinProblem, steps: int, log_var: float, training_epochs, form: str):
    lc = p.log_contraction
    alloc = "optimal" if form == "tight" else "last"
    if training_epochs is None:
        z = p.distance(None)
        a = _coef(z, steps, lc, log_var, alloc)
        desc = "PABI, well-trained regime (Chien et al. 2024, arXiv 2403.17105, Cor. 3.7" + (
            ", optimal shift allocation)" if form == "tight" else ", published form)"
        )
        return RenyiCurve(
            lambda al: a * np.asarray(al, dtype=np.float64),
            kind="upper",
            description=desc,
            linear_coefficient=a,
            details={
                "distance": z,
                "coefficient": a,
                "contraction": math.exp(lc),
                "reference": _REFERENCE_STATIONARY,
            },
            gaussian_dp_mu=_gdp_mu(a) if form == "tight" else None,
        )
    T = v.check_int("training_epochs", training_epochs, minimum=0)
    if not math.isfinite(p.radius):
        raise InvalidParameterError(
            "radius", p.radius, "finite training_epochs (Thm 3.2) needs a finite projection radius"
        )
    log_r2 = math.log(2.0) + math.log(p.radius)  # 2R may overflow; its log does not
    n_train = T * p.batches_per_epoch
    z_t = p.distance(T)
    if form == "tight":
        a1 = _coef_log_z(log_r2, n_train, lc, log_var, "optimal")
        a2 = _coef(z_t, steps, lc, log_var, "optimal")

        def fn(al):
            al = np.asarray(al, dtype=np.float64)
            with np.errstate(invalid="ignore"):
                c_a = (al - 0.5) / (al - 1.0)
                d1 = c_a * 2.0 * al * a2 + (2.0 * al - 1.0) * a1
                d2 = c_a * 2.0 * al * a1 + (2.0 * al - 1.0) * a2
            return np.maximum(np.nan_to_num(d1, nan=np.inf), np.nan_to_num(d2, nan=np.inf))

        desc = "PABI + weak triangle inequality, finite training (derived tight form of Thm 3.2)"
        mu_u, mu_t = _gdp_mu(a2), _gdp_mu(a1)
        gdp_mu = (mu_u + mu_t) * (1.0 + 4.5e-16)  # trade-off triangle inequality, rounded up
        details_gdp = {
            "gaussian_dp_mu_unlearning_leg": mu_u,
            "gaussian_dp_mu_training_leg": mu_t,
        }
        desc_gdp = (
            "PABI legs in Gaussian DP + trade-off triangle inequality, finite training "
            "(docs/gdp_amplification_by_iteration.md)"
        )
    else:
        # Z_B = 2R·c^{T·B} + Z_T, in log space (2R may overflow, c^{T·B} underflow)
        log_rc = log_r2 + (n_train * lc if n_train else 0.0)
        log_zt = math.log(z_t) if z_t > 0 else -math.inf
        log_zb = float(np.logaddexp(log_rc, log_zt))
        a1 = _coef_log_z(log_r2, n_train, lc, log_var, "last")
        a2 = _coef_log_z(log_zb, steps, lc, log_var, "last")

        def fn(al):
            al = np.asarray(al, dtype=np.float64)
            return (al - 0.5) / (al - 1.0) * 2.0 * al * (a1 + a2)

        desc = "Chien et al. 2024, arXiv 2403.17105, Thm 3.2 (published form)"
        gdp_mu, details_gdp, desc_gdp = None, {}, None
    return RenyiCurve(
        fn,
        kind="upper",
        description=desc,
        details={
            "distance": z_t,
            "coefficient_training": a1,
            "coefficient_unlearning": a2,
            "reference": _REFERENCE_RETRAINED,
            **details_gdp,
        },
        gaussian_dp_mu=gdp_mu,
        gaussian_dp_description=desc_gdp,
    )


def _lsi_curve(p: LangevinProblem, steps: int, noise_std: float, training_epochs):
    if p.batch_size != p.dataset_size:
        raise InvalidParameterError(
            "batch_size", p.batch_size, "route='lsi' (Langevin Unlearning) is full-batch only"
        )
    if p.strong_convexity <= 0.0:
        raise InvalidParameterError(
            "strong_convexity", p.strong_convexity, "route='lsi' needs strong_convexity > 0"
        )
    if p.learning_rate * p.smoothness > 1.0:
        raise InvalidParameterError(
            "learning_rate",
            p.learning_rate,
            f"route='lsi' needs learning_rate <= 1/smoothness = {1.0 / p.smoothness:.6g}",
        )
    m, eta, n, S, M = (
        p.strong_convexity,
        p.learning_rate,
        p.dataset_size,
        p.forget_size,
        p.lipschitz,
    )
    # log of base = 4S²M²(1 − e^{−mηT})/(m σ² n²), σ² = s²/(2η): s² underflows below ~1e-162
    log_temp = 2.0 * math.log(noise_std) - math.log(2.0 * eta)
    if training_epochs is None:
        log_train = 0.0
    else:
        T = v.check_int("training_epochs", training_epochs, minimum=0)
        if T == 0:
            log_train = -math.inf
        else:
            log_x = math.log(m) + math.log(eta) + math.log(T)  # x = mηT (may underflow)
            # 1 − e^{−x} ≤ x: use x itself where it is tiny (errs upward)
            x = math.exp(min(log_x, 700.0))
            log_train = log_x if log_x < -40.0 else math.log(-math.expm1(-x))
    terms = [math.log(4.0), 2.0 * math.log(S), 2.0 * math.log(M), -math.log(m), -log_temp]
    terms += [-2.0 * math.log(n), log_train]
    log_base = math.fsum(terms)
    if log_base > -math.inf:  # rounding allowance of the log-space sum, upward
        log_base += 8.0 * _EPS_MACH * (math.fsum(abs(t) for t in terms) + 1.0)
    temp = math.exp(log_temp) if log_temp < _LOG_MAX else math.inf
    base = _exp_up(log_base) if log_base > -math.inf else 0.0
    rate = m * eta * steps if steps < 2**1000 else math.inf

    def fn(al):
        # ρ(α) = α·base·e^{−rate/α} in log space: no 0·inf, +inf past the float range,
        # and a positive value is never rounded to 0
        al = np.asarray(al, dtype=np.float64)
        if log_base == -math.inf:
            return np.zeros_like(al)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            lv = np.log(al) + log_base - rate / al
            err = 8.0 * _EPS_MACH * (np.abs(np.log(al)) + abs(log_base) + rate / al + 1.0)
            lv = np.where(np.isfinite(lv), lv + err, lv)  # upward allowance; -inf stays
            out = np.where(lv > _LOG_MAX, np.inf, exp_upper(np.minimum(lv, _LOG_MAX)))
        return out * (1.0 + _ROUND)

    return RenyiCurve(
        fn,
        kind="upper",
        description=(
            "LSI route, Langevin Unlearning (Chien et al. 2024, arXiv 2401.10371, Thm 3.2 as "
            "restated in arXiv 2403.17105 App. P) [second-hand; checked on exact Gaussian chains]"
        ),
        details={"temperature": temp, "base": base, "rate": rate},
    )


def _curve(p: LangevinProblem, steps, noise_std, training_epochs, route, convention, form):
    n_steps = v.check_int("steps", steps, minimum=0)
    s = v.check_positive("noise_std", noise_std)
    _check_choice("route", route, ROUTES)
    _check_choice("convention", convention, CONVENTIONS)
    _check_choice("form", form, FORMS)
    if route == "lsi":
        return _lsi_curve(p, n_steps, s, training_epochs)
    B = p.batches_per_epoch
    if n_steps % B:
        raise InvalidParameterError(
            "steps",
            n_steps,
            f"must be a multiple of batches_per_epoch={B}: the cyclic mini-batch bounds compare "
            "laws at epoch boundaries (K whole epochs, N = K*ceil(n/b), as in Chien et al.)",
        )
    return _pabi_curve(p, n_steps, _pabi_log_variance(s, convention), training_epochs, form)


def unlearning_curve(
    *,
    steps,
    noise_std,
    training_epochs=None,
    route="pabi",
    convention="injected",
    form="tight",
    **problem,
) -> RenyiCurve:
    """Rényi curve of ``steps`` noisy unlearning steps (an UPPER bound for every α > 1).

    ``problem``: learning_rate, strong_convexity, smoothness, lipschitz, dataset_size,
    batch_size=None (full batch), radius=inf, forget_size=1. See the module docstring for the
    formulas, the noise convention and the references.
    """
    p = LangevinProblem.create(**problem)
    return _curve(p, steps, noise_std, training_epochs, route, convention, form)


def unlearning_rdp(orders, **kwargs) -> np.ndarray:
    """The values of :func:`unlearning_curve` at ``orders`` (array; scalar for scalar order)."""
    return unlearning_curve(**kwargs)(orders)


def certified_epsilon(*, delta, conversion="improved", analysis="best", **kwargs) -> Bound:
    """The certified ε (UPPER :class:`Bound`, ``b.order`` the order, ``b.details["route"]``
    the route) of :func:`unlearning_curve` at ``delta`` (see :meth:`RenyiCurve.epsilon`)."""
    return unlearning_curve(**kwargs).epsilon(delta, conversion=conversion, analysis=analysis)


def _epsilon_fn(
    p, noise_std, training_epochs, route, convention, form, delta, conversion, analysis="best"
):
    def eps_at(n):
        return (
            _curve(p, n, noise_std, training_epochs, route, convention, form)
            .epsilon(delta, conversion=conversion, analysis=analysis)
            .value
        )

    return eps_at


def steps_needed(
    *,
    epsilon,
    delta,
    noise_std,
    training_epochs=None,
    route="pabi",
    convention="injected",
    form="tight",
    max_steps=_DEFAULT_MAX_STEPS,
    conversion="improved",
    analysis="best",
    **problem,
) -> int:
    """Fewest unlearning steps N whose certified ε at ``delta`` is ≤ ``epsilon``.

    PABI route: N is a whole number of epochs times ⌈n/b⌉ (steps per epoch). The certified ε is
    non-increasing in N for every curve here, so the answer is found by exponential search
    and bisection and re-checked. Raises InvalidParameterError
    (argument ``max_steps``, or ``training_epochs`` when the training term alone exceeds the
    target) when no N ≤ max_steps certifies.
    """
    eps = v.check_positive("epsilon", epsilon)
    d = v.check_delta(delta)
    cap = v.check_int("max_steps", max_steps, minimum=1)
    p = LangevinProblem.create(**problem)
    g = _epsilon_fn(p, noise_std, training_epochs, route, convention, form, d, conversion, analysis)
    unit = p.batches_per_epoch if route == "pabi" else 1  # whole epochs for the PABI route
    cap_units = cap // unit
    if cap_units < 1:
        raise InvalidParameterError(
            "max_steps", cap, f"must allow at least one epoch ({unit} steps)"
        )

    def f(k):
        return g(k * unit)

    if f(0) <= eps:
        return 0
    if training_epochs is not None and f(cap_units) > eps:
        raise InvalidParameterError(
            "training_epochs",
            training_epochs,
            f"no steps <= max_steps={cap} certify epsilon={eps:g}: the training term of the "
            "finite-training bound does not decay with unlearning steps",
        )
    hi = 1
    while f(hi) > eps:
        if hi >= cap_units:
            raise InvalidParameterError(
                "max_steps", cap, f"no steps <= max_steps certify epsilon={eps:g}"
            )
        hi = min(2 * hi, cap_units)
    lo = hi // 2  # f(lo) > eps (or lo = 0)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if f(mid) <= eps:
            hi = mid
        else:
            lo = mid
    return hi * unit


def noise_std_for_steps(
    *,
    epsilon,
    delta,
    steps,
    training_epochs=None,
    route="pabi",
    convention="injected",
    form="tight",
    conversion="improved",
    analysis="best",
    **problem,
) -> float:
    """Smallest injected ``noise_std`` whose certified ε after ``steps`` is ≤ ``epsilon``.

    Every curve here scales as 1/noise_std² (and every Gaussian-DP μ as 1/noise_std); linear
    curves are inverted in closed form from
    :func:`unlearn_theory.conversions.max_linear_coefficient`, a Gaussian-DP μ from
    :func:`unlearn_theory.gaussian.mu` (the smaller noise of the routes ``analysis`` allows),
    the others by bisection on log noise_std. The result is re-certified and nudged upward
    until it certifies.
    """
    from . import conversions, gaussian, iteration

    eps = v.check_positive("epsilon", epsilon)
    d = v.check_delta(delta)
    n_steps = v.check_int("steps", steps, minimum=0)
    p = LangevinProblem.create(**problem)

    iteration.check_analysis(analysis)

    def cert(s):
        return (
            _curve(p, n_steps, s, training_epochs, route, convention, form)
            .epsilon(d, conversion=conversion, analysis=analysis)
            .value
        )

    unit = _curve(p, n_steps, 1.0, training_epochs, route, convention, form)
    mu_unit = unit.gaussian_dp_mu
    if analysis == "gaussian_dp" and mu_unit is None:
        raise InvalidParameterError(
            "analysis", analysis, f"no Gaussian-DP bound for this curve ({unit.description})"
        )
    s_gdp = None
    if mu_unit is not None and analysis != "renyi" and 0.0 < mu_unit < math.inf:
        # μ(s) = μ_unit/s: the least noise on the Gaussian-DP route is μ_unit/μ(ε, δ)
        try:
            with np.errstate(over="ignore", under="ignore"):
                s_gdp = mu_unit / float(gaussian.mu(epsilon=eps, delta=d))
        except (NumericalPrecisionError, OverflowError, ZeroDivisionError):
            s_gdp = None  # far outside float range: the Rényi route decides (or raises)
        if s_gdp is not None and not 0.0 < s_gdp < math.inf:
            s_gdp = None
        if s_gdp is None and analysis == "gaussian_dp":
            raise NumericalPrecisionError("the calibrated noise_std is outside the float64 range")
    if s_gdp is not None and analysis == "gaussian_dp":
        s = s_gdp
    elif unit.linear_coefficient is not None:
        a1 = unit.linear_coefficient
        if a1 == 0.0:  # every positive noise certifies: a tiny one whose square is normal
            return math.sqrt(float(np.finfo(np.float64).tiny))
        if math.isinf(a1):
            if n_steps == 0:
                raise InvalidParameterError("steps", n_steps, "no noise certifies zero steps")
            raise NumericalPrecisionError("the unit-noise PABI coefficient overflows float64")
        a_max = conversions.max_linear_coefficient(epsilon=eps, delta=d, conversion=conversion)
        log_s = 0.5 * (math.log(a1) - math.log(a_max))  # s = √(a1/a_max) without over/underflow
        if log_s > _LOG_MAX:
            raise NumericalPrecisionError("the calibrated noise_std exceeds the float64 range")
        s = max(math.exp(log_s), _smallest_positive_noise())
        if s_gdp is not None:
            s = min(s, s_gdp)
    else:
        lo, hi = 1e-6, 1.0
        while cert(hi) > eps:
            lo, hi = hi, hi * 4.0
            if hi > 1e150:
                raise NumericalPrecisionError("no finite noise_std certifies the target")
        while cert(lo) <= eps and lo > 1e-300:
            lo *= 1e-3
        for _ in range(200):
            mid = math.sqrt(lo * hi)
            if cert(mid) <= eps:
                hi = mid
            else:
                lo = mid
            if hi / lo - 1.0 < 1e-10:
                break
        s = hi
    step = 1e-12
    for _ in range(80):
        if cert(s) <= eps:
            return s
        s = max(s * (1.0 + step), math.nextafter(s, math.inf))
        step *= 2.0
    raise NumericalPrecisionError("calibrated noise_std does not re-certify the target")


def _smallest_positive_noise() -> float:
    return math.ulp(0.0)


# ---------------------------------------------------------------------------------------------
# sequential deletion requests (PNSGD Thm 3.11)


@dataclass(frozen=True)
class DeletionRecord:
    """One served deletion request.

    ``distance`` Z^{(s)} (W∞ between the model before unlearning and the reference for the new
    data), ``steps`` run, the certified per-request ``epsilon`` [UPPER] at the odometer's δ and
    its Rényi ``coefficient`` (ρ(α) = α·coefficient), and the cumulative guarantee: the
    composition (sum) of all per-request curves so far, converted once (``cumulative_epsilon``).
    """

    index: int
    forget_size: int
    steps: int
    distance: float
    coefficient: float
    epsilon: float
    order: float | None
    delta: float
    cumulative_coefficient: float
    cumulative_epsilon: float
    total_steps: int
    kind: BoundKind = BoundKind.UPPER
    #: the route that certified ``epsilon``: "gaussian_dp" (μ = √(2·coefficient), exact
    #: profile) or "renyi" (the curve α·coefficient, improved conversion)
    route: str = "renyi"

    def __post_init__(self):
        object.__setattr__(self, "kind", BoundKind.parse(self.kind))

    @property
    def bound(self) -> Bound:
        """This request's certified ε (at ``delta``) as a Bound (order in ``details``)."""
        return Bound(
            self.epsilon,
            self.kind,
            source=f"DeletionOdometer request {self.index} (W-infinity recursion, PABI)",
            details={
                "order": self.order,
                "delta": self.delta,
                "coefficient": self.coefficient,
                "route": self.route,
            },
        )

    @property
    def cumulative_bound(self) -> Bound:
        """The cumulative ε over all requests so far (one conversion of the composed curve)."""
        return Bound(
            self.cumulative_epsilon,
            self.kind,
            source=(
                f"DeletionOdometer after {self.index} requests "
                "(composition: sum of coefficients, GDP or RDP)"
            ),
            details={"delta": self.delta, "coefficient": self.cumulative_coefficient},
        )


class DeletionOdometer:
    r"""Odometer for a stream of deletion requests served by noisy projected (S)GD.

    W∞ recursion (Chien et al. 2024, arXiv 2403.17105, Thm 3.11; re-derived in
    docs/langevin_and_per_instance.md): Z^{(1)} = Z_B and

        Z^{(s+1)} = min( c^{N_s}·Z^{(s)} + Z_B(S_{s+1}),  2R ),

    where N_s is the number of noisy steps run for request s and Z_B(S) the well-trained
    W∞ gap (Cor. 3.7) of replacing S points. Request s is certified with Z^{(s)} against the
    stationary law of the process on the current data: D_α ≤ α·a(Z^{(s)}, N_s) [UPPER], and,
    with ``form="tight"``, μ_s-GDP with μ_s = √(2a_s) (docs/gdp_amplification_by_iteration.md,
    Theorem 3); each ε is the smaller of the two routes (``analysis`` forces one; the record's
    ``route`` says which).

    Each :meth:`request` picks the fewest steps meeting the per-request (``epsilon``,
    ``delta``) (or certifies the given ``steps``), and reports the cumulative guarantee: the
    composition of the per-request guarantees, Σ_s a_s·α in RDP (Mironov 2017, Prop. 1) or
    √(Σ_s μ_s²) = √(2Σ_s a_s) in GDP (Dong, Roth & Su 2019, Cor. 3.3), converted once.
    The declared total budget (``total_epsilon`` on that composition, ``max_total_steps``,
    ``max_requests``) is checked *before* anything changes: a request that would exceed it
    raises :class:`BudgetExceededError` and leaves the odometer untouched.
    """

    def __init__(
        self,
        *,
        epsilon,
        delta,
        noise_std,
        total_epsilon=None,
        max_total_steps=None,
        max_requests=None,
        convention="injected",
        form="tight",
        max_steps=_DEFAULT_MAX_STEPS,
        analysis="best",
        **problem,
    ):
        from . import iteration

        self.epsilon = v.check_positive("epsilon", epsilon)
        self.delta = v.check_delta(delta)
        self.noise_std = v.check_positive("noise_std", noise_std)
        self.convention = _check_choice("convention", convention, CONVENTIONS)
        self.form = _check_choice("form", form, FORMS)
        # the published form is reproduced as printed (Rényi); the tight form may also use
        # Gaussian DP (docs/gdp_amplification_by_iteration.md, Theorem 3)
        self.analysis = iteration.check_analysis(analysis) if form == "tight" else "renyi"
        self.max_steps = v.check_int("max_steps", max_steps, minimum=1)
        self.total_epsilon = (
            None if total_epsilon is None else v.check_positive("total_epsilon", total_epsilon)
        )
        if self.total_epsilon is not None and self.total_epsilon < self.epsilon:
            raise InvalidParameterError(
                "total_epsilon",
                total_epsilon,
                f"must be >= the per-request epsilon={self.epsilon:g}",
            )
        self.max_total_steps = (
            None if max_total_steps is None else v.check_int("max_total_steps", max_total_steps)
        )
        self.max_requests = (
            None if max_requests is None else v.check_int("max_requests", max_requests, minimum=1)
        )
        problem.setdefault("forget_size", 1)
        self._problem = LangevinProblem.create(**problem)
        self._log_variance = _pabi_log_variance(self.noise_std, self.convention)
        self._alloc = "optimal" if self.form == "tight" else "last"
        self._records: list[DeletionRecord] = []
        self._carry = 0.0  # c^{N_s} Z^{(s)} after the last request (W∞ to the current reference)

    # -- state -------------------------------------------------------------------------------
    @property
    def records(self) -> tuple[DeletionRecord, ...]:
        return tuple(self._records)

    @property
    def total_steps(self) -> int:
        return sum(r.steps for r in self._records)

    @property
    def cumulative_coefficient(self) -> float:
        return self._records[-1].cumulative_coefficient if self._records else 0.0

    @property
    def residual_distance(self) -> float:
        """c^{N_s}·Z^{(s)}: the W∞ gap left after the last request."""
        return self._carry

    # -- one request ----------------------------------------------------------------------------
    def preview(self, forget_size=1, *, steps=None) -> DeletionRecord:
        """What :meth:`request` would return, without changing the odometer (may raise)."""
        from . import iteration

        S = v.check_int("forget_size", forget_size, minimum=0)
        if S == 0:
            raise InvalidParameterError("forget_size", S, "the forget set is empty (need >= 1)")
        if self.max_requests is not None and len(self._records) >= self.max_requests:
            raise BudgetExceededError(
                f"request {len(self._records) + 1} exceeds max_requests={self.max_requests}"
            )
        p = self._problem.with_forget_size(S)
        z_b = p.distance(None)
        z = min(self._carry + z_b, 2.0 * p.radius)
        lc = p.log_contraction
        a_max = iteration.max_certified_coefficient(
            epsilon=self.epsilon, delta=self.delta, analysis=self.analysis
        )
        if steps is None:
            n = self._fewest_steps(z, lc, a_max)
        else:
            n = v.check_int("steps", steps, minimum=0)
            if n % p.batches_per_epoch:
                raise InvalidParameterError(
                    "steps", n, f"must be a multiple of batches_per_epoch={p.batches_per_epoch}"
                )
        a = _coef(z, n, lc, self._log_variance, self._alloc)
        if a > a_max:
            raise InvalidParameterError(
                "steps", n, f"does not certify the per-request epsilon={self.epsilon:g}"
            )
        if a > 0:
            b = iteration.certified_epsilon(a, delta=self.delta, analysis=self.analysis)
            eps, order, route = b.value, b.order, b.details["route"]
        else:
            eps, order, route = 0.0, None, "gaussian_dp" if self.analysis != "renyi" else "renyi"
        total = self.total_steps + n
        if self.max_total_steps is not None and total > self.max_total_steps:
            raise BudgetExceededError(
                f"request {len(self._records) + 1} needs {n} steps: total {total} would exceed "
                f"max_total_steps={self.max_total_steps}"
            )
        cum_a = self.cumulative_coefficient + a
        cum_eps = (
            iteration.certified_epsilon(cum_a, delta=self.delta, analysis=self.analysis).value
            if cum_a > 0
            else 0.0
        )
        if self.total_epsilon is not None and cum_eps > self.total_epsilon:
            raise BudgetExceededError(
                f"request {len(self._records) + 1} would raise the cumulative epsilon to "
                f"{cum_eps:.6g} > total_epsilon={self.total_epsilon:g} at delta={self.delta:g}"
            )
        return DeletionRecord(
            index=len(self._records) + 1,
            forget_size=S,
            steps=n,
            distance=z,
            coefficient=a,
            epsilon=eps,
            order=order,
            delta=self.delta,
            cumulative_coefficient=cum_a,
            cumulative_epsilon=cum_eps,
            total_steps=total,
            route=route,
        )

    def request(self, forget_size=1, *, steps=None) -> DeletionRecord:
        """Serve one deletion request of ``forget_size`` replaced points (see the class doc)."""
        rec = self.preview(forget_size, steps=steps)
        lc = self._problem.log_contraction
        self._carry = rec.distance * math.exp(rec.steps * lc) if rec.steps else rec.distance
        self._records.append(rec)
        return rec

    def _fewest_steps(self, z, lc, a_max) -> int:
        unit = self._problem.batches_per_epoch  # whole epochs
        cap = self.max_steps // unit

        def ok(k):
            return _coef(z, k * unit, lc, self._log_variance, self._alloc) <= a_max

        if ok(0):
            return 0
        hi = 1
        while not ok(hi):
            if hi >= cap:
                raise InvalidParameterError(
                    "max_steps", self.max_steps, "no steps <= max_steps certify this request"
                )
            hi = min(2 * hi, cap)
        lo = hi // 2
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if ok(mid):
                hi = mid
            else:
                lo = mid
        return hi * unit
