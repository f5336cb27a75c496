"""The digits setting shared by the demo (``unlearn demo``) and the membership evaluation.

scikit-learn's digits (bundled in its wheel, never downloaded) with one fixed train/test split,
and the unlearning problem each method is planned for on it. Kept here, below the command line,
so that :mod:`verification.membership` attacks exactly the runs the demo shows.
"""

from __future__ import annotations

__all__ = ["load_digits_split", "method_params"]


def load_digits_split(torch):
    """(X, y, train indices, test indices): 1347 train / 450 test, split with seed 0."""
    from sklearn.datasets import load_digits

    d = load_digits()
    X = torch.tensor(d.data, dtype=torch.float32)
    y = torch.tensor(d.target, dtype=torch.long)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    test, train = perm[:450], perm[450:]
    return X, y, train, test


def method_params(method: str, steps: int) -> dict:
    """The problem each method is planned for. C0 = 2 for all (the trained MLP's norm is ~17:
    the initial projection shrinks it); C1 = 0.5, γ = 0.1, λ = 2 for the gradient-clipping
    family (the iterates then stay within C1/λ = 0.25 of the origin, and the noise the
    accountant needs is what it is: the ratio C1/λ sets both); C2 = C0 for model clipping."""
    gc = dict(clip_initial=2.0, clip_gradient=0.5, learning_rate=0.1, weight_decay=2.0)
    if method == "gradient_clipping":
        return dict(gc, steps=steps)
    if method == "model_clipping":
        return dict(clip_initial=2.0, clip_model=2.0, learning_rate=0.1, steps=steps)
    if method == "output_perturbation":
        return dict(clip_initial=2.0)
    if method == "blockwise_gradient_clipping":
        return dict(gc, blocks=2, steps_per_block=max(1, steps // 2))
    raise KeyError(method)
