r"""Plots of privacy curves: δ(ε) profiles, ε against the number of steps, certified vs audited.

Every function returns a :class:`matplotlib.figure.Figure` built with matplotlib's object API
(``Figure`` with its own Agg canvas): ``matplotlib.pyplot`` is never imported and the global
backend is never switched, so the functions are safe in notebooks, GUIs and servers alike.
``path=`` also saves the figure (format from the suffix); ``ax=`` draws into existing axes
instead (the returned figure is then ``ax.figure``). matplotlib is imported inside the
functions only (``pip install "unlearn[plots]"``); this module imports without it.

What is drawn is computed by the library, never re-derived here:

* :func:`delta_curves` / :func:`plot_privacy_profile`: δ(ε) of T-fold composed Gaussian
  (N(0,1) vs N(mu,1)) or Poisson-subsampled Gaussian mechanisms, as three curves: ``"exact"``
  (:func:`unlearn_theory.gaussian.delta` of the composed μ√T; Gaussian only), ``"renyi"``
  (the RDP curve T·ρ(α) converted by :func:`unlearn_theory.renyi.to_delta`: an UPPER bound)
  and ``"pld"`` (:class:`unlearn_theory.pld.PrivacyLossDistribution`, its certified ``.upper``).
  Every curve is exact or an upper bound, so each lies on or above the exact one.
* :func:`epsilon_by_steps` / :func:`plot_epsilon_vs_steps`: the certified ε
  (:func:`unlearn_theory.certify`) of a method as its step count varies.
* :func:`plot_certified_vs_audited`: per case, the certified ε (upper bound), the exact ε where
  known, and the audited ε with its confidence interval (a Monte Carlo audit gives a one-sided
  lower confidence bound; a two-sided interval is drawn when an upper end is given). Results of
  :func:`verification.audit.audit_method` are accepted as they are.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from os import PathLike
from typing import TYPE_CHECKING, Any

import numpy as np

from unlearn_theory import _validate as v
from unlearn_theory.errors import InvalidParameterError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "DEFAULT_ORDERS",
    "CURVE_LABELS",
    "PLD_GRID",
    "delta_curves",
    "plot_delta_curves",
    "plot_privacy_profile",
    "epsilon_by_steps",
    "plot_epsilon_vs_steps",
    "plot_certified_vs_audited",
]

#: Rényi orders used for the RDP conversion when none are given (dp-accounting's usual set)
DEFAULT_ORDERS = np.concatenate(
    [np.linspace(1.25, 10.75, 39), np.arange(11.0, 64.0), [128.0, 256.0, 512.0, 1024.0]]
)
#: legend text of the curves of :func:`delta_curves`
CURVE_LABELS = {
    "exact": "exact",
    "renyi": "Rényi DP, converted (upper)",
    "pld": "PLD (upper)",
}
_CURVES = tuple(CURVE_LABELS)
#: PLD discretisation used for plots: coarser than the accountant's default, still an upper bound
#: (about 1e-4 relative above the exact Gaussian curve at 10 steps) and much faster
PLD_GRID = 5e-3


# -- figures without pyplot ---------------------------------------------------------------------
def _new_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """Axes to draw on: ``ax`` itself, or one on a new Figure with its own Agg canvas."""
    if ax is not None:
        return ax.figure, ax
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:  # pragma: no cover - matplotlib is a test dependency
        raise ImportError('plotting needs matplotlib: pip install "unlearn[plots]"') from err
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)  # the figure's own canvas: pyplot's backend is not involved
    return fig, fig.add_subplot()


def _finish(fig: Figure, path: str | PathLike | None) -> Figure:
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def _epsilons(epsilons: object, name: str = "epsilons") -> np.ndarray:
    e = v.as_float_array(name, epsilons)
    if e.ndim != 1 or e.size == 0:
        raise InvalidParameterError(name, epsilons, "must be a non-empty 1-D sequence")
    if np.any(e < 0):
        raise InvalidParameterError(name, epsilons, "every epsilon must be >= 0")
    return e


# -- δ(ε) profiles ------------------------------------------------------------------------------
def delta_curves(
    epsilons: Sequence[float] | np.ndarray,
    *,
    mu: float | None = None,
    sample_rate: float | None = None,
    noise_multiplier: float | None = None,
    steps: int = 1,
    orders: Sequence[float] | np.ndarray | None = None,
    curves: Iterable[str] | None = None,
    grid: float | None = PLD_GRID,
) -> dict[str, np.ndarray]:
    r"""δ(ε) at each of ``epsilons`` of ``steps`` composed mechanisms, one array per curve.

    The mechanism is the Gaussian N(0,1) vs N(mu,1) (give ``mu``) or the Poisson-subsampled
    Gaussian with ``sample_rate`` q and ``noise_multiplier`` z (add/remove). ``curves``: any of
    ``"exact"`` (Gaussian only: δ of N(0,1) vs N(μ√T,1), Balle & Wang 2018, arXiv 1805.06530,
    Thm 8), ``"renyi"`` (T·ρ(α) on ``orders`` converted to δ, an UPPER bound) and ``"pld"``
    (the PLD accountant's certified UPPER bound, discretisation ``grid``; None: its own
    default, tighter and slower); default: all that apply. Each curve is exact or an upper
    bound: never below the exact one.

    >>> curves = delta_curves([0.5, 1.0], mu=1.0, steps=4, curves=("exact", "renyi"))
    >>> bool(np.all(curves["renyi"] >= curves["exact"]))
    True
    >>> [round(float(x), 4) for x in curves["exact"]]
    [0.5992, 0.5099]
    """
    e = _epsilons(epsilons)
    steps = v.check_int("steps", steps, minimum=1)
    if curves is None:
        curves = _CURVES if mu is not None else ("renyi", "pld")
    wanted = tuple(curves)
    for name in wanted:
        if name not in _CURVES:
            raise InvalidParameterError("curves", name, f"must be among {', '.join(_CURVES)}")
    if not wanted:
        raise InvalidParameterError("curves", curves, "must name at least one curve")
    from unlearn_theory import gaussian, renyi
    from unlearn_theory.pld import PrivacyLossDistribution

    alphas = v.check_orders(DEFAULT_ORDERS if orders is None else orders)
    if mu is not None:
        if sample_rate is not None or noise_multiplier is not None:
            raise InvalidParameterError(
                "mu", mu, "give mu (Gaussian) or sample_rate and noise_multiplier, not both"
            )
        mu = v.check_positive("mu", mu)
        rdp = steps * np.asarray(renyi.gaussian(alphas, mu=mu), dtype=float)
        make_pld = lambda: PrivacyLossDistribution.from_gaussian(mu=mu)  # noqa: E731
    else:
        if sample_rate is None or noise_multiplier is None:
            raise InvalidParameterError(
                "mu", None, "give mu (Gaussian) or both sample_rate and noise_multiplier"
            )
        if "exact" in wanted:
            raise InvalidParameterError(
                "curves", "exact", "no exact curve for the subsampled Gaussian: use renyi, pld"
            )
        q = v.check_sample_rate(sample_rate)
        z = v.check_positive("noise_multiplier", noise_multiplier)
        rdp = steps * np.asarray(
            renyi.subsampled_gaussian(alphas, sample_rate=q, noise_multiplier=z), dtype=float
        )
        make_pld = lambda: PrivacyLossDistribution.from_subsampled_gaussian(  # noqa: E731
            sample_rate=q, noise_multiplier=z
        )
    out: dict[str, np.ndarray] = {}
    for name in wanted:
        if name == "exact":
            out[name] = np.atleast_1d(gaussian.delta(e, mu=mu * math.sqrt(steps))).astype(float)
        elif name == "renyi":
            out[name] = np.array([float(renyi.to_delta(alphas, rdp, epsilon=float(x))) for x in e])
        else:
            pld = make_pld()
            if steps > 1:
                pld = pld.self_compose(steps)
            out[name] = np.array([pld.delta(float(x), grid=grid).upper for x in e])
    return out


def plot_delta_curves(
    epsilons: Sequence[float] | np.ndarray,
    curves: Mapping[str, Sequence[float] | np.ndarray],
    *,
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
    ax: Axes | None = None,
    path: str | PathLike | None = None,
) -> Figure:
    """δ against ε on a log axis, one line per entry of ``curves`` (name -> δ values).

    ``labels`` maps a curve name to its legend text (default: :data:`CURVE_LABELS`, else the
    name). δ = 0 points are left out (log axis). Returns the Figure (saved to ``path`` if
    given).

    >>> fig = plot_delta_curves([0.5, 1.0], {"exact": [0.2, 0.1]})
    >>> [line.get_label() for line in fig.axes[0].get_lines()]
    ['exact']
    """
    e = _epsilons(epsilons)
    if not isinstance(curves, Mapping) or not curves:
        raise InvalidParameterError("curves", curves, "must be a non-empty mapping name -> deltas")
    data = {}
    for name, values in curves.items():
        d = v.as_float_array(f"curves[{name!r}]", values)
        if d.shape != e.shape:
            raise InvalidParameterError(
                f"curves[{name!r}]", values, f"must have one delta per epsilon ({e.size})"
            )
        if np.any((d < 0) | (d > 1)):
            raise InvalidParameterError(f"curves[{name!r}]", values, "deltas must lie in [0, 1]")
        data[name] = d
    names = dict(CURVE_LABELS, **(labels or {}))
    fig, axes = _new_axes(ax, (5.0, 3.5))
    styles = {"exact": "-", "renyi": "--", "pld": ":"}
    for name, d in data.items():
        shown = d > 0
        axes.plot(e[shown], d[shown], styles.get(name, "-"), label=names.get(name, name))
    axes.set_yscale("log")
    axes.set_xlabel("epsilon")
    axes.set_ylabel("delta(epsilon)")
    if title:
        axes.set_title(title)
    axes.legend()
    return _finish(fig, path)


def plot_privacy_profile(
    epsilons: Sequence[float] | np.ndarray,
    *,
    mu: float | None = None,
    sample_rate: float | None = None,
    noise_multiplier: float | None = None,
    steps: int = 1,
    orders: Sequence[float] | np.ndarray | None = None,
    curves: Iterable[str] | None = None,
    grid: float | None = PLD_GRID,
    title: str | None = None,
    ax: Axes | None = None,
    path: str | PathLike | None = None,
) -> Figure:
    """:func:`delta_curves` drawn by :func:`plot_delta_curves` (default curves: exact, Rényi
    and PLD for the Gaussian; Rényi and PLD for the subsampled Gaussian).

    >>> fig = plot_privacy_profile([0.5, 1.0, 2.0], mu=1.0, steps=4, curves=("exact", "renyi"))
    >>> fig.axes[0].get_yscale()
    'log'
    """
    data = delta_curves(
        epsilons,
        mu=mu,
        sample_rate=sample_rate,
        noise_multiplier=noise_multiplier,
        steps=steps,
        orders=orders,
        curves=curves,
        grid=grid,
    )
    if title is None:
        what = (
            f"Gaussian mu={mu:g}"
            if mu is not None
            else f"subsampled Gaussian q={sample_rate:g}, z={noise_multiplier:g}"
        )
        title = f"{what}, {steps} step{'s' if steps != 1 else ''}"
    return plot_delta_curves(epsilons, data, title=title, ax=ax, path=path)


# -- ε against steps ----------------------------------------------------------------------------
def epsilon_by_steps(
    method: str, steps: Sequence[int] | np.ndarray, *, delta: float, **params: Any
) -> np.ndarray:
    """Certified ε (:func:`unlearn_theory.certify`, an upper bound or exact) of ``method`` at
    ``delta`` for each step count in ``steps``; ``params``: the method's other parameters.

    >>> eps = epsilon_by_steps("gradient_clipping", [1, 5, 20], delta=1e-5, noise_std=0.5,
    ...                        clip_initial=1.0, clip_gradient=1.0, learning_rate=0.5,
    ...                        weight_decay=1.0)
    >>> bool(eps[0] > eps[1] > eps[2])  # more noisy contracting steps, less privacy loss
    True
    """
    from unlearn_theory import certify

    counts = [v.check_int("steps", t, minimum=0) for t in np.atleast_1d(steps).tolist()]
    if not counts:
        raise InvalidParameterError("steps", steps, "must name at least one step count")
    return np.array([float(certify(method, delta=delta, steps=t, **params)) for t in counts])


def plot_epsilon_vs_steps(
    steps: Sequence[int] | np.ndarray,
    epsilons: Mapping[str, Sequence[float] | np.ndarray],
    *,
    delta: float | None = None,
    logx: bool = False,
    title: str | None = None,
    ax: Axes | None = None,
    path: str | PathLike | None = None,
) -> Figure:
    """ε against the number of steps, one line per entry of ``epsilons`` (label -> ε values,
    e.g. from :func:`epsilon_by_steps`); ``delta`` goes into the axis label.

    >>> fig = plot_epsilon_vs_steps([1, 2, 4], {"gradient clipping": [3.0, 2.0, 1.5]}, delta=1e-5)
    >>> fig.axes[0].get_ylabel()
    'epsilon at delta=1e-05'
    """
    t = v.as_float_array("steps", steps)
    if t.ndim != 1 or t.size == 0 or np.any(t < 0):
        raise InvalidParameterError(
            "steps", steps, "must be a non-empty 1-D sequence of counts >= 0"
        )
    if not isinstance(epsilons, Mapping) or not epsilons:
        raise InvalidParameterError(
            "epsilons", epsilons, "must be a non-empty mapping label -> epsilons"
        )
    if delta is not None:
        delta = v.check_delta(delta)
    fig, axes = _new_axes(ax, (5.0, 3.5))
    for label, values in epsilons.items():
        eps = v.as_float_array(f"epsilons[{label!r}]", values)
        if eps.shape != t.shape:
            raise InvalidParameterError(
                f"epsilons[{label!r}]", values, f"must have one epsilon per step count ({t.size})"
            )
        axes.plot(t, eps, "o-", markersize=3, label=str(label))
    if logx:
        axes.set_xscale("log")
    axes.set_xlabel("steps")
    axes.set_ylabel("epsilon" if delta is None else f"epsilon at delta={delta:g}")
    if title:
        axes.set_title(title)
    axes.legend()
    return _finish(fig, path)


# -- certified vs audited -----------------------------------------------------------------------
def _optional_float(row: Mapping[str, Any], key: str, i: int) -> float | None:
    value = row.get(key)
    if value is None:
        return None
    return v.check_real(f"results[{i}][{key!r}]", value)


def plot_certified_vs_audited(
    results: Sequence[Mapping[str, Any]],
    *,
    title: str | None = None,
    ax: Axes | None = None,
    path: str | PathLike | None = None,
) -> Figure:
    """Per case: certified ε (upper bound), exact ε (when known) and the audited ε with its
    confidence interval.

    Each entry of ``results`` is a mapping with ``epsilon_certified`` and any of
    ``epsilon_lower`` (the audit's lower confidence bound; None when precision was not
    reached), ``epsilon_upper`` (an upper confidence end, for a two-sided interval),
    ``epsilon_estimate`` (a point estimate), ``epsilon_exact``, ``confidence`` and ``label``
    (default: ``method`` and ``loss``). :func:`verification.audit.audit_method` results fit as
    they are. A one-sided interval is drawn from the lower bound up to the certified value;
    a sound certificate keeps every interval's lower end at or below it.

    >>> fig = plot_certified_vs_audited([
    ...     {"label": "toy", "epsilon_certified": 1.2, "epsilon_lower": 0.8,
    ...      "epsilon_exact": 1.0, "confidence": 0.95}])
    >>> sorted(fig.axes[0].get_legend_handles_labels()[1])
    ['audited (95% confidence)', 'certified (upper bound)', 'exact']
    """
    if isinstance(results, Mapping):
        results = [results]
    rows = list(results)
    if not rows:
        raise InvalidParameterError("results", results, "must hold at least one result")
    fig, axes = _new_axes(ax, (max(4.0, 1.0 + 0.9 * len(rows)), 3.5))
    labels, confidences = [], set()
    seen = set()

    def once(name: str) -> str:
        if name in seen:
            return "_nolegend_"
        seen.add(name)
        return name

    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise InvalidParameterError(f"results[{i}]", row, "must be a mapping")
        certified = row.get("epsilon_certified")
        if certified is None:
            raise InvalidParameterError(f"results[{i}]", row, "has no 'epsilon_certified'")
        certified = v.check_nonnegative(f"results[{i}]['epsilon_certified']", certified)
        lower = _optional_float(row, "epsilon_lower", i)
        upper = _optional_float(row, "epsilon_upper", i)
        estimate = _optional_float(row, "epsilon_estimate", i)
        exact = _optional_float(row, "epsilon_exact", i)
        if row.get("confidence") is not None:
            confidences.add(float(row["confidence"]))
        label = row.get("label")
        if label is None:
            label = " ".join(str(row[k]) for k in ("method", "loss") if row.get(k)) or str(i)
        labels.append(str(label))
        axes.plot(
            [i], [certified], "v", color="C0", markersize=8, label=once("certified (upper bound)")
        )
        if exact is not None:
            axes.plot([i], [exact], "x", color="k", label=once("exact"))
        if lower is not None:
            top = upper if upper is not None else max(certified, lower)
            audited = "audited"
            axes.vlines(i + 0.12, lower, top, color="C1", alpha=0.6 if upper is None else 1.0)
            axes.plot([i + 0.12], [lower], "^", color="C1", label=once(audited))
            if estimate is not None:
                axes.plot([i + 0.12], [estimate], "o", color="C1", markersize=4)
    # the legend names the confidence level when every result shares one
    if len(confidences) == 1 and "audited" in seen:
        for line in axes.get_lines():
            if line.get_label() == "audited":
                line.set_label(f"audited ({confidences.pop():.0%} confidence)")
                break
    axes.set_xticks(range(len(rows)), labels, rotation=20 if len(rows) > 3 else 0)
    axes.set_xlim(-0.5, len(rows) - 0.5)
    axes.set_ylabel("epsilon")
    if title:
        axes.set_title(title)
    axes.legend()
    return _finish(fig, path)
