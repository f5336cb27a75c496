r"""Per-example gradient norms without per-example gradients, and per-instance accounting.

**Ghost norms for ``nn.Linear``** (Goodfellow 2015, arXiv 1510.01799; for sequences Li et al.
2022, arXiv 2110.05679, "ghost clipping"). A Linear layer maps a_i (example i's input,
shape (T, in), T = 1 for 2-D inputs) to a_i Wᵀ + b. With b_i = ∂ℓ_i/∂out (T, out), example i's
weight gradient is b_iᵀ a_i and

    ‖b_iᵀ a_i‖²_F = ‖a_i‖²·‖b_i‖²                  (T = 1),
    ‖b_iᵀ a_i‖²_F = Σ_{t,s} (a_it·a_is)(b_it·b_is)  (Gram form, cost T²(in + out)),
    ‖∇_bias ℓ_i‖² = ‖Σ_t b_it‖².

For sequences the cheaper of the Gram form and the explicit (in, out) per-example product is
used (both exact). a_i comes from a forward hook, b_i from a tensor hook on the layer's output
during one backward pass of Σ_i ℓ_i that asks autograd only for the layer outputs (no parameter
gradient is formed). EXACT up to floating-point rounding; it needs examples that do not
interact (no BatchNorm in training mode) and a Linear module called once per forward.

**Conv2d** (groups = 1, zero padding) is a Linear on unfolded patches (T = output positions),
so the same forms apply. **LayerNorm / GroupNorm** (affine): out = x̂ ⊙ w + b, so example i's
gradients Σ(x̂_i ⊙ b_i), Σ b_i are small (the size of w) and are formed from the hooks.

**Embedding** (no max_norm, no scale_grad_by_freq): Σ_{t,s: k_t = k_s} b_t·b_s over the
example's token ids k (``padding_idx`` rows get no gradient).

**Everything else** (grouped or non-zero-padded convolutions, subclasses of these
layers, a module called twice or sharing a parameter): ``torch.func.vmap(grad)`` of the
per-example loss over those parameters only, in chunks of at most ``max_chunk_elements``
gradient entries (a per-example loop where vmap cannot trace the model). The total per-example
norm is √(Σ over layers of the squares).

**Loss convention.** ``loss_fn(outputs, targets)`` returns the per-example losses, shape (B,)
(``reduction="none"``): the norms are ‖∇_θ ℓ(θ; x_i, y_i)‖. A mean-reduced loss (scalar, as
the interpreter's ``loss_fn``) is turned into that with :func:`per_example_loss`.

**Per-instance accounting.** :class:`NormRecorder` records the forget examples' gradient norms at
each step of a run (call :meth:`NormRecorder.record` once per step, at the parameters that step
differentiates at) and hands the (n_forget, steps) array to :mod:`unlearn_theory.per_instance`
(docs/langevin_and_per_instance.md; docs/theory.md §10.2-10.4): per-example Rényi curves, ε and,
for noisy full-batch GD (Langevin), per-example unlearning step counts. Norms from the realised
trajectory give ESTIMATES (pDP, not DP: see ``PDP_CAVEAT``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from unlearn_theory.errors import InvalidParameterError

__all__ = [
    "per_example_loss",
    "per_example_grad_norms",
    "per_example_grad_dots",
    "clip_factors",
    "clipped_gradient",
    "NormRecorder",
    "ForgetSetPrivacy",
]


# -- losses ---------------------------------------------------------------------------------------
def per_example_loss(loss_fn: Callable) -> Callable:
    """A per-example loss ``(outputs, targets) -> (B,)`` from a loss function.

    * an ``nn.Module`` with a ``reduction`` attribute (``nn.CrossEntropyLoss``, ``nn.MSELoss``
      ...): a copy with ``reduction="none"``, its output summed over non-batch dimensions;
    * any other callable returning a scalar mean over the batch: evaluated on each example alone
      (``torch.func.vmap`` over the outputs only, a loop where vmap fails). For a mean loss,
      loss_fn(out_i[None], y_i[None]) = ℓ_i exactly.
    """
    if not callable(loss_fn):
        raise InvalidParameterError("loss_fn", loss_fn, "must be callable")
    if isinstance(loss_fn, nn.Module) and hasattr(loss_fn, "reduction"):
        none = copy.copy(loss_fn)
        none.reduction = "none"

        def module_loss(outputs, targets):
            out = none(outputs, targets)
            return out.reshape(out.shape[0], -1).sum(1) if out.dim() > 1 else out

        return module_loss

    state = {"vmap": True}

    def single(o, t):
        return loss_fn(o.unsqueeze(0), t.unsqueeze(0)).reshape(())

    def vmapped_loss(outputs, targets):
        if state["vmap"]:
            try:
                return torch.func.vmap(single)(outputs, targets)
            except Exception:  # vmap cannot trace every loss: a loop over the (cheap) loss
                state["vmap"] = False
        return torch.stack([single(outputs[i], targets[i]) for i in range(outputs.shape[0])])

    return vmapped_loss


def _losses(loss_fn, outputs, targets, B):
    out = loss_fn(outputs, targets)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (B,):
        raise InvalidParameterError(
            "loss_fn",
            getattr(out, "shape", type(out).__name__),
            f"must return the per-example losses, shape ({B},) (reduction='none'; "
            "see per_example_loss)",
        )
    return out


# -- parameter partition ------------------------------------------------------------------------
def _check_model(model: nn.Module) -> None:
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training:
            raise InvalidParameterError(
                "model",
                f"{name or type(m).__name__} (BatchNorm in training mode)",
                "examples interact through batch statistics: per-example gradients are "
                "undefined; call model.eval() or use GroupNorm/LayerNorm",
            )


def _partition(model: nn.Module, params: Sequence[str] | None):
    """(ghost Linear modules {module_name: (module, weight?, bias?)}, other param names)."""
    named = dict(model.named_parameters())
    wanted = [n for n, p in named.items() if p.requires_grad] if params is None else list(params)
    for n in wanted:
        if n not in named:
            raise InvalidParameterError("params", n, "is not a parameter name of the model")
    wanted_set = set(wanted)
    owner: dict[int, int] = {}  # a parameter shared by several modules is not ghost-normed
    for _, m in model.named_modules():
        for p in m.parameters(recurse=False):
            owner[id(p)] = owner.get(id(p), 0) + 1
    linears: dict[str, tuple] = {}
    covered: set[str] = set()
    for mname, m in model.named_modules():
        if not _ghost_supported(m):  # subclasses may change forward: not ghost-normed
            continue
        prefix = f"{mname}." if mname else ""
        w = f"{prefix}weight" if f"{prefix}weight" in wanted_set else None
        b = (
            f"{prefix}bias"
            if getattr(m, "bias", None) is not None and f"{prefix}bias" in wanted_set
            else None
        )
        if w is None and b is None:
            continue
        if any(owner.get(id(p), 0) > 1 for p in m.parameters(recurse=False)):
            continue
        linears[mname] = (m, w is not None, b is not None)
        covered.update(x for x in (w, b) if x is not None)
    others = [n for n in wanted if n not in covered]
    return linears, others


def _ghost_supported(m: nn.Module) -> bool:
    if type(m) in (nn.Linear, nn.LayerNorm, nn.GroupNorm):
        return True
    if type(m) is nn.Embedding:
        return m.max_norm is None and not m.scale_grad_by_freq
    return (
        type(m) is nn.Conv2d
        and m.groups == 1
        and m.padding_mode == "zeros"
        and not isinstance(m.padding, str)
    )


# -- the ghost pass -------------------------------------------------------------------------------
def _as_linear(module, a, g):
    """A Conv2d as a Linear on patches: a → unfold(a) (B, L, Cin·kh·kw), g → (B, L, Cout)."""
    if type(module) is nn.Conv2d:
        a = torch.nn.functional.unfold(
            a,
            module.kernel_size,
            dilation=module.dilation,
            padding=module.padding,
            stride=module.stride,
        ).transpose(1, 2)
        g = g.reshape(g.shape[0], g.shape[1], -1).transpose(1, 2)
    return a, g


_PRODUCT_CAP = 1 << 24  # entries of explicit per-example products formed at once


def _linear_sq_norms(a, g, want_w, want_b):
    """(B,) squared norms of example i's weight (and bias) gradient from a (B, ..., in) and
    g (B, ..., out)."""
    B = a.shape[0]
    a = a.reshape(B, -1, a.shape[-1])
    g = g.reshape(B, -1, g.shape[-1])
    T, din, dout = a.shape[1], a.shape[2], g.shape[2]
    out = torch.zeros(B, dtype=g.dtype, device=g.device)
    if want_w:
        if T == 1:
            out += a[:, 0].pow(2).sum(1) * g[:, 0].pow(2).sum(1)
        elif T * T * (din + dout) <= T * din * dout + din * dout:
            ga = torch.bmm(a, a.transpose(1, 2))  # (B, T, T)
            gg = torch.bmm(g, g.transpose(1, 2))
            out += (ga * gg).sum((1, 2))
        else:  # (in, out) per example, in batch pieces of ≤ _PRODUCT_CAP entries
            step = max(1, _PRODUCT_CAP // (din * dout))
            for lo in range(0, B, step):
                prod = torch.bmm(g[lo : lo + step].transpose(1, 2), a[lo : lo + step])
                out[lo : lo + step] += prod.pow(2).sum((1, 2))
    if want_b:
        out += g.sum(1).pow(2).sum(1)
    return out


def _norm_layer_sq_norms(module, a, g, want_w, want_b):
    """LayerNorm / GroupNorm (affine): out = x̂·w + b elementwise, so example i's gradients
    are Σ(x̂_i ⊙ g_i) and Σ g_i over the dimensions w is broadcast along -- small (C or the
    normalised shape) per example, formed explicitly from the hooks' x̂ and g."""
    B = a.shape[0]
    if type(module) is nn.LayerNorm:
        k = len(module.normalized_shape)
        xhat = torch.nn.functional.layer_norm(a, module.normalized_shape, None, None, module.eps)
        red = tuple(range(1, a.dim() - k))
    else:
        xhat = torch.nn.functional.group_norm(a, module.num_groups, None, None, module.eps)
        red = tuple(range(2, a.dim()))
    out = torch.zeros(B, dtype=g.dtype, device=g.device)
    if want_w:
        gw = (xhat * g).sum(red) if red else xhat * g
        out += gw.reshape(B, -1).pow(2).sum(1)
    if want_b:
        gb = g.sum(red) if red else g
        out += gb.reshape(B, -1).pow(2).sum(1)
    return out


def _embedding_sq_norms(module, idx, g):
    """Embedding: example i's gradient is Σ_t e_{k_it} g_itᵀ (rows at ``padding_idx`` get none),
    so its squared norm is Σ_{t,s: k_it = k_is} g_it·g_is (a masked Gram form, cost T²·d)."""
    B = idx.shape[0]
    k = idx.reshape(B, -1)
    g = g.reshape(B, k.shape[1], -1)
    if module.padding_idx is not None:
        g = g * (k != module.padding_idx).unsqueeze(-1).to(g.dtype)
    same = (k.unsqueeze(2) == k.unsqueeze(1)).to(g.dtype)  # (B, T, T)
    return (same * torch.bmm(g, g.transpose(1, 2))).sum((1, 2))


def _ghost_sq_norms(model, loss_fn, inputs, targets, linears, B, keep_graph=False):
    """(B,) Σ over ghost-normed Linear layers of squared per-example gradient norms, and the
    per-example losses (detached)."""
    acts: dict[str, list] = {n: [] for n in linears}
    outs: dict[str, list] = {n: [] for n in linears}
    handles = []

    def make_hook(name):
        def hook(module, inp, out):
            acts[name].append(inp[0].detach())
            outs[name].append(out)

        return hook

    for name, (m, _, _) in linears.items():
        handles.append(m.register_forward_hook(make_hook(name)))
    try:
        outputs = model(inputs)
    finally:
        for h in handles:
            h.remove()
    losses = _losses(loss_fn, outputs, targets, B)
    # called more than once, or not batch-first: such modules' parameters go through vmap
    multi = [
        n
        for n in linears
        if len(outs[n]) > 1
        or (len(outs[n]) == 1 and (acts[n][0].shape[:1] != (B,) or outs[n][0].shape[:1] != (B,)))
    ]
    used = [n for n in linears if n not in multi and outs[n] and outs[n][0].requires_grad]
    sq = torch.zeros(B, dtype=losses.dtype, device=losses.device)
    if used:
        grads = torch.autograd.grad(
            losses.sum(),
            [outs[n][0] for n in used],
            allow_unused=True,
            materialize_grads=True,
            retain_graph=keep_graph,
        )
        for n, g in zip(used, grads):
            a = acts[n][0]
            mod, want_w, want_b = linears[n]
            if type(mod) is nn.Embedding:
                sq += _embedding_sq_norms(mod, a, g).to(sq.dtype)
            elif type(mod) in (nn.LayerNorm, nn.GroupNorm):
                sq += _norm_layer_sq_norms(mod, a, g, want_w, want_b).to(sq.dtype)
            else:
                a, g = _as_linear(mod, a, g)
                sq += _linear_sq_norms(a, g, want_w, want_b).to(sq.dtype)
    return sq, (losses if keep_graph else losses.detach()), multi


# -- the vmap pass --------------------------------------------------------------------------------
def _other_sq_norms(model, loss_fn, inputs, targets, names, B, max_elements):
    named = dict(model.named_parameters())
    theta = {n: named[n].detach() for n in names}
    dim = sum(p.numel() for p in theta.values())
    sq = None
    if dim == 0:
        return None

    def single(th, xi, yi):
        out = torch.func.functional_call(model, th, (xi.unsqueeze(0),))
        return _losses(loss_fn, out, yi.unsqueeze(0), 1)[0]

    chunk = max(1, min(B, max_elements // max(dim, 1)))
    parts = []
    vmap_ok = True
    for lo in range(0, B, chunk):
        X, Y = inputs[lo : lo + chunk], targets[lo : lo + chunk]
        if vmap_ok:
            try:
                g = torch.func.vmap(torch.func.grad(single), in_dims=(None, 0, 0))(theta, X, Y)
                parts.append(sum(v.reshape(v.shape[0], -1).pow(2).sum(1) for v in g.values()))
                continue
            except Exception:  # vmap cannot trace every model: a loop over examples
                vmap_ok = False
        rows = []
        for i in range(X.shape[0]):
            th = {n: t.clone().requires_grad_(True) for n, t in theta.items()}
            loss = single(th, X[i], Y[i])
            gs = torch.autograd.grad(loss, list(th.values()), allow_unused=True)
            rows.append(sum(x.pow(2).sum() for x in gs if x is not None) + 0 * loss.detach())
        parts.append(torch.stack(rows))
    sq = torch.cat(parts)
    return sq


def _norms_impl(model, loss_fn, inputs, targets, params, max_chunk_elements, keep_graph=False):
    B = int(inputs.shape[0])
    _check_model(model)
    linears, others = _partition(model, params)
    with torch.enable_grad():
        sq, losses, multi = _ghost_sq_norms(model, loss_fn, inputs, targets, linears, B, keep_graph)
    if multi:  # a module called twice or not batch-first: its parameters go through vmap
        for n in multi:
            prefix = f"{n}." if n else ""
            _, w, b = linears[n]
            others += [f"{prefix}weight"] * w + [f"{prefix}bias"] * b
        linears = {n: v for n, v in linears.items() if n not in multi}
        with torch.enable_grad():
            sq, losses, _ = _ghost_sq_norms(model, loss_fn, inputs, targets, linears, B, keep_graph)
    rest = _other_sq_norms(model, loss_fn, inputs, targets, others, B, int(max_chunk_elements))
    if rest is not None:
        sq = sq + rest.to(sq.dtype)
    norms = sq.clamp_min(0).sqrt()
    return norms, losses


def _check_batch(model, inputs, targets, max_chunk_elements):
    if not isinstance(model, nn.Module):
        raise InvalidParameterError("model", type(model).__name__, "must be a torch.nn.Module")
    if not isinstance(inputs, torch.Tensor) or inputs.dim() < 1 or inputs.shape[0] == 0:
        raise InvalidParameterError("inputs", getattr(inputs, "shape", inputs), "needs a batch")
    B = int(inputs.shape[0])
    if not isinstance(targets, torch.Tensor) or targets.shape[:1] != (B,):
        raise InvalidParameterError(
            "targets", getattr(targets, "shape", targets), f"must have batch size {B}"
        )
    if int(max_chunk_elements) < 1:
        raise InvalidParameterError("max_chunk_elements", max_chunk_elements, "must be >= 1")


def per_example_grad_norms(
    model: nn.Module,
    loss_fn: Callable,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    params: Sequence[str] | None = None,
    max_chunk_elements: int = 1 << 26,
    return_losses: bool = False,
):
    """(B,) per-example gradient norms ‖∇_θ ℓ(θ; x_i, y_i)‖₂ over ``params`` (default: every
    parameter that requires grad), without materialising per-example gradients of Linear layers.

    ``loss_fn(outputs, targets)`` returns per-example losses (B,) (see the module docstring and
    :func:`per_example_loss`). Linear and Conv2d (groups=1) layers: exact ghost norms (one forward, one backward
    to the layer outputs); other parameters: ``vmap(grad)`` in chunks of ≤ ``max_chunk_elements``
    gradient entries. The model's parameters' ``.grad`` are not touched. With
    ``return_losses`` the per-example losses (B,) are returned too. EXACT up to rounding.
    Stochastic layers (dropout) should be in eval mode: the ghost and vmap passes run separate
    forwards. BatchNorm in training mode is refused (examples interact).
    """
    _check_batch(model, inputs, targets, max_chunk_elements)
    norms, losses = _norms_impl(model, loss_fn, inputs, targets, params, max_chunk_elements)
    return (norms, losses) if return_losses else norms


def per_example_grad_dots(
    model: nn.Module,
    loss_fn: Callable,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    direction: dict[str, torch.Tensor],
) -> torch.Tensor:
    """(B,) inner products ⟨∇_θ ℓ_i, v⟩ for a direction ``v`` (dict: parameter name → tensor;
    parameters not named have v = 0): one forward-mode pass (``torch.func.jvp``), no per-example
    gradient materialised. EXACT up to rounding."""
    named = dict(model.named_parameters())
    for n in direction:
        if n not in named:
            raise InvalidParameterError("direction", n, "is not a parameter name of the model")
    _check_model(model)
    B = int(inputs.shape[0])
    primals = {n: named[n].detach() for n in direction}
    tangents = {n: direction[n].detach().to(primals[n]) for n in direction}

    def f(th):
        return _losses(loss_fn, torch.func.functional_call(model, th, (inputs,)), targets, B)

    _, dots = torch.func.jvp(f, (primals,), (tangents,))
    return dots.detach()


def clip_factors(norms: torch.Tensor, clip: float) -> torch.Tensor:
    """min(1, C/‖g_i‖) per example (1 where the norm is 0): the per-example clipping factors."""
    c = float(clip)
    if not (math.isfinite(c) and c > 0):
        raise InvalidParameterError("clip", clip, "must be a finite number > 0")
    return torch.where(norms > c, c / norms.clamp_min(torch.finfo(norms.dtype).tiny), 1.0)


def clipped_gradient(
    model: nn.Module,
    loss_fn: Callable,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    clip: float,
    *,
    reduction: str = "sum",
    params: Sequence[str] | None = None,
    max_chunk_elements: int = 1 << 26,
):
    """Σ_i min(1, C/‖g_i‖)·g_i (``reduction="mean"``: divided by B) as a dict name → tensor,
    and the (B,) unclipped norms. Ghost clipping: the norms from :func:`per_example_grad_norms`,
    then one backward pass of Σ_i f_i·ℓ_i with the factors f_i held constant (their gradient is
    not taken): ∇(Σ f_i ℓ_i) = Σ f_i ∇ℓ_i exactly, reusing the norm pass's forward (as Opacus'
    ghost clipping does). ``params``: the parameter names clipped jointly (default: all that
    require grad). Per-example gradients of ghost-normed layers are never formed."""
    if reduction not in ("sum", "mean"):
        raise InvalidParameterError("reduction", reduction, "must be 'sum' or 'mean'")
    _check_batch(model, inputs, targets, max_chunk_elements)
    with torch.enable_grad():
        norms, losses = _norms_impl(
            model, loss_fn, inputs, targets, params, max_chunk_elements, keep_graph=True
        )
    norms = norms.detach()
    f = clip_factors(norms, clip)
    if reduction == "mean":
        f = f / inputs.shape[0]
    named = dict(model.named_parameters())
    names = [n for n, p in named.items() if p.requires_grad] if params is None else list(params)
    ps = [named[n] for n in names]
    with torch.enable_grad():
        grads = torch.autograd.grad(
            (losses * f.to(losses.dtype)).sum(), ps, allow_unused=True, materialize_grads=True
        )
    return dict(zip(names, grads)), norms


# -- per-instance accounting ------------------------------------------------------------------
@dataclass(frozen=True)
class ForgetSetPrivacy:
    """Each forget example's per-instance privacy from recorded norms.

    ``epsilon`` (n_forget,) at ``delta``; ``renyi`` the per-example Rényi curves
    (:class:`unlearn_theory.per_instance.PerInstanceRenyi`); ``worst_case_epsilon`` the same
    accountant with every norm at the clip (the data-independent value; None without a clip);
    ``steps`` (n_forget,) per-example unlearning step counts where asked for (-1: none
    certifies), else None. ``kind`` and ``caveat``: those of ``renyi`` (pDP, not DP)."""

    epsilon: np.ndarray
    delta: float
    renyi: object
    worst_case_epsilon: float | None
    steps: np.ndarray | None
    norms: np.ndarray
    accountant: str
    details: dict = field(default_factory=dict)

    @property
    def kind(self):
        return self.renyi.kind

    @property
    def caveat(self) -> str:
        return self.renyi.caveat


class NormRecorder:
    """Records the forget examples' per-example gradient norms along a run.

    Call :meth:`record` at each step, at the parameters that step differentiates at (e.g.
    just before ``optimizer.step()``, or from a callback of the training/unlearning loop);
    ``norms`` is the (n_forget, steps) float64 array, and :meth:`dp_sgd_privacy` /
    :meth:`noisy_gd_privacy` feed it to :mod:`unlearn_theory.per_instance`.

    ``loss_fn`` may be per-example or mean-reduced (passed through :func:`per_example_loss` if
    it returns a scalar). The model is put in no mode; stochastic layers (dropout) should be in
    eval mode while recording, or the norms are those of one random draw.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable,
        forget_inputs: torch.Tensor,
        forget_targets: torch.Tensor,
        *,
        max_chunk_elements: int = 1 << 26,
        batch_size: int = 1024,
    ):
        if not isinstance(model, nn.Module):
            raise InvalidParameterError("model", type(model).__name__, "must be an nn.Module")
        n = int(forget_inputs.shape[0])
        if n == 0 or forget_targets.shape[:1] != (n,):
            raise InvalidParameterError(
                "forget_targets", tuple(forget_targets.shape), f"needs {n} >= 1 rows"
            )
        self.model = model
        self.loss_fn = self._per_example(loss_fn, model, forget_inputs, forget_targets)
        self.inputs = forget_inputs
        self.targets = forget_targets
        self.max_chunk_elements = int(max_chunk_elements)
        self.batch_size = int(batch_size)
        self._rows: list[np.ndarray] = []
        self._diff_rows: list[np.ndarray] = []

    @staticmethod
    def _per_example(loss_fn, model, X, Y):
        with torch.no_grad():
            out = loss_fn(model(X[:2]), Y[:2])
        if isinstance(out, torch.Tensor) and out.dim() == 0:
            return per_example_loss(loss_fn)
        return loss_fn

    def _norms(self, model):
        parts = []
        for lo in range(0, self.inputs.shape[0], self.batch_size):
            parts.append(
                per_example_grad_norms(
                    model,
                    self.loss_fn,
                    self.inputs[lo : lo + self.batch_size],
                    self.targets[lo : lo + self.batch_size],
                    max_chunk_elements=self.max_chunk_elements,
                )
            )
        return torch.cat(parts)

    def record(self, model: nn.Module | None = None) -> np.ndarray:
        """Record the forget set's norms ‖∇ℓ_x(θ_t)‖ at the current parameters (of ``model``,
        default the recorder's); returns them, (n_forget,) float64."""
        m = self.model if model is None else model
        norms = self._norms(m).detach().to("cpu", torch.float64).numpy()
        self._rows.append(norms)
        return norms

    def record_differences(
        self, mean_gradient: dict[str, torch.Tensor], dataset_size: int, model=None
    ) -> np.ndarray:
        """Record g_t(x) = ‖∇ℓ_x(θ_t) − ∇f_{D∖x}(θ_t)‖ for each forget example x (for
        :meth:`noisy_gd_privacy`). ``mean_gradient``: ∇f_D(θ_t), the mean-loss gradient over
        the full training set D (name → tensor) of ``dataset_size`` = n points, x ∈ D. Uses
        ∇f_{D∖x} = (n∇f_D − ∇ℓ_x)/(n−1), so g = n/(n−1)·‖∇ℓ_x − ∇f_D‖, with the square
        expanded as ‖∇ℓ_x‖² − 2⟨∇ℓ_x, ∇f_D⟩ + ‖∇f_D‖² (a forward-mode pass for the inner
        products; negative rounding residue is clamped to 0). Also records ‖∇ℓ_x‖."""
        n = int(dataset_size)
        if n < 2:
            raise InvalidParameterError("dataset_size", dataset_size, "must be >= 2")
        m = self.model if model is None else model
        norms = self._norms(m).detach()
        dots = []
        for lo in range(0, self.inputs.shape[0], self.batch_size):
            dots.append(
                per_example_grad_dots(
                    m,
                    self.loss_fn,
                    self.inputs[lo : lo + self.batch_size],
                    self.targets[lo : lo + self.batch_size],
                    mean_gradient,
                )
            )
        d = torch.cat(dots).to(torch.float64)
        gsq = sum(v.detach().to(torch.float64).pow(2).sum() for v in mean_gradient.values())
        n64 = norms.to(torch.float64)
        diff = (n64.pow(2) - 2 * d + gsq).clamp_min(0).sqrt() * (n / (n - 1))
        self._rows.append(n64.cpu().numpy())
        self._diff_rows.append(diff.cpu().numpy())
        return self._diff_rows[-1]

    @property
    def steps(self) -> int:
        return len(self._rows)

    @property
    def norms(self) -> np.ndarray:
        """(n_forget, steps) recorded gradient norms."""
        if not self._rows:
            raise InvalidParameterError("recorder", "no steps", "record() was never called")
        return np.stack(self._rows, axis=1)

    @property
    def differences(self) -> np.ndarray:
        """(n_forget, steps) recorded gradient differences (from :meth:`record_differences`)."""
        if not self._diff_rows or len(self._diff_rows) != len(self._rows):
            raise InvalidParameterError(
                "recorder", "differences", "record_differences() must be used at every step"
            )
        return np.stack(self._diff_rows, axis=1)

    def dp_sgd_privacy(
        self,
        *,
        clip: float,
        sample_rate: float,
        noise_multiplier: float,
        delta: float,
        orders=None,
        supremum: bool = False,
    ) -> ForgetSetPrivacy:
        """Per-instance ε of Poisson-subsampled DP-SGD (clip C, noise std z·C, sum reduction)
        from the recorded norms: :func:`unlearn_theory.per_instance.subsampled_gaussian_rdp`
        (Thudi et al. 2024, arXiv 2307.00310 [second-hand]). ``worst_case_epsilon`` is the
        same accountant with every norm at C; each per-instance ε is ≤ it (the per-step RDP is
        nondecreasing in the norm ratio). Kind ESTIMATE (realised trajectory) unless
        ``supremum`` (see that function)."""
        from unlearn_theory.per_instance import subsampled_gaussian_rdp

        g = self.norms
        kw = dict(
            clip_gradient=clip,
            sample_rate=sample_rate,
            noise_multiplier=noise_multiplier,
            orders=orders,
        )
        curves = subsampled_gaussian_rdp(g, supremum=supremum, **kw)
        worst = subsampled_gaussian_rdp(np.full((1, g.shape[1]), float(clip)), **kw)
        return ForgetSetPrivacy(
            epsilon=curves.epsilon(delta),
            delta=float(delta),
            renyi=curves,
            worst_case_epsilon=float(worst.epsilon(delta)[0]),
            steps=None,
            norms=g,
            accountant="subsampled_gaussian",
            details={"clip": float(clip), "sample_rate": sample_rate, "z": noise_multiplier},
        )

    def noisy_gd_privacy(
        self,
        *,
        learning_rate,
        noise_std,
        dataset_size: int,
        delta: float,
        unlearning: dict | None = None,
        supremum: bool = False,
    ) -> ForgetSetPrivacy:
        """Per-instance privacy of noisy full-batch GD (Langevin) from the recorded gradient
        differences: :func:`unlearn_theory.per_instance.noisy_gd_rdp` (docs/theory.md §10.3),
        and with ``unlearning`` = dict(epsilon=, learning_rate=, strong_convexity=,
        smoothness=[, stationarity=]) the per-example unlearning step counts of
        :func:`unlearn_theory.per_instance.unlearning_steps` (docs/theory.md §10.4) at the same
        ``delta``. ``worst_case_epsilon`` is None (no clip bounds these differences)."""
        from unlearn_theory.per_instance import noisy_gd_rdp, unlearning_steps

        g = self.differences
        curves = noisy_gd_rdp(
            g,
            learning_rate=learning_rate,
            noise_std=noise_std,
            dataset_size=dataset_size,
            supremum=supremum,
        )
        steps = None
        if unlearning is not None:
            steps = unlearning_steps(curves, delta=delta, **unlearning).steps
        return ForgetSetPrivacy(
            epsilon=curves.epsilon(delta),
            delta=float(delta),
            renyi=curves,
            worst_case_epsilon=None,
            steps=steps,
            norms=g,
            accountant="noisy_gd",
        )
