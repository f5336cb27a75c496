"""JSON audit reports, tightness tables, optional privacy-profile plots (matplotlib lazily)."""

from __future__ import annotations

import json

import numpy as np

from .audit import profile_curves

__all__ = ["to_json", "tightness_table", "plot_profile", "plot_audit", "audit_report"]


def to_json(results, *, indent=2) -> str:
    """Serialise audit results (dicts or objects with ``to_dict``) to JSON."""
    items = results if isinstance(results, (list, tuple)) else [results]
    return json.dumps([r.to_dict() if hasattr(r, "to_dict") else r for r in items], indent=indent)


def tightness_table(results) -> str:
    """Markdown table: method, case, lower (MC), exact, certified, certified/exact.

    Accepts :func:`verification.audit.audit_method` results and
    :func:`verification.audit.tightness_rows` rows. A ratio < 1 would be a soundness bug.
    """
    lines = [
        "| method | case | lower (MC) | exact | certified | certified/exact |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        ex, ce, lo = r.get("epsilon_exact"), r["epsilon_certified"], r.get("epsilon_lower")
        ratio = f"{ce / ex:.3f}" if ex else "n/a"
        f = lambda x: "n/a" if x is None else f"{x:.4f}"  # noqa: E731
        lines.append(
            f"| {r['method']} | {r.get('loss', '')} | {f(lo)} | {f(ex)} | {f(ce)} | {ratio} |"
        )
    return "\n".join(lines)


def plot_profile(epsilons, *, certified, exact=None, lower=None, upper=None, path=None):
    """Privacy profile delta(eps): certified vs exact vs empirical band [lower, upper].

    A Figure with its own canvas (:mod:`verification.plots`): matplotlib's global backend and
    pyplot are left alone."""
    from .plots import _new_axes

    e = np.asarray(epsilons, dtype=float)
    fig, ax = _new_axes(None, (5, 3.5))
    ax.semilogy(e, certified, label="certified (upper)")
    if exact is not None:
        ax.semilogy(e, exact, "--", label="exact")
    if lower is not None:
        hi = upper if upper is not None else lower
        ax.fill_between(
            e, np.maximum(lower, 1e-300), hi, alpha=0.3, label="empirical (confidence band)"
        )
    ax.set_xlabel("epsilon")
    ax.set_ylabel("delta")
    ax.legend()
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig


def plot_audit(out, *, path=None, deltas=None):
    """Privacy profile of one audit: certified vs exact vs empirical lower bound (the band
    between the jointly valid lower bound and the certificate), epsilon against delta. A Figure
    with its own canvas: matplotlib's global backend and pyplot are left alone."""
    from .plots import _new_axes

    c = profile_curves(out, deltas=deltas)
    fig, ax = _new_axes(None, (5, 3.5))
    ax.semilogy(c["certified"], c["delta"], label="certified (upper)")
    if c["exact"] is not None:
        ax.semilogy(c["exact"], c["delta"], "--", label="exact")
    ax.semilogy(c["lower"], c["delta"], ":", label=f"empirical lower ({out['confidence']:.0%})")
    ax.fill_betweenx(c["delta"], c["lower"], c["certified"], alpha=0.15)
    ax.set_xlabel("epsilon")
    ax.set_ylabel("delta")
    ax.set_title(f"{out['method']} ({out['loss']})")
    ax.legend()
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig


def audit_report(results, *, tightness=None) -> dict:
    """JSON-ready report: audits (without the bulky per-threshold counts), the tightness rows
    (certified/exact per method) and a markdown table of both."""
    items = results if isinstance(results, (list, tuple)) else [results]
    slim = []
    for r in items:
        r = dict(r)
        if "audit" in r:
            r["audit"] = {
                k: v
                for k, v in r["audit"].items()
                if k not in ("grid", "false_positives", "false_negatives")
            }
        slim.append(r)
    rows = list(tightness or [])
    return {
        "audits": slim,
        "tightness": rows,
        "table": tightness_table(slim + rows),
        "all_consistent": all(r.get("consistent", True) for r in slim)
        and all(r.get("ratio") is None or r["ratio"] >= 1 - 1e-9 for r in rows),
    }
