r"""Ridge regression trained by Langevin dynamics: exact laws, leave-one-out, exact divergences.

Setting (docs/theory.md §11; Benarroch, Atif & Cappé 2026, arXiv 2602.15602 — only its abstract was
read, so everything here is exact Gaussian machinery derived and checked by the team).

Sum form F_D(θ) = Σ_i ½(x_iᵀθ − y_i)² + ½λ‖θ‖², A = XᵀX + λI, θ̂ = A⁻¹Xᵀy, λ > 0.
ULA: θ_{t+1} = θ_t − η∇F(θ_t) + √(2ητ)·ξ_t (``temperature`` τ; injected variance 2ητ), stable
iff 0 < η < 2/λ_max(A); B = I − ηA.

* Law at step t from N(m₀, S₀) [EXACT]: N(θ̂ + Bᵗ(m₀ − θ̂), BᵗS₀Bᵗ + Σ_∞ − BᵗΣ_∞Bᵗ),
  Σ_∞ = 2ητ(I − B²)⁻¹ = τ[A(I − ηA/2)]⁻¹; continuous-time Langevin (η → 0): N(θ̂, τA⁻¹).
* Leave-one-out [EXACT] from ONE eigendecomposition of A: G = XA⁻¹ (rows A⁻¹x_i), leverage
  h_i = ⟨x_i, A⁻¹x_i⟩ ∈ (0, 1), residual r_i = y_i − x_iᵀθ̂, Sherman–Morrison
  θ̂_{−i} = θ̂ − A⁻¹x_i·r_i/(1 − h_i), ‖θ̂ − θ̂_{−i}‖ = |r_i|·‖A⁻¹x_i‖/(1 − h_i). O(nd² + d³).
* Rényi between Gaussians [EXACT] (:func:`gaussian_renyi`): with S_α = αS₁ + (1−α)S₀,
  D_α = (α/2)ΔmᵀS_α⁻¹Δm − [log det S_α − (1−α)log det S₀ − α log det S₁]/(2(α−1)),
  evaluated in the S₀-whitened eigenbasis of S₁ (eigenvalues ℓ_j): finite iff
  α < α_max = 1/(1 − ℓ_min) (when ℓ_min < 1); +inf beyond, never NaN.
* Per-instance, continuous-time stationary laws π_D = N(θ̂, τA⁻¹), π_{−i} = N(θ̂_{−i}, τA_{−i}⁻¹)
  (derived in docs/langevin_and_per_instance.md): S₀⁻¹S₁ − I has rank one and Δm lies in
  its eigen-direction, so each pair is EXACTLY the 1-D pair N(0,1) vs N(w, ℓ):
    D(π_D‖π_{−i}):  ℓ = 1/(1 − h),  w² = h r²/(τ(1 − h)²);
    D(π_{−i}‖π_D):  ℓ = 1 − h,      w² = h r²/(τ(1 − h)),   +∞ for α ≥ 1/h.
  D_α(N(0,1)‖N(w,ℓ)) = (α/2)w²/(1 + α(ℓ−1)) − [log(1 + α(ℓ−1)) − α log ℓ]/(2(α−1)).
* Hockey-stick between Gaussians (:func:`gaussian_hockey_stick`): whitening and the
  generalised eigenbasis make the privacy loss L a sum of independent 1-D terms. Equal
  covariances: the exact Gaussian profile δ_μ. One non-unit eigenvalue and no shift elsewhere:
  roots of a quadratic and Φ-differences (:func:`hockey_stick_1d`), in log space with an
  mpmath (50+ digits) re-evaluation wherever P₀(S) − e^ε P₁(S) cancels. Otherwise (rank ≥ 2
  changes such as ULA laws with a step size, or a shift plus a change): L is a generalised χ²
  and δ = E₀[(1 − e^{ε−L})₊] comes from a trapezoidal Laplace/Fourier inversion on a shifted
  line with PROVEN aliasing (Poisson summation; all images ≥ 0, Chernoff tails) and
  truncation (monotone modulus) bounds plus an a-priori rounding allowance, added upward
  (kind "exact" when the certified width is ≤ rtol·δ; otherwise the certified UPPER bound,
  the smaller of the Fourier upper end and the exact-Rényi conversion). See
  docs/langevin_and_per_instance.md §6.
* Per-instance noise (coupling lemma, docs/theory.md §11.5): s_i = Δ_i/μ(ε, δ) with Δ_i = ‖θ̂ − θ̂_{−i}‖,
  against the worst case max_i Δ_i/μ(ε, δ); savings factor Δ_max/Δ_i. pDP, not DP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import log_ndtr

from . import _validate as v
from . import gaussian
from ._logspace import exp_upper, log_sub_exp
from .bounds import Bound, BoundKind
from .errors import InvalidParameterError, NumericalPrecisionError

__all__ = [
    "GaussianLaw",
    "RidgeFit",
    "LeaveOneOut",
    "PerInstanceDivergence",
    "NoiseCalibration",
    "fit",
    "leave_one_out",
    "leave_group_out",
    "gaussian_renyi",
    "renyi_order_threshold",
    "renyi_1d",
    "hockey_stick_1d",
    "gaussian_hockey_stick",
    "loo_renyi",
    "loo_hockey_stick",
    "loo_ula_hockey_stick",
    "calibrate_noise",
]

PDP_CAVEAT = (
    "per-instance (pDP) guarantee for this (D, x_i) pair only, not DP; noise chosen per instance "
    "depends on the data and may itself leak"
)
_LEVERAGE_MAX = 1.0 - 1e-12


# ---------------------------------------------------------------------------------------------
# validation helpers


def _matrix(name, value, *, square=False) -> np.ndarray:
    arr = v.as_float_array(name, value)
    if arr.ndim != 2:
        raise InvalidParameterError(name, f"shape {arr.shape}", "must be a 2-D array")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InvalidParameterError(name, f"shape {arr.shape}", "must not be empty")
    if square and arr.shape[0] != arr.shape[1]:
        raise InvalidParameterError(name, f"shape {arr.shape}", "must be square")
    return arr


def _spd(name, value, dim=None) -> tuple[np.ndarray, np.ndarray]:
    """Validate a symmetric positive-definite covariance; return (matrix, Cholesky factor)."""
    S = _matrix(name, value, square=True)
    if dim is not None and S.shape[0] != dim:
        raise InvalidParameterError(name, f"shape {S.shape}", f"must be {dim}x{dim}")
    scale = max(float(np.max(np.abs(S))), 1e-300)
    if not np.allclose(S, S.T, rtol=0.0, atol=1e-10 * scale):
        raise InvalidParameterError(name, "matrix", "must be symmetric")
    S = 0.5 * (S + S.T)
    try:
        chol = np.linalg.cholesky(S)
    except np.linalg.LinAlgError:
        raise InvalidParameterError(
            name, "matrix", "must be positive definite (not PSD or singular)"
        ) from None
    return S, chol


def _vector(name, value, dim) -> np.ndarray:
    arr = v.as_float_array(name, value)
    if arr.ndim == 0:
        arr = np.full(dim, float(arr))
    if arr.shape != (dim,):
        raise InvalidParameterError(name, f"shape {arr.shape}", f"must have shape ({dim},)")
    return arr


# ---------------------------------------------------------------------------------------------
# the fit and the ULA laws


@dataclass(frozen=True)
class GaussianLaw:
    """N(mean, cov) (an EXACT law of a ridge/ULA iterate)."""

    mean: np.ndarray
    cov: np.ndarray
    kind: BoundKind = BoundKind.EXACT

    def __post_init__(self):
        object.__setattr__(self, "kind", BoundKind.parse(self.kind))


@dataclass(frozen=True)
class RidgeFit:
    """Ridge fit in sum form with the eigendecomposition A = U diag(eigenvalues) Uᵀ."""

    features: np.ndarray
    targets: np.ndarray
    regularization: float
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    theta_hat: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.features.shape[1])

    @property
    def precision(self) -> np.ndarray:
        """A = XᵀX + λI."""
        U, lam = self.eigenvectors, self.eigenvalues
        return (U * lam) @ U.T

    def solve(self, rhs) -> np.ndarray:
        """A⁻¹·rhs from the stored eigendecomposition."""
        U = self.eigenvectors
        rhs = np.asarray(rhs, dtype=np.float64)
        if rhs.ndim == 1:
            return U @ ((U.T @ rhs) / self.eigenvalues)
        return U @ ((U.T @ rhs) / self.eigenvalues[:, None])

    def _check_lr(self, learning_rate) -> float:
        lr = v.check_positive("learning_rate", learning_rate)
        lam_max = float(self.eigenvalues[-1])
        if lr * lam_max >= 2.0:
            raise InvalidParameterError(
                "learning_rate",
                lr,
                f"ULA is unstable: need learning_rate < 2/lambda_max(A) = {2.0 / lam_max:.6g}",
            )
        return lr

    def stationary_law(self, *, temperature, learning_rate=None) -> GaussianLaw:
        """N(θ̂, Σ_∞): Σ_∞ = τ[A(I − ηA/2)]⁻¹ (ULA), or τA⁻¹ if ``learning_rate`` is None."""
        tau = v.check_positive("temperature", temperature)
        lam = self.eigenvalues
        if learning_rate is None:
            var = tau / lam
        else:
            lr = self._check_lr(learning_rate)
            var = tau / (lam * (1.0 - 0.5 * lr * lam))
        U = self.eigenvectors
        return GaussianLaw(self.theta_hat.copy(), (U * var) @ U.T)

    def ula_law(
        self, *, learning_rate, temperature, steps, initial_mean, initial_cov
    ) -> GaussianLaw:
        """Exact law after ``steps`` ULA steps from N(initial_mean, initial_cov) (PSD allowed)."""
        lr = self._check_lr(learning_rate)
        tau = v.check_positive("temperature", temperature)
        t = v.check_int("steps", steps, minimum=0)
        d = self.dim
        m0 = _vector("initial_mean", initial_mean, d)
        S0 = _matrix("initial_cov", initial_cov, square=True)
        if S0.shape != (d, d):
            raise InvalidParameterError("initial_cov", f"shape {S0.shape}", f"must be {d}x{d}")
        if not np.allclose(S0, S0.T, atol=1e-10 * max(1.0, float(np.max(np.abs(S0))))):
            raise InvalidParameterError("initial_cov", "matrix", "must be symmetric")
        if float(np.min(np.linalg.eigvalsh(0.5 * (S0 + S0.T)))) < -1e-10 * max(
            1.0, float(np.max(np.abs(S0)))
        ):
            raise InvalidParameterError("initial_cov", "matrix", "must be positive semidefinite")
        U, lam = self.eigenvectors, self.eigenvalues
        beta_t = (1.0 - lr * lam) ** t  # eigenvalues of B^t
        var_inf = tau / (lam * (1.0 - 0.5 * lr * lam))
        mean = self.theta_hat + U @ (beta_t * (U.T @ (m0 - self.theta_hat)))
        S0u = U.T @ S0 @ U
        cov_u = beta_t[:, None] * S0u * beta_t[None, :] + np.diag(var_inf * (1.0 - beta_t**2))
        cov = U @ cov_u @ U.T
        return GaussianLaw(mean, 0.5 * (cov + cov.T))

    def without(self, indices) -> RidgeFit:
        """The fit on D minus ``indices`` (a refit: d³ + nd²)."""
        idx = _forget_indices(indices, self.features.shape[0])
        keep = np.ones(self.features.shape[0], dtype=bool)
        keep[idx] = False
        return fit(self.features[keep], self.targets[keep], regularization=self.regularization)


def _forget_indices(indices, n) -> np.ndarray:
    idx = np.atleast_1d(np.asarray(indices))
    if idx.size == 0:
        raise InvalidParameterError("forget", "[]", "the forget set is empty")
    if not np.issubdtype(idx.dtype, np.integer):
        raise InvalidParameterError("forget", indices, "must be integer indices")
    if np.any(idx < 0) or np.any(idx >= n):
        raise InvalidParameterError("forget", indices, f"indices must lie in [0, {n})")
    if np.unique(idx).size != idx.size:
        raise InvalidParameterError("forget", indices, "indices must be distinct")
    if idx.size >= n:
        raise InvalidParameterError("forget", indices, "cannot forget every example")
    return idx


def fit(features, targets, *, regularization) -> RidgeFit:
    """Ridge fit θ̂ = A⁻¹Xᵀy, A = XᵀX + λI, with one eigendecomposition of A (O(nd² + d³)).

    Raises InvalidParameterError naming ``features`` (XᵀX + λI overflows float64) or
    ``targets`` (Xᵀy overflows), NumericalPrecisionError when θ̂ itself overflows.
    """
    X = _matrix("features", features)
    n, d = X.shape
    y = v.as_float_array("targets", targets)
    if y.shape != (n,):
        raise InvalidParameterError("targets", f"shape {y.shape}", f"must have shape ({n},)")
    lam = v.check_real("regularization", regularization)
    if lam <= 0.0:
        raise InvalidParameterError(
            "regularization", lam, "must be > 0 (lambda > 0 keeps every leverage below 1)"
        )
    with np.errstate(over="ignore", invalid="ignore"):
        A = X.T @ X
        A[np.diag_indices(d)] += lam
    if not np.all(np.isfinite(A)):
        raise InvalidParameterError(
            "features", "matrix", "X^T X + regularization*I overflows float64 (rescale the data)"
        )
    evals, evecs = np.linalg.eigh(A)
    if not np.all(evals > 0):
        raise NumericalPrecisionError("A = XᵀX + λI is not numerically positive definite")
    with np.errstate(over="ignore", invalid="ignore"):
        xty = X.T @ y
        theta = evecs @ ((evecs.T @ xty) / evals)
    if not np.all(np.isfinite(xty)):
        raise InvalidParameterError(
            "targets", "array", "X^T y overflows float64 (rescale features or targets)"
        )
    if not np.all(np.isfinite(theta)):
        raise NumericalPrecisionError("the ridge solution A⁻¹Xᵀy overflows float64")
    return RidgeFit(X, y, lam, evals, evecs, theta)


@dataclass(frozen=True)
class LeaveOneOut:
    """All-n leave-one-out quantities from one factorisation (EXACT, Sherman–Morrison).

    ``leverage`` h_i, ``residuals`` r_i, ``influence`` rows A⁻¹x_i (n, d), ``shifts`` rows
    θ̂ − θ̂_{−i} (n, d), ``shift_norms`` ‖θ̂ − θ̂_{−i}‖.
    """

    fit: RidgeFit
    leverage: np.ndarray
    residuals: np.ndarray
    influence: np.ndarray
    shifts: np.ndarray
    shift_norms: np.ndarray
    kind: BoundKind = BoundKind.EXACT

    def __post_init__(self):
        object.__setattr__(self, "kind", BoundKind.parse(self.kind))

    @property
    def theta_hat(self) -> np.ndarray:
        return self.fit.theta_hat

    def theta_minus(self, i) -> np.ndarray:
        """θ̂_{−i}."""
        i = v.check_int("i", i, minimum=0)
        if i >= self.leverage.size:
            raise InvalidParameterError("i", i, f"must be < {self.leverage.size}")
        return self.fit.theta_hat - self.shifts[i]


def _loo_from_fit(f: RidgeFit) -> LeaveOneOut:
    X, y = f.features, f.targets
    U, lam = f.eigenvectors, f.eigenvalues
    with np.errstate(over="ignore", invalid="ignore"):
        G = ((X @ U) / lam) @ U.T  # rows A⁻¹x_i
        h = np.einsum("ij,ij->i", X, G)
    bad = np.nonzero(h >= _LEVERAGE_MAX)[0]
    if bad.size:
        i = int(bad[0])
        raise InvalidParameterError(
            "leverage",
            f"h[{i}]={h[i]!r}",
            "leverage must be < 1 (numerically 1: removing this example makes A singular "
            "at this regularization; increase regularization)",
        )
    with np.errstate(over="ignore", invalid="ignore"):
        r = y - X @ f.theta_hat
        coef = r / (1.0 - h)
        shifts = G * coef[:, None]
        norms = np.sqrt(np.einsum("ij,ij->i", G, G)) * np.abs(coef)
    for name, arr in (("leverage", h), ("residuals", r), ("shifts", shifts), ("norms", norms)):
        if not np.all(np.isfinite(arr)):
            raise NumericalPrecisionError(
                f"leave-one-out {name} overflow float64 (rescale features or targets)"
            )
    return LeaveOneOut(f, h, r, G, shifts, norms)


def leave_one_out(features, targets, *, regularization) -> LeaveOneOut:
    """θ̂_{−i}, leverages, residuals and shift norms for every i from ONE factorisation.

    Cost O(nd² + d³) (never n solves). Raises InvalidParameterError ("regularization" ≤ 0,
    "leverage" numerically 1, "features"/"targets" when XᵀX or Xᵀy overflows float64) and
    NumericalPrecisionError when a leave-one-out quantity overflows; never returns NaN.
    """
    return _loo_from_fit(fit(features, targets, regularization=regularization))


def leave_group_out(features, targets, forget, *, regularization) -> np.ndarray:
    """θ̂_{−S} by Woodbury: θ̂ − A⁻¹X_Sᵀ(I − H_SS)⁻¹r_S, H_SS = X_S A⁻¹X_Sᵀ [EXACT].

    Raises InvalidParameterError for an empty ``forget`` set or a group of leverage 1.
    """
    f = fit(features, targets, regularization=regularization)
    idx = _forget_indices(forget, f.features.shape[0])
    Xs = f.features[idx]
    Gs = f.solve(Xs.T).T  # rows A⁻¹x_s
    H = Xs @ Gs.T
    M = np.eye(idx.size) - 0.5 * (H + H.T)
    try:
        np.linalg.cholesky(M)
        if float(np.min(np.linalg.eigvalsh(M))) <= 1e-12:
            raise np.linalg.LinAlgError
    except np.linalg.LinAlgError:
        raise InvalidParameterError(
            "leverage", "group", "the forget group has leverage 1 (I - H_SS is singular)"
        ) from None
    r = f.targets[idx] - Xs @ f.theta_hat
    return f.theta_hat - Gs.T @ np.linalg.solve(M, r)


# ---------------------------------------------------------------------------------------------
# exact Rényi


def renyi_1d(orders, *, shift, variance_ratio) -> np.ndarray:
    """D_α(N(0,1) ‖ N(w, ℓ)) [EXACT], vectorised (broadcast) over orders, w and ℓ; +inf where
    1 + α(ℓ − 1) ≤ 0 (α ≥ 1/(1 − ℓ) when ℓ < 1)."""
    alpha = v.check_orders(orders)
    w = v.as_float_array("shift", shift)
    ell = v.as_float_array("variance_ratio", variance_ratio)
    if np.any(ell <= 0):
        raise InvalidParameterError("variance_ratio", variance_ratio, "must be > 0")
    return _renyi_1d(alpha, w, ell)


def _renyi_1d(alpha, w, ell):
    alpha, w, ell = np.broadcast_arrays(
        np.asarray(alpha, float), np.asarray(w, float), np.asarray(ell, float)
    )
    x = ell - 1.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ax = alpha * x
        # (α/2)w²/(1 + αx) = ½(w/√(1/α + x))²: no w², no α·x overflow, no inf/inf
        dd = 1.0 / alpha + x
        ok = (ax > -1.0) & (dd > 0.0)
        r = np.abs(w) / np.sqrt(np.where(ok, dd, 1.0))
        quad = 0.5 * r * r
        # log1p(αx) − α·log1p(x) = log1p((α−1)x/ℓ) − (α−1)·log1p(x): O(α−1), so dividing by
        # α − 1 (exact in float64 for α ≤ 2) loses no digits as α → 1 (the direct difference of
        # two O(1) logs lost log10(1/(α−1)) digits: 7e-6 relative at α − 1 = 1e-9).
        am1 = alpha - 1.0
        ratio = np.where(ok, am1 * (x / ell), 0.0)  # x/ℓ < 1: no overflow
        logdet_over = np.log1p(ratio) / am1 - np.log1p(x)
        out = quad - 0.5 * logdet_over
    # NaN cannot arise from finite inputs; +inf (an upper bound) is the safe reading if it did
    out = np.where(ok & ~np.isnan(out), np.maximum(out, 0.0), np.inf)
    return out[()] if out.ndim == 0 else out


def _whiten(mean0, cov0, mean1, cov1):
    S0, L0 = _spd("cov0", cov0)
    d = S0.shape[0]
    S1, _ = _spd("cov1", cov1, dim=d)
    m0 = _vector("mean0", mean0, d)
    m1 = _vector("mean1", mean1, d)
    with np.errstate(over="ignore", invalid="ignore"):
        Linv = np.linalg.solve(L0, np.eye(d))  # L0⁻¹
        M = Linv @ S1 @ Linv.T
    if not np.all(np.isfinite(M)):
        raise NumericalPrecisionError(
            "the whitened covariance S0^(-1/2) S1 S0^(-T/2) overflows float64 (cov0 is too "
            "small relative to cov1)"
        )
    ell, Q = np.linalg.eigh(0.5 * (M + M.T))
    if not np.all(ell > 0):
        raise InvalidParameterError("cov1", "matrix", "must be positive definite")
    # whitened mean gap, scaled by its largest entry first: an entry is ±inf only if its
    # true magnitude exceeds the float64 range (then every use below handles it)
    with np.errstate(over="ignore", invalid="ignore"):
        dm, k = m0 - m1, 1.0
        if not np.all(np.isfinite(dm)):  # m0 − m1 overflows: halve first
            dm, k = m0 * 0.5 - m1 * 0.5, 2.0
        mx = float(np.max(np.abs(dm)))
        sc = math.ldexp(1.0, math.frexp(mx)[1] - 1) if mx > 0 else 1.0  # a power of 2: exact
        c = (Q.T @ (Linv @ (dm / sc))) * sc * k
    if np.any(np.isnan(c)):
        raise NumericalPrecisionError("the whitened mean gap S0^(-1/2)(mean0 - mean1) overflows")
    return ell, c


def renyi_order_threshold(cov0, cov1) -> float:
    """α_max = 1/(1 − ℓ_min), ℓ_min the smallest eigenvalue of S₀^{−1/2}S₁S₀^{−1/2} (inf when
    ℓ_min ≥ 1): D_α(N(·,S₀)‖N(·,S₁)) is finite iff α < α_max [EXACT]."""
    S0, _ = _spd("cov0", cov0)
    d = S0.shape[0]
    ell, _ = _whiten(np.zeros(d), cov0, np.zeros(d), cov1)
    lmin = float(ell[0])
    return math.inf if lmin >= 1.0 else 1.0 / (1.0 - lmin)


def gaussian_renyi(orders, mean0, cov0, mean1, cov1) -> np.ndarray:
    r"""D_α(N(m₀,S₀) ‖ N(m₁,S₁)) for each order [EXACT; +inf for α ≥ α_max, never NaN].

    In the S₀-whitened eigenbasis of S₁ (eigenvalues ℓ_j, whitened mean gap c):
    D_α = Σ_j [ (α/2)c_j²/(1 + α(ℓ_j−1)) − (log(1+α(ℓ_j−1)) − α log ℓ_j)/(2(α−1)) ],
    the closed form of docs/theory.md §11.3. Covariances must be symmetric positive definite
    (InvalidParameterError naming ``cov0``/``cov1`` otherwise). Where the whitening leaves the
    float64 range the value is +inf when provably so, else NumericalPrecisionError.
    """
    alpha = np.atleast_1d(v.check_orders(orders))
    ell, c = _whiten(mean0, cov0, mean1, cov1)
    big = ~np.isfinite(c)  # |c_j| beyond float64: evaluate at the largest float instead
    c_eval = np.where(big, np.copysign(np.finfo(np.float64).max, c), c)
    vals = _renyi_1d(alpha[:, None], c_eval[None, :], ell[None, :])
    with np.errstate(over="ignore"):
        out = np.sum(vals, axis=1)
    if np.any(big) and not np.all(np.isinf(out)):
        # D_α increases with |c_j|: +inf at the largest float is +inf at the true gap; a
        # finite value there is only a lower bound
        raise NumericalPrecisionError(
            "the whitened mean gap overflows float64 and the divergence is not provably +inf"
        )
    return float(out[0]) if np.ndim(orders) == 0 else out


# ---------------------------------------------------------------------------------------------
# exact hockey-stick


def _log_interval_prob(lo, hi, mean, sd):
    """log P(lo < X < hi), X ~ N(mean, sd²), stable in both tails (lo < hi, may be ±inf)."""
    a = (lo - mean) / sd
    b = (hi - mean) / sd
    # upper tail: log(Q(a) − Q(b)) with Q(x) = Φ(−x); lower tail: log(Φ(b) − Φ(a))
    if a > 0:
        la, lb = log_ndtr(-a), log_ndtr(-b)
    else:
        la, lb = log_ndtr(b), log_ndtr(a)
    if lb >= la:
        return -math.inf
    return float(log_sub_exp(la, lb))


def _quadratic_set(eps, c, ell):
    """S = {y : L(y) > ε}, L(y) = −y²/2 + (y + c)²/(2ℓ) + ½log ℓ, as ("in"|"out", r1, r2)."""
    a2 = (1.0 - ell) / (2.0 * ell)  # = (1/ℓ − 1)/2 without cancellation near ℓ = 1
    a1 = c / ell
    a0 = 0.5 * c * c / ell + 0.5 * math.log(ell) - eps
    if a2 == 0.0:
        if a1 == 0.0:
            return ("all", 0.0, 0.0) if a0 > 0 else ("none", 0.0, 0.0)
        r = -a0 / a1
        return ("out", -math.inf, r) if a1 > 0 else ("out", r, math.inf)
    disc = a1 * a1 - 4.0 * a2 * a0
    if disc <= 0.0:
        return ("all", 0.0, 0.0) if a2 > 0 else ("none", 0.0, 0.0)
    sq = math.sqrt(disc)
    q = -0.5 * (a1 + math.copysign(sq, a1)) if a1 != 0 else 0.5 * sq
    if q == 0.0:
        r1 = -sq / (2.0 * a2)
        r2 = -r1
    else:
        r1, r2 = q / a2, a0 / q
    lo, hi = min(r1, r2), max(r1, r2)
    return ("out", lo, hi) if a2 > 0 else ("in", lo, hi)


def _log_set_prob(kind, lo, hi, mean, sd):
    if kind == "all":
        return 0.0
    if kind == "none":
        return -math.inf
    if kind == "in":
        return _log_interval_prob(lo, hi, mean, sd)
    # outside (lo, hi): P(X ≤ lo) + P(X ≥ hi); the linear case uses lo = −inf or hi = +inf
    parts = []
    if lo > -math.inf:
        parts.append(float(log_ndtr((lo - mean) / sd)))
    if hi < math.inf:
        parts.append(float(log_ndtr(-(hi - mean) / sd)))
    return float(np.logaddexp.reduce(parts))


#: upward relative allowance of the 1-D hockey-stick (covers the float path's error estimate)
_HS1D_ROUND = 1e-9


def _hs1d_float(eps, c, ell):
    """(log δ, ok): float64 closed form; ok False where the subtraction cancels badly."""
    kind, lo, hi = _quadratic_set(eps, c, ell)
    if kind == "none":
        return -math.inf, True
    if kind == "out" and lo == -math.inf and hi == math.inf:
        return -math.inf, True
    lp0 = _log_set_prob(kind, lo, hi, 0.0, 1.0)
    lp1 = _log_set_prob(kind, lo, hi, -c, math.sqrt(ell))
    if lp0 == -math.inf:
        return -math.inf, True
    gap = eps + lp1 - lp0  # log(e^ε P1 / P0) < 0 on S (exactly); near 0 = cancellation
    # absolute float64 error of gap (log-tail evaluations and the roots feeding them); it makes
    # a relative error of about err/(1 − e^gap) (+ err) in δ. The float answer is used when that
    # stays under a quarter of the upward allowance _HS1D_ROUND applied by _hs1d.
    roots = sum(abs(r) for r in (lo, hi) if math.isfinite(r))
    err = 64 * 2.2e-16 * (abs(lp0) + abs(lp1) + eps + 1.0 + (abs(c) + 1.0) * (roots + 1.0))
    if not (gap < -1e-6 and err * (1.0 - math.expm1(gap)) < 0.25 * _HS1D_ROUND * -math.expm1(gap)):
        return math.nan, False
    return lp0 + math.log(-math.expm1(gap)), True


def _hs1d_mpmath(eps, c, ell, dps=60):
    """δ by the same closed form in mpmath (roots and Φ at ``dps`` digits)."""
    import mpmath as mp

    with mp.workdps(dps):
        e, cc, ll = mp.mpf(eps), mp.mpf(c), mp.mpf(ell)
        a2 = (1 - ll) / (2 * ll)
        a1 = cc / ll
        a0 = cc * cc / (2 * ll) + mp.log(ll) / 2 - e
        sd1 = mp.sqrt(ll)

        def cdf(x, m, s):
            return mp.ncdf((x - m) / s)

        if a2 == 0:
            if a1 == 0:
                return (mp.mpf(0), mp.mpf(1)) if a0 <= 0 else (1 - mp.exp(e), mp.mpf(1))
            r = -a0 / a1
            if a1 > 0:  # upper tails as Φ(−x): no 1 − Φ cancellation
                p0, p1 = mp.ncdf(-r), mp.ncdf(-(r + cc) / sd1)
            else:
                p0, p1 = cdf(r, 0, 1), cdf(r, -cc, sd1)
        else:
            disc = a1 * a1 - 4 * a2 * a0
            if disc <= 0:
                if a2 < 0:
                    return mp.mpf(0), mp.mpf(1)
                p0 = p1 = mp.mpf(1)
            else:
                sq = mp.sqrt(disc)
                r1, r2 = (-a1 - sq) / (2 * a2), (-a1 + sq) / (2 * a2)
                lo, hi = min(r1, r2), max(r1, r2)
                if a2 > 0:
                    p0 = cdf(lo, 0, 1) + mp.ncdf(-hi)
                    p1 = cdf(lo, -cc, sd1) + mp.ncdf(-(hi + cc) / sd1)
                else:  # an interval: difference of the tails on the far side

                    def inside(lo_, hi_, m, sd):
                        a_, b_ = (lo_ - m) / sd, (hi_ - m) / sd
                        if a_ > 0:
                            return mp.ncdf(-a_) - mp.ncdf(-b_)
                        return mp.ncdf(b_) - mp.ncdf(a_)

                    p0 = inside(lo, hi, 0, 1)
                    p1 = inside(lo, hi, -cc, sd1)
        return max(p0 - mp.exp(e) * p1, mp.mpf(0)), p0


def _hs1d_near_one(eps, log_abs_mu1, log_sd1) -> bool:
    """True when δ = E_{e^ε}(N(0,1) ‖ N(μ₁, σ₁²)) ≥ 1 − 1e-17 is certified (so 1.0 is δ
    rounded up), from log|μ₁| and log σ₁ (either may be beyond the float64 range).

    δ ≥ P₀(S) − e^ε·P₁(S) for any S. S = (−20, 20): P₀(Sᶜ) < 6e-89 and P₁(S) ≤
    min(40/(σ₁√(2π)), Q((|μ₁| − 20)/σ₁)); S = ℝ ∖ (μ₁ ± 1e-20): P₀(Sᶜ) < 8e-21 and P₁(S) =
    2Q(1e-20/σ₁). Certified when ε + log P₁(S) < −40 (with a relative margin on the log).
    """

    def q_log(log_t):  # log Q(e^{log_t}), Q the standard normal upper tail
        return float(log_ndtr(-math.exp(log_t))) if log_t < 709.0 else -math.inf

    bounds = [math.log(40.0) - log_sd1 - 0.5 * math.log(2.0 * math.pi)]
    if log_abs_mu1 > math.log(40.0):  # |μ₁| − 20 ≥ |μ₁|/2
        bounds.append(q_log(log_abs_mu1 - math.log(2.0) - log_sd1))
    bounds.append(math.log(2.0) + q_log(math.log(1e-20) - log_sd1))
    lp = min(bounds)
    return lp == -math.inf or eps + lp * (1.0 - 1e-12) < -40.0


def _hs1d(eps, c, ell) -> float:
    """δ = E_{e^ε}(N(0,1) ‖ N(−c, ℓ)), rounded up (relative _HS1D_ROUND).

    Raises NumericalPrecisionError where neither the float64 nor the mpmath evaluation
    succeeds and δ is not certified to round to 1.
    """
    if ell == 1.0:  # equal variances: the exact Gaussian-shift profile
        return 0.0 if c == 0.0 else float(gaussian.delta(eps, mu=abs(c)))
    log_c = math.log(abs(c)) if c != 0.0 else -math.inf
    if (abs(c) > 1e150 or not 1e-300 < ell < 1e300) and _hs1d_near_one(
        eps, log_c, 0.5 * math.log(ell)
    ):
        return 1.0  # far outside the float path's range and δ ≥ 1 − 1e-17
    ld, ok = _hs1d_float(eps, c, ell)
    if ok:
        if ld == -math.inf:
            return 0.0
        # a finite log δ is a positive δ: never let exp underflow to a silent 0
        return min(1.0, float(exp_upper(ld)) * (1.0 + _HS1D_ROUND))
    import mpmath as mp

    try:
        d, p0 = _hs1d_mpmath(eps, c, ell)
        if 0 < d < p0 * mp.mpf(10) ** -30:  # heavy cancellation: redo with digits to spare
            extra = min(int(mp.log10(p0 / d)), 2000)
            d, p0 = _hs1d_mpmath(eps, c, ell, dps=60 + extra)
    except (OverflowError, ValueError, ZeroDivisionError) as exc:  # mpmath beyond its range
        if _hs1d_near_one(eps, log_c, 0.5 * math.log(ell)):
            return 1.0
        raise NumericalPrecisionError(
            f"hockey-stick between N(0,1) and N({-c!r}, {ell!r}) at epsilon={eps!r} cannot be "
            f"certified (mpmath: {exc})"
        ) from None
    if d <= 0:
        return 0.0
    # a positive δ below the float64 range is reported as the smallest positive float
    return min(1.0, max(float(d) * (1.0 + _HS1D_ROUND), 5e-324))


def hockey_stick_1d(epsilon, *, mean0, var0, mean1, var1) -> float:
    """E_{e^ε}(N(mean0, var0) ‖ N(mean1, var1)) [EXACT closed form, rounded up].

    {p₀ > e^ε p₁} is an interval or the complement of one (roots of a quadratic); δ =
    P₀(S) − e^ε P₁(S) by log-space Φ-differences, re-evaluated in mpmath (60 digits) where the
    subtraction cancels. Relative error ≤ 1e-9 upward. Where the standardised shift or the
    variance ratio leaves the float64 range the answer is 1.0 when δ ≥ 1 − 1e-17 is certified
    (see ``_hs1d_near_one``), else NumericalPrecisionError; never a rounded-down value.
    """
    eps = v.check_epsilon(epsilon)
    m0 = v.check_real("mean0", mean0)
    m1 = v.check_real("mean1", mean1)
    s0 = v.check_positive("var0", var0)
    s1 = v.check_positive("var1", var1)
    sd0 = math.sqrt(s0)
    # standardise P₀: y = (x − m0)/sd0; then P₁ = N((m1 − m0)/sd0, s1/s0) = N(−c, ℓ)
    c = (m0 - m1) / sd0
    ell = s1 / s0
    if not (math.isfinite(c) and 1e-300 < ell < math.inf):
        # c or ℓ overflowed / underflowed: work from the logs of the raw inputs
        dm = abs(m0 * 0.5 - m1 * 0.5)
        log_mu1 = (math.log(dm) + math.log(2.0) - 0.5 * math.log(s0)) if dm > 0 else -math.inf
        if _hs1d_near_one(eps, log_mu1, 0.5 * (math.log(s1) - math.log(s0))):
            return 1.0
        raise NumericalPrecisionError(
            f"hockey_stick_1d: the standardised shift or variance ratio var1/var0={ell!r} is "
            "outside the float64 range and delta is not certified to round to 1"
        )
    return _hs1d(eps, c, ell)


# ---------------------------------------------------------------------------------------------
# certified hockey-stick in d dimensions (Laplace/Fourier inversion with proven error bounds)

_EPS_MACH = 2.0**-52
_MAX_NODES = 4_000_000


def _loss_terms(ell, c):
    """Privacy loss under P₀ as L = Σ_j (w_j z_j² + 2ν_j z_j + m_j), z ~ N(0, I).

    In the whitened eigenbasis P₀ = N(0, I), P₁ = N(−c, diag ℓ) and L_j(y) = (1/ℓ − 1)y²/2 +
    c y/ℓ + c²/(2ℓ) + ½log ℓ, so w = (1 − ℓ)/(2ℓ), ν = c/(2ℓ), m = c²/(2ℓ) + ½log ℓ (stable as
    ℓ → 1: no completed square, no 1/(1 − ℓ)).
    """
    w = (1.0 - ell) / (2.0 * ell)
    nu = c / (2.0 * ell)
    m = c * c / (2.0 * ell) + 0.5 * np.log(ell)
    return w, nu, m


def _log_mgf(z, w, nu, m):
    """log E₀[e^{zL}] = Σ_j [m_j z − ½log(1 − 2w_j z) + 2ν_j² z²/(1 − 2w_j z)] (principal log;
    valid for Re z < s_max, where Re(1 − 2w_j z) > 0). ``z`` any shape, complex or real."""
    z = np.asarray(z)[..., None]
    q = 1.0 - 2.0 * w * z
    return np.sum(m * z - 0.5 * np.log(q) + 2.0 * nu * nu * z * z / q, axis=-1)


def _s_max(w) -> float:
    pos = w[w > 0]
    return math.inf if pos.size == 0 else float(0.5 / np.max(pos))


def _sup_loss(w, nu, m) -> float:
    """sup L (finite iff every w_j < 0, or w_j = ν_j = 0)."""
    if np.any(w > 0) or np.any((w == 0) & (nu != 0)):
        return math.inf
    neg = w < 0
    return float(np.sum(m) - np.sum(nu[neg] ** 2 / w[neg]))


def _fourier_delta(eps, w, nu, m, rtol):
    """Certified δ = E₀[(1 − e^{ε−L})₊] by trapezoidal Laplace inversion; see the docs section.

    With g(y) = (1 − e^{−y})₊ (two-sided Laplace transform 1/(z(z + 1)), Re z > 0):
        δ = (1/2π)∫ F(u) du,   F(u) = M₀(z)e^{−zε}/(z(z + 1)),  z = s + iu,  0 < s < s_max.
    Trapezoid with step Δ = 2π/D (Poisson summation, g ≥ 0):
        T = (Δ/π)[½F(0) + Σ_{k≥1} Re F(kΔ)] = δ + Σ_{n≥1} e^{−snD}E₀g(Y + nD)
                                                + Σ_{n≥1} e^{snD}E₀g(Y − nD),   Y = L − ε,
    every aliasing term ≥ 0 (so T ≥ δ: the discretisation errs upward) and
        aliasing ≤ e^{−sD}/(1 − e^{−sD}) + M₀(s′)e^{−s′ε}e^{−(s′−s)D}/(1 − e^{−(s′−s)D})
    for any s < s′ < s_max (Chernoff on P₀(L > ε + nD)). |F| is nonincreasing in u, and for
    u ≥ U = KΔ, |F(u)| ≤ e^{Re[log M₀(s+iU)] − sε}·Π_j ρ_j^{−1/4}(U/u)^{1/2}·u^{−2} (over the
    directions with ρ_j = 4w_j²U²/|1 − 2w_j(s+iU)|² ≥ ½), so the truncated tail is at most
        (1/π)e^{Re[log M₀(s+iU)] − sε}·Π ρ_j^{−1/4}/(U(1 + n/2)).
    Returns dict(upper, lower, estimate, error, ...) or None when the budget is exceeded.
    """
    smax = _s_max(w)
    hi = 1e4 if math.isinf(smax) else min(smax * (1.0 - 1e-6), 1e4)

    def obj(s):
        val = float(np.real(_log_mgf(s, w, nu, m))) - s * eps - math.log(s * (s + 1.0))
        return val if math.isfinite(val) else 1e300

    from scipy.optimize import minimize_scalar

    lo = min(1e-8, 0.5 * hi)
    res = minimize_scalar(obj, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10})
    s = float(res.x)
    if not (lo <= s <= hi) or not math.isfinite(obj(s)):
        return None
    base = float(np.real(_log_mgf(s, w, nu, m))) - s * eps  # log scale of every term
    # s′ for the Chernoff bound of the far aliasing images
    s2 = s + 0.5 * (smax - s) if math.isfinite(smax) else 2.0 * s + 1.0
    base2 = float(np.real(_log_mgf(s2, w, nu, m))) - s2 * eps
    if not math.isfinite(base2):
        return None

    def log_alias(D):
        a = -s * D - math.log(-math.expm1(-s * D))
        b = base2 - (s2 - s) * D - math.log(-math.expm1(-(s2 - s) * D))
        return float(np.logaddexp(a, b))

    def log_trunc(U):
        z = complex(s, U)
        q = 1.0 - 2.0 * w * z
        lm = float(np.real(_log_mgf(z, w, nu, m)))
        rho = 4.0 * w * w * U * U / np.abs(q) ** 2
        dec = rho >= 0.5
        n = int(np.count_nonzero(dec))
        return (
            lm
            - s * eps
            - 0.25 * float(np.sum(np.log(rho[dec])))
            - math.log(math.pi * U * (1.0 + 0.5 * n))
        )

    guess = base - math.log(s * (s + 1.0)) - math.log(10.0)  # log δ: refined below
    for _ in range(4):
        target = math.log(0.3 * rtol) + guess
        D = max(1.0, 4.0 / s)
        while log_alias(D) > target:
            D *= 1.5
            if D > 1e12:
                return None
        step = 2.0 * math.pi / D
        U = max(8.0, 16.0 * step)
        while log_trunc(U) > target:
            U *= 1.5
            if U / step > _MAX_NODES:
                return None
        K = int(math.ceil(U / step))
        U = K * step
        u = step * np.arange(K + 1, dtype=np.float64)
        z = s + 1j * u
        q = 1.0 - 2.0 * w * z[:, None]
        parts_abs = np.sum(
            np.abs(m * z[:, None])
            + np.abs(np.log(q))
            + np.abs(2.0 * nu * nu * z[:, None] ** 2 / q),
            axis=1,
        )
        expo = _log_mgf(z, w, nu, m) - z * eps - base
        F = np.exp(expo) / (z * (z + 1.0))
        Fr = np.real(F)
        if not np.all(np.isfinite(Fr)):
            return None
        Fr[0] *= 0.5
        total = math.fsum(Fr.tolist()) * step / math.pi  # scaled by e^{base}
        # a-priori rounding allowance: exponent error ≤ 8u·(|base| + |zε| + Σ|addends|), then
        # exp/divide/Re (≤ 16u relative), exactly rounded fsum (≤ u·|sum|)
        eta = 8.0 * _EPS_MACH * (abs(base) + np.abs(z) * abs(eps) + parts_abs) + 16.0 * _EPS_MACH
        rounding = (
            step / math.pi * float(np.sum(np.abs(F) * eta)) * 1.01 + _EPS_MACH * abs(total) + 1e-300
        )
        alias = math.exp(log_alias(D) - base)
        trunc = math.exp(log_trunc(U) - base)
        upper = total + trunc + rounding
        lower = total - alias - trunc - rounding
        err = alias + 2.0 * trunc + 2.0 * rounding
        if lower > 0 and err <= rtol * lower:
            break
        if total <= 0 or not math.isfinite(total):
            guess -= 10.0
        else:
            new = base + math.log(max(lower, total * 1e-3))
            if new >= guess - 1e-9:
                guess -= math.log(10.0)
            else:
                guess = new
    if not (math.isfinite(upper) and upper > 0 and math.isfinite(err)):
        return None

    def unscale(x):  # x·e^{base}, never a silent 0 for a positive x
        if x <= 0:
            return 0.0
        lx = base + math.log(x)
        return math.inf if lx > 709 else float(exp_upper(lx))

    return {
        "upper": unscale(upper) * (1.0 + 4 * _EPS_MACH),
        "lower": unscale(lower) * (1.0 - 4 * _EPS_MACH),
        "estimate": unscale(total),
        "error": unscale(err),
        "relative_error": err / lower if lower > 0 else math.inf,
        "s": s,
        "nodes": K + 1,
        "step": step,
        "aliasing": unscale(alias),
        "truncation": unscale(trunc),
        "rounding": unscale(rounding),
    }


def _hockey_via_renyi(eps, ell, c) -> Bound:
    """UPPER bound on δ from the exact Rényi curve (improved conversion, continuous order,
    capped below α_max). Used when the covariances differ in more than one direction."""
    from . import conversions

    lmin = float(np.min(ell))
    amax = math.inf if lmin >= 1.0 else 1.0 / (1.0 - lmin)

    def rdp(alpha):
        alpha = np.atleast_1d(np.asarray(alpha, dtype=np.float64))
        return np.sum(_renyi_1d(alpha[:, None], c[None, :], ell[None, :]), axis=1)

    ld = conversions.curve_log_delta(
        rdp, epsilon=eps, max_order=None if math.isinf(amax) else 1.0 + (amax - 1.0) * (1 - 1e-9)
    )
    return Bound(
        min(1.0, math.exp(ld.value)),
        BoundKind.UPPER,
        source=f"exact Renyi curve + improved conversion (order {ld.order:.6g})",
        details={"order": ld.order, "error_bound": None},
    )


def gaussian_hockey_stick(epsilon, mean0, cov0, mean1, cov1, *, rtol=1e-6) -> Bound:
    """E_{e^ε}(N(m₀,S₀) ‖ N(m₁,S₁)) = P₀(L > ε) − e^ε·P₁(L > ε), L = log p₀/p₁, any covariances.

    Returns a :class:`~unlearn_theory.bounds.Bound` on δ: ``float(b)`` is δ, always an upper
    bound on the true value (rounded up), never NaN; ``b.kind`` exact or upper (below);
    ``b.source`` the route; ``b.details["error_bound"]`` the width of the certified bracket
    (None where no bracket is known) plus route-specific extras (``mu``, ``sup_loss``,
    ``fourier``, ``order``, ...).

    * Equal covariances: the exact Gaussian profile with μ = ‖S^{−1/2}Δm‖ (kind "exact").
    * One non-unit whitened eigenvalue and no shift elsewhere: :func:`hockey_stick_1d`
      (closed form, kind "exact").
    * Otherwise: L is a generalised χ² under P₀; δ = E₀[(1 − e^{ε−L})₊] by trapezoidal
      Laplace/Fourier inversion along Re z = s of M₀(z)e^{−zε}/(z(z+1)) with proven bounds on
      aliasing (Poisson summation, all images ≥ 0, Chernoff tails), truncation (monotone
      modulus bound) and an a-priori rounding allowance (docs/langevin_and_per_instance.md).
      ``delta`` = trapezoid + truncation + rounding (the aliasing errs upward already);
      ``error_bound`` = width of the certified bracket. Kind "exact" when that width is
      ≤ ``rtol``·(lower end); else kind "upper": the smaller of the Fourier upper end and the
      exact Rényi curve through the improved RDP→DP conversion.
    """
    eps = v.check_epsilon(epsilon)
    rt = v.check_real("rtol", rtol)
    if not (0.0 < rt < 1.0):
        raise InvalidParameterError("rtol", rtol, "must lie in (0, 1)")
    ell, c = _whiten(mean0, cov0, mean1, cov1)
    nonunit = np.abs(ell - 1.0) > 1e-12
    with np.errstate(over="ignore", invalid="ignore"):
        mu = float(np.sqrt(np.sum(c[~nonunit] ** 2)))
        big = not (math.isfinite(mu) and np.all(np.isfinite(c * c)))
    if big:  # a whitened gap beyond float64: the trivial bound δ ≤ 1 (true δ is 1 − tiny)
        return Bound(
            1.0,
            BoundKind.UPPER,
            source="trivial bound delta <= 1 (whitened mean gap beyond float64)",
            details={"error_bound": None, "mu": mu},
        )
    if not np.any(nonunit):
        from . import gaussian

        dl = float(gaussian.delta(eps, mu=mu)) if mu > 0 else 0.0
        return Bound(
            dl, BoundKind.EXACT, source="gaussian_profile", details={"error_bound": 0.0, "mu": mu}
        )
    if np.count_nonzero(nonunit) == 1 and mu < 1e-8:
        j = int(np.nonzero(nonunit)[0][0])
        # a (rounding-size) shift in the unit directions: E_γ(P⊗A‖Q⊗B) ≤ E_γ(P⊗A‖Q⊗A) + γ·TV(A,B)
        tv = math.erf(mu / (2.0 * math.sqrt(2.0)))  # TV(N(0,1), N(μ,1)) = 2Φ(μ/2) − 1
        extra = math.exp(eps) * tv if tv > 0 else 0.0
        return Bound(
            min(1.0, _hs1d(eps, float(c[j]), float(ell[j])) + extra),
            BoundKind.EXACT if extra == 0.0 else BoundKind.UPPER,
            source="1d_closed_form" + ("" if extra == 0.0 else " + e^eps*TV(shift) allowance"),
            details={"error_bound": extra, "mu": mu},
        )
    w, nu, m = _loss_terms(ell, c)
    sup = _sup_loss(w, nu, m)
    if math.isfinite(sup) and eps > sup + 1e-9 * (1.0 + abs(sup)):
        return Bound(
            0.0,
            BoundKind.EXACT,
            source="privacy loss bounded: sup L < epsilon",
            details={"error_bound": 0.0, "sup_loss": sup},
        )
    four = _fourier_delta(eps, w, nu, m, rt)
    if four is not None and four["relative_error"] <= rt:
        return Bound(
            min(1.0, four["upper"]),
            BoundKind.EXACT,
            source="certified Laplace/Fourier inversion of the generalised chi-square",
            details={**four, "error_bound": four["error"]},
        )
    via = _hockey_via_renyi(eps, ell, c)
    extra = {"fourier": four, "reason": "certified Fourier error above rtol*delta"}
    if four is not None and four["upper"] < via.value:
        value = min(1.0, four["upper"])
        source = "certified Laplace/Fourier upper end (error above rtol; Renyi fallback)"
    else:
        value = via.value
        source = via.source + " (fallback: certified Fourier error above rtol*delta)"
        extra["order"] = via.order
    # width of the certified bracket [Fourier lower end (or 0), delta]
    extra["error_bound"] = value - (four["lower"] if four is not None else 0.0)
    return Bound(value, BoundKind.UPPER, source=source, details=extra)


# ---------------------------------------------------------------------------------------------
# per-instance divergences for ridge deletion (continuous-time stationary laws)


@dataclass(frozen=True)
class PerInstanceDivergence:
    """Per-example divergences between π_D and π_{−i} in both directions (EXACT)."""

    forward: np.ndarray  # D(π_D ‖ π_{−i})
    reverse: np.ndarray  # D(π_{−i} ‖ π_D)
    order_threshold: np.ndarray  # 1/h_i: reverse Rényi is +inf at α ≥ 1/h_i
    kind: BoundKind = BoundKind.EXACT
    caveat: str = PDP_CAVEAT
    details: dict = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "kind", BoundKind.parse(self.kind))

    @property
    def symmetric(self) -> np.ndarray:
        return np.maximum(self.forward, self.reverse)


def _loo_pairs(loo: LeaveOneOut, temperature):
    if not isinstance(loo, LeaveOneOut):
        raise InvalidParameterError("loo", type(loo).__name__, "must be a LeaveOneOut result")
    tau = v.check_positive("temperature", temperature)
    h, r = loo.leverage, loo.residuals
    w2_f = h * r * r / (tau * (1.0 - h) ** 2)
    w2_r = h * r * r / (tau * (1.0 - h))
    return h, np.sqrt(w2_f), 1.0 / (1.0 - h), np.sqrt(w2_r), 1.0 - h


def loo_renyi(orders, loo: LeaveOneOut, *, temperature) -> PerInstanceDivergence:
    """Exact per-example Rényi between π_D = N(θ̂, τA⁻¹) and π_{−i} = N(θ̂_{−i}, τA_{−i}⁻¹).

    Arrays (n, k). The reverse direction is +inf for α ≥ 1/h_i (reported, never NaN).
    Derivation: docs/langevin_and_per_instance.md (rank-one reduction to N(0,1) vs N(w, ℓ)).
    """
    alpha = np.atleast_1d(v.check_orders(orders))
    h, wf, lf, wr, lr = _loo_pairs(loo, temperature)
    fwd = _renyi_1d(alpha[None, :], wf[:, None], lf[:, None])
    rev = _renyi_1d(alpha[None, :], wr[:, None], lr[:, None])
    return PerInstanceDivergence(fwd, rev, 1.0 / h, details={"orders": alpha})


def loo_hockey_stick(epsilon, loo: LeaveOneOut, *, temperature) -> PerInstanceDivergence:
    """Exact per-example δ(ε) between π_D and π_{−i}, both directions (1-D closed form)."""
    eps = v.check_epsilon(epsilon)
    h, wf, lf, wr, lr = _loo_pairs(loo, temperature)
    fwd = np.array([_hs1d(eps, w, ell) for w, ell in zip(wf, lf)])
    rev = np.array([_hs1d(eps, w, ell) for w, ell in zip(wr, lr)])
    return PerInstanceDivergence(fwd, rev, 1.0 / h, details={"epsilon": eps})


def loo_ula_hockey_stick(
    epsilon, loo: LeaveOneOut, index, *, temperature, learning_rate=None, rtol=1e-6
) -> dict[str, Bound]:
    """δ(ε) between the stationary ULA laws on D and on D∖{index}, both directions.

    With a step size the stationary precision is A(I − ηA/2)/τ, and deleting x_i changes it by
    a rank-2 matrix (xxᵀ and the symmetric xxᵀA + Axxᵀ − xxᵀxxᵀ part), so the pair is no
    longer a 1-D problem: each direction goes through :func:`gaussian_hockey_stick` (certified
    Fourier inversion; kind "exact" within ``rtol``, else a certified upper bound). Without a
    step size (continuous time) the change is rank one and the 1-D closed form is used.
    Returns {"forward": Bound, "reverse": Bound} (forward = E(π_D ‖ π_{−i}); each a
    :class:`~unlearn_theory.bounds.Bound` on δ from :func:`gaussian_hockey_stick`).
    """
    eps = v.check_epsilon(epsilon)
    if not isinstance(loo, LeaveOneOut):
        raise InvalidParameterError("loo", type(loo).__name__, "must be a LeaveOneOut result")
    i = v.check_int("index", index, minimum=0)
    if i >= loo.leverage.size:
        raise InvalidParameterError("index", i, f"must be < {loo.leverage.size}")
    f = loo.fit
    p = f.stationary_law(temperature=temperature, learning_rate=learning_rate)
    q = f.without([i]).stationary_law(temperature=temperature, learning_rate=learning_rate)
    return {
        "forward": gaussian_hockey_stick(eps, p.mean, p.cov, q.mean, q.cov, rtol=rtol),
        "reverse": gaussian_hockey_stick(eps, q.mean, q.cov, p.mean, p.cov, rtol=rtol),
    }


# ---------------------------------------------------------------------------------------------
# per-instance noise calibration (coupling lemma)


@dataclass(frozen=True)
class NoiseCalibration:
    """Per-instance noise s_i = Δ_i/μ(ε, δ) against the worst case max_i Δ_i/μ(ε, δ)."""

    noise_std: np.ndarray
    worst_case_noise_std: float
    savings_factor: np.ndarray  # worst / per-instance (inf where Δ_i = 0)
    mu: float
    epsilon: float
    delta: float
    kind: BoundKind = BoundKind.EXACT
    caveat: str = PDP_CAVEAT

    def __post_init__(self):
        object.__setattr__(self, "kind", BoundKind.parse(self.kind))


def calibrate_noise(sensitivities, *, epsilon, delta) -> NoiseCalibration:
    """Gaussian output noise per example from sensitivities Δ_i (coupling lemma, §11.5).

    Releasing θ + N(0, s_i²I) with ‖θ_U − θ_R‖ ≤ Δ_i is (ε, δ)-indistinguishable in both
    directions when s_i ≥ Δ_i/μ(ε, δ) (exact Gaussian profile; Balle & Wang 2018, arXiv
    1805.06530). Each s_i is re-checked: δ(ε; Δ_i/s_i) ≤ δ. Pass ``LeaveOneOut.shift_norms``
    for ridge deletion. pDP caveat applies.
    """
    from . import gaussian

    delta_arr = v.as_float_array("sensitivities", sensitivities)
    if delta_arr.ndim != 1 or delta_arr.size == 0:
        raise InvalidParameterError("sensitivities", sensitivities, "must be a non-empty 1-D array")
    if np.any(delta_arr < 0):
        raise InvalidParameterError("sensitivities", sensitivities, "must be >= 0")
    eps = v.check_positive("epsilon", epsilon)
    d = v.check_delta(delta)
    mu = float(gaussian.mu(epsilon=eps, delta=d))
    s = delta_arr / mu * (1.0 + 4e-16)
    pos = delta_arr > 0
    for _ in range(20):
        if not np.any(pos):
            break
        chk = np.asarray(gaussian.delta(eps, mu=delta_arr[pos] / s[pos]))
        bad = chk > d
        if not np.any(bad):
            break
        sp = s[pos]
        sp[bad] = np.nextafter(sp[bad], np.inf) * (1.0 + 1e-15)
        s[pos] = sp
    else:
        raise NumericalPrecisionError("per-instance noise does not re-certify the target")
    worst = float(np.max(s))
    with np.errstate(divide="ignore"):
        savings = np.where(pos, worst / np.where(pos, s, 1.0), np.inf)
    return NoiseCalibration(s, worst, savings, mu, eps, d)
