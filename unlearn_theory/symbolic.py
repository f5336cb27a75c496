r"""Symbolic (sympy) forms of the closed-form bounds, for theorists.

Importing this module does NOT import sympy: every function imports it lazily, so
``import unlearn_theory`` (and ``import unlearn_theory.symbolic``) stays light. sympy is an
optional dependency (``pip install unlearn[symbolic]``).

Named expressions (:func:`names`, :func:`expression`, :func:`latex`, :func:`lambdify`):

=================================== ===========================================================
``gaussian_delta``                  δ(ε; μ) = Φ(μ/2 − ε/μ) − e^ε Φ(−μ/2 − ε/μ) [EXACT]
                                    (Balle & Wang 2018, arXiv 1805.06530, Thm 8)
``gaussian_rdp``                    ρ(α) = α μ²/2 [EXACT] (Mironov 2017, arXiv 1702.07476)
``subsampled_gaussian_rdp``         (1/(α−1)) log Σ_{k=0}^{α} C(α,k)(1−q)^{α−k} q^k e^{(k²−k)/(2z²)},
                                    integer α, Poisson, add/remove [EXACT] (Mironov, Talwar &
                                    Zhang 2019, arXiv 1908.10530); :func:`subsampled_gaussian_rdp`
                                    expands it for one integer order
``shifted_renyi_B``, ``_W``         B = 2C0ρ^T + 2C1(1 − ρ^T)/λ, W = (1 − ρ^{2T})/(γλ(2 − γλ)),
                                    ρ = 1 − γλ (docs/theory.md §6.3; λ = 0 forms with suffix ``_lambda0``:
                                    B = 2C0 + 2γC1T, W = T)
``shifted_renyi_coefficient``       a = B²/(2σ²W): D_α ≤ α·a [UPPER] (Feldman et al. 2018, arXiv
                                    1808.06651, shift/contraction reductions; docs/theory.md §6.3)
``koloskova_variance``              σ² = 72γλL(C0(1−γλ)^T + C1/λ)²/ε² (λ > 0) and
``koloskova_variance_lambda0``      σ² = 9L(C0 + γC1T)²/(ε²T) (λ = 0), L = log(1/δ), as
                                    transcribed (Koloskova et al. 2025, arXiv 2506.06985) [2nd]
``mironov_max_coefficient``         a_max^M = (√(L+ε) − √L)² (Mironov 2017, Prop. 3, at its
                                    optimal order α* = 1 + √(L/a)) [UPPER-certifying budget]
``mironov_optimal_order``           q* = 1 + (L + √(L² + Lε))/ε (Dolgova & Stich's minimiser of
                                    q/ε_q, docs/theory.md §3.4); ε_q*/q* = a_max^M
``blockwise_variance``              σ_b² = k·B²/(2W·a): per-block budget a/k (docs/theory.md §8.2)
``dolgova_stich_variance``          σ_b² = k·(2/a)·γ(2 − γλ)C0C1(2 − λC0/C1) at T* (formula
                                    (A2) of the authors' code [code], docs/theory.md §6.4/§8.4)
``optimal_steps``                   T* = log(1 − λC0/C1)/log(1 − γλ) (docs/theory.md §6.4)
``optimal_steps_lambda0``           T* = C0/(γC1)
=================================== ===========================================================

:func:`optimal_steps_derivation` re-derives T* symbolically: with x = ρ^T and β = C1/λ,
B²/W = 4γλ(2 − γλ)·f(x), f(x) = (C0x + β(1 − x))²/(1 − x²), and f'(x) = 0 at x* = 1 − λC0/C1;
the written derivation is docs/optimal_steps.md.
"""

from __future__ import annotations

from .errors import InvalidParameterError

__all__ = [
    "symbols",
    "names",
    "expression",
    "latex",
    "lambdify",
    "evaluate",
    "subsampled_gaussian_rdp",
    "optimal_steps_derivation",
]


def _sp():
    try:
        import sympy
    except ImportError as exc:  # pragma: no cover - sympy is a test/dev dependency
        raise ImportError(
            "unlearn_theory.symbolic needs sympy: pip install 'unlearn[symbolic]'"
        ) from exc
    return sympy


def symbols() -> dict:
    """The sympy symbols used by every expression, keyed by the library's vocabulary."""
    sp = _sp()
    pos = dict(positive=True, real=True)
    return {
        "epsilon": sp.Symbol("epsilon", **pos),
        "delta": sp.Symbol("delta", **pos),
        "L": sp.Symbol("L", **pos),  # log(1/δ)
        "mu": sp.Symbol("mu", **pos),
        "order": sp.Symbol("alpha", **pos),
        "sample_rate": sp.Symbol("q", **pos),
        "noise_multiplier": sp.Symbol("z", **pos),
        "noise_std": sp.Symbol("sigma", **pos),
        "clip_initial": sp.Symbol("C_0", **pos),
        "clip_gradient": sp.Symbol("C_1", **pos),
        "learning_rate": sp.Symbol("gamma", **pos),
        "weight_decay": sp.Symbol("lambda", **pos),
        "steps": sp.Symbol("T", **pos),
        "blocks": sp.Symbol("k", **pos),
        "coefficient": sp.Symbol("a", **pos),
        "x": sp.Symbol("x", **pos),  # ρ^T
    }


def _phi(sp, x):
    """Standard normal CDF Φ(x) = (1 + erf(x/√2))/2."""
    return (1 + sp.erf(x / sp.sqrt(2))) / 2


def _builders():
    sp = _sp()
    s = symbols()
    eps, L, mu, al = s["epsilon"], s["L"], s["mu"], s["order"]
    q, z, sig = s["sample_rate"], s["noise_multiplier"], s["noise_std"]
    c0, c1, g, lam, T = (
        s["clip_initial"],
        s["clip_gradient"],
        s["learning_rate"],
        s["weight_decay"],
        s["steps"],
    )
    k, a = s["blocks"], s["coefficient"]
    rho = 1 - g * lam
    B = 2 * c0 * rho**T + 2 * c1 * (1 - rho**T) / lam
    W = (1 - rho ** (2 * T)) / (g * lam * (2 - g * lam))
    B0 = 2 * c0 + 2 * g * c1 * T
    W0 = T
    j = sp.Symbol("j", integer=True, nonnegative=True)
    return {
        "gaussian_delta": lambda: (
            _phi(sp, mu / 2 - eps / mu) - sp.exp(eps) * _phi(sp, -mu / 2 - eps / mu)
        ),
        "gaussian_rdp": lambda: al * mu**2 / 2,
        "subsampled_gaussian_rdp": lambda: (
            sp.log(
                sp.Sum(
                    sp.binomial(al, j)
                    * (1 - q) ** (al - j)
                    * q**j
                    * sp.exp((j**2 - j) / (2 * z**2)),
                    (j, 0, al),
                )
            )
            / (al - 1)
        ),
        "shifted_renyi_B": lambda: B,
        "shifted_renyi_W": lambda: W,
        "shifted_renyi_B_lambda0": lambda: B0,
        "shifted_renyi_W_lambda0": lambda: W0,
        "shifted_renyi_coefficient": lambda: B**2 / (2 * sig**2 * W),
        "shifted_renyi_coefficient_lambda0": lambda: B0**2 / (2 * sig**2 * W0),
        "koloskova_variance": lambda: 72 * g * lam * L * (c0 * rho**T + c1 / lam) ** 2 / eps**2,
        "koloskova_variance_lambda0": lambda: 9 * L * (c0 + g * c1 * T) ** 2 / (eps**2 * T),
        "mironov_max_coefficient": lambda: (sp.sqrt(L + eps) - sp.sqrt(L)) ** 2,
        "mironov_optimal_order": lambda: 1 + (L + sp.sqrt(L**2 + L * eps)) / eps,
        "blockwise_variance": lambda: k * B**2 / (2 * W * a),
        "dolgova_stich_variance": lambda: (
            k * (2 / a) * g * (2 - g * lam) * c0 * c1 * (2 - lam * c0 / c1)
        ),
        "optimal_steps": lambda: sp.log(1 - lam * c0 / c1) / sp.log(1 - g * lam),
        "optimal_steps_lambda0": lambda: c0 / (g * c1),
    }


_NAMES = (
    "gaussian_delta",
    "gaussian_rdp",
    "subsampled_gaussian_rdp",
    "shifted_renyi_B",
    "shifted_renyi_W",
    "shifted_renyi_B_lambda0",
    "shifted_renyi_W_lambda0",
    "shifted_renyi_coefficient",
    "shifted_renyi_coefficient_lambda0",
    "koloskova_variance",
    "koloskova_variance_lambda0",
    "mironov_max_coefficient",
    "mironov_optimal_order",
    "blockwise_variance",
    "dolgova_stich_variance",
    "optimal_steps",
    "optimal_steps_lambda0",
)


def names() -> tuple[str, ...]:
    """Names accepted by :func:`expression`, :func:`latex` and :func:`lambdify`."""
    return _NAMES


def expression(name: str):
    """The sympy expression called ``name`` (see the module docstring)."""
    if name not in _NAMES:
        raise InvalidParameterError("name", name, f"unknown expression; known: {', '.join(_NAMES)}")
    return _builders()[name]()


def latex(name: str) -> str:
    """LaTeX source of the expression ``name`` (``sympy.latex``)."""
    return _sp().latex(expression(name))


def lambdify(name: str, *, module: str = "mpmath"):
    """(function, argument names): the expression compiled by ``sympy.lambdify``.

    Arguments are the free symbols in sorted vocabulary order (names of :func:`symbols`).
    ``module="mpmath"`` (default) evaluates at mpmath's working precision, the oracle setting;
    ``"numpy"``/``"scipy"`` give vectorised float64 kernels. ``subsampled_gaussian_rdp`` with a
    symbolic order is not lambdifiable: use :func:`subsampled_gaussian_rdp` (an integer order).
    """
    sp = _sp()
    expr = expression(name)
    return _lambdify_expr(sp, expr, module)


def evaluate(name: str, *, module: str = "mpmath", **values):
    """Evaluate the expression ``name`` at keyword ``values`` named as in :func:`symbols`
    (e.g. ``evaluate("gaussian_delta", epsilon=1.0, mu=0.5)``); every free symbol is required."""
    fn, args = lambdify(name, module=module)
    missing = [a for a in args if a not in values]
    if missing:
        raise InvalidParameterError(missing[0], None, f"is required to evaluate {name!r}")
    extra = sorted(set(values) - set(args))
    if extra:
        raise InvalidParameterError(extra[0], values[extra[0]], f"is not a symbol of {name!r}")
    return fn(*(values[a] for a in args))


def _lambdify_expr(sp, expr, module):
    by_symbol = {sym: key for key, sym in symbols().items()}
    free = sorted(expr.free_symbols, key=lambda x: by_symbol.get(x, str(x)))
    if any(sym not in by_symbol for sym in free):  # pragma: no cover - bound variables only
        raise InvalidParameterError("name", str(expr), "has free symbols outside the vocabulary")
    modules = [module] if module == "mpmath" else [module, "scipy"]
    fn = sp.lambdify(free, expr, modules=modules)
    return fn, tuple(by_symbol[x] for x in free)


def subsampled_gaussian_rdp(order: int, *, lambdified: bool = False, module: str = "mpmath"):
    """The Poisson-subsampled Gaussian RDP at one integer ``order`` ≥ 2, as an explicit finite
    binomial sum in q and z (add/remove, sensitivity 1) [EXACT]. With ``lambdified=True``
    returns (function, argument names) as :func:`lambdify` does."""
    from . import _validate as v

    n = v.check_int("order", order, minimum=2)
    sp = _sp()
    s = symbols()
    q, z = s["sample_rate"], s["noise_multiplier"]
    total = sum(
        sp.binomial(n, j) * (1 - q) ** (n - j) * q**j * sp.exp(sp.Rational(j * j - j, 2) / z**2)
        for j in range(n + 1)
    )
    expr = sp.log(total) / (n - 1)
    if lambdified:
        return _lambdify_expr(sp, expr, module)
    return expr


def optimal_steps_derivation() -> dict:
    """Symbolic derivation of the optimal step count (docs/theory.md §6.4; docs/optimal_steps.md).

    Returns a dict of sympy objects and booleans:
    ``f`` = (C0x + β(1 − x))²/(1 − x²) with x = ρ^T, β = C1/λ; ``B2_over_W`` = its identity
    B²/W = 4γλ(2 − γλ)·f (checked); ``derivative`` = f'(x); ``stationary_factor`` = the factor
    whose root is the minimiser, (C0 − β) + βx; ``x_star`` = 1 − λC0/C1; ``derivative_at_x_star``
    (simplifies to 0); ``steps_star`` = log(x*)/log(1 − γλ); ``min_B2_over_W`` =
    4γ(2 − γλ)C0C1(2 − λC0/C1) (checked against B²/W at x*); ``lambda0_steps_star`` = C0/(γC1)
    (the stationary point of (2C0 + 2γC1T)²/T); and ``checks``: every identity's verdict.
    """
    sp = _sp()
    s = symbols()
    c0, c1, g, lam, x, T = (
        s["clip_initial"],
        s["clip_gradient"],
        s["learning_rate"],
        s["weight_decay"],
        s["x"],
        s["steps"],
    )
    beta = c1 / lam
    f = (c0 * x + beta * (1 - x)) ** 2 / (1 - x**2)
    B = 2 * c0 * x + 2 * c1 * (1 - x) / lam
    W = (1 - x**2) / (g * lam * (2 - g * lam))
    identity = sp.simplify(B**2 / W - 4 * g * lam * (2 - g * lam) * f) == 0
    df = sp.diff(f, x)
    # f'(x) = 2 (C0x + β(1−x)) · [(C0 − β) + βx] / (1 − x²)²
    factor = (c0 - beta) + beta * x
    factored = sp.simplify(df - 2 * (c0 * x + beta * (1 - x)) * factor / (1 - x**2) ** 2) == 0
    roots = sp.solve(sp.Eq(factor, 0), x)
    x_star = 1 - lam * c0 / c1
    root_ok = len(roots) == 1 and sp.simplify(roots[0] - x_star) == 0
    d_at = sp.simplify(df.subs(x, x_star))
    min_val = 4 * g * (2 - g * lam) * c0 * c1 * (2 - lam * c0 / c1)
    min_ok = sp.simplify((B**2 / W).subs(x, x_star) - min_val) == 0
    h = (2 * c0 + 2 * g * c1 * T) ** 2 / T
    lam0_roots = sp.solve(sp.Eq(sp.diff(h, T), 0), T)
    lam0_star = c0 / (g * c1)
    lam0_ok = any(sp.simplify(r - lam0_star) == 0 for r in lam0_roots)
    return {
        "f": f,
        "B2_over_W": 4 * g * lam * (2 - g * lam) * f,
        "derivative": df,
        "stationary_factor": factor,
        "x_star": x_star,
        "derivative_at_x_star": d_at,
        "steps_star": sp.log(x_star) / sp.log(1 - g * lam),
        "min_B2_over_W": min_val,
        "lambda0_steps_star": lam0_star,
        "checks": {
            "B2_over_W_identity": bool(identity),
            "derivative_factorisation": bool(factored),
            "unique_stationary_point": bool(root_ok),
            "derivative_zero_at_x_star": bool(d_at == 0),
            "minimum_value": bool(min_ok),
            "lambda0_stationary_point": bool(lam0_ok),
        },
    }
