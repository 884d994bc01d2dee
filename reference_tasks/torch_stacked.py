"""Several ``GrokMLP`` of one shape trained as one: stacked weights, hand-written gradients.

:class:`StackedGrokMLP` holds the weights of ``K`` models (seeds) in one flat buffer,
``(K, P)``, one row per model, and takes full-batch AdamW steps on all of them at once
with batched matrix products. Each model sees only its own samples and its own loss, so
every row follows exactly the trajectory the model would follow alone (up to the float
rounding of the batched products); AdamW is elementwise, so one optimizer over the
buffer is one per model.

The step is written out by hand instead of going through autograd (a test checks it
against autograd and ``torch.optim.AdamW``), to do less work than the textbook loop:

- the embeddings and ``linear1`` are folded into one table per model,
  ``z1 = (E_a W1_a^T + b1)[a] + (E_b W1_b^T)[b]`` (``linear1([E_a[a], E_b[b]])``
  regrouped), so the first layer costs ``(T, D) x (D, H)`` products instead of
  ``(B, 2D) x (2D, H)`` ones, and the embedding lookup and its gradient gather and
  scatter rows of that table;
- the loss itself is computed only when asked for (the update needs its gradient only),
  and nothing is read back to the host;
- the gradients are written straight into one buffer beside the weights (nothing to
  zero), and PyTorch's fused AdamW updates the whole buffer in one call (through its
  functional form, which skips ``Optimizer.step``'s bookkeeping).

Per row the layout is ``E_a (T, D)``, ``E_b (T, D)`` (with one table per operand only),
``W1^T (2D, H)`` (``linear1.weight`` transposed), ``b1 (H)``, ``W2 (H, H)``, ``b2 (H)``,
``W3 (C, H)``, ``b3 (C)``; :meth:`StackedGrokMLP.state_dict` and
:meth:`StackedGrokMLP.optimizer_state` give one model's weights and AdamW state in the
layout of ``GrokMLP`` and ``torch.optim.AdamW(model.parameters())``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional
from torch.optim.adamw import adamw

from reference_tasks.torch_model import GrokMLP

ADAM_BETAS = (0.9, 0.999)
ADAM_EPSILON = 1e-8
_SILU_BACKWARD = torch.ops.aten.silu_backward.default


@dataclass(frozen=True)
class _Slot:
    """Where one ``state_dict`` entry lives in a row of the flat buffer."""

    name: str
    offset: int
    shape: tuple[int, ...]
    transposed: bool

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class Evaluation:
    """Per-model loss and number of correct predictions on one set of samples (``(K,)`` each)."""

    loss: torch.Tensor
    correct: torch.Tensor


@dataclass(frozen=True)
class _Operands:
    """The views of the weights and gradients the step works on, made once: ``(K, ...)`` each.

    ``w1_a`` and ``w1_b`` are ``W1_a^T`` and ``W1_b^T`` (``(D, H)``), the halves of
    ``linear1.weight`` that act on the first and the second operand; ``b*`` are biases
    with a broadcast axis, ``*_t`` transposes.
    """

    embedding_a: torch.Tensor
    embedding_b: torch.Tensor
    embedding_a_t: torch.Tensor
    embedding_b_t: torch.Tensor
    w1_a: torch.Tensor
    w1_b: torch.Tensor
    w1_a_t: torch.Tensor
    w1_b_t: torch.Tensor
    b1: torch.Tensor
    w2: torch.Tensor
    w2_t: torch.Tensor
    b2: torch.Tensor
    w3: torch.Tensor
    w3_t: torch.Tensor
    b3: torch.Tensor
    grad_embedding_a: torch.Tensor
    grad_embedding_b: torch.Tensor
    grad_w1_a: torch.Tensor
    grad_w1_b: torch.Tensor
    grad_b1: torch.Tensor
    grad_w2: torch.Tensor
    grad_b2: torch.Tensor
    grad_w3: torch.Tensor
    grad_b3: torch.Tensor


def _model_shape(model: GrokMLP) -> tuple[int, int, int, int, bool]:
    tables = model.embedding.tables
    n_tokens, dim = tables[0].weight.shape
    return n_tokens, dim, model.linear1.out_features, model.output.out_features, len(tables) == 1


class StackedGrokMLP:
    """``K`` same-shape ``GrokMLP`` stacked for full-batch AdamW on their own samples.

    Parameters
    ----------
    models : sequence of GrokMLP
        The starting weights, one model per row; all of one shape, dtype and device.
    learning_rate, weight_decay : float
        AdamW settings (betas and epsilon are PyTorch's defaults), shared by all rows.
    """

    def __init__(self, models: Sequence[GrokMLP], *, learning_rate: float, weight_decay: float) -> None:
        if not models:
            raise ValueError("StackedGrokMLP needs at least one model")
        shapes = {_model_shape(model) for model in models}
        if len(shapes) != 1:
            raise ValueError(f"all stacked models must have one shape, got {sorted(shapes)}")
        reference = next(models[0].parameters())
        if any(
            p.dtype != reference.dtype or p.device != reference.device for m in models for p in m.parameters()
        ):
            raise ValueError("all stacked models must share one dtype and device")
        self.n_tokens, self.dim, self.hidden, self.n_classes, self.shared = shapes.pop()
        self.n_models = len(models)
        self.dtype, self.device = reference.dtype, reference.device
        self._slots = self._layout()
        self.n_params = sum(slot.size for slot in self._slots.values())
        self.flat = torch.nn.Parameter(
            torch.zeros(self.n_models, self.n_params, dtype=self.dtype, device=self.device)
        )
        self.flat.grad = torch.zeros_like(self.flat)
        for k, model in enumerate(models):
            self.load_model(k, model)
        self._operands = self._make_operands()
        self._table = torch.empty(
            self.n_models, 2 * self.n_tokens, self.hidden, dtype=self.dtype, device=self.device
        )
        self._table_grad = torch.empty(
            self.n_models * 2 * self.n_tokens, self.hidden, dtype=self.dtype, device=self.device
        )
        self.optimizer = torch.optim.AdamW(
            [self.flat],
            lr=learning_rate,
            betas=ADAM_BETAS,
            eps=ADAM_EPSILON,
            weight_decay=weight_decay,
            **({"fused": True} if self.device.type in ("cpu", "cuda") else {}),
        )
        self._minus_ones_cache: dict[tuple[int, int], torch.Tensor] = {}

    # ----- layout -----------------------------------------------------------------------

    def _layout(self) -> dict[str, _Slot]:
        t, d, h, c = self.n_tokens, self.dim, self.hidden, self.n_classes
        entries: list[tuple[str, tuple[int, ...], bool]] = [("embedding.tables.0.weight", (t, d), False)]
        if not self.shared:
            entries.append(("embedding.tables.1.weight", (t, d), False))
        entries += [
            ("linear1.weight", (2 * d, h), True),
            ("linear1.bias", (h,), False),
            ("linear2.weight", (h, h), False),
            ("linear2.bias", (h,), False),
            ("output.weight", (c, h), False),
            ("output.bias", (c,), False),
        ]
        slots, offset = {}, 0
        for name, shape, transposed in entries:
            slots[name] = _Slot(name, offset, shape, transposed)
            offset += slots[name].size
        return slots

    def _views(self, buffer: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(K, *shape)`` views of ``buffer`` (``(K, P)``), in the stored layout."""
        return {
            name: buffer[:, slot.offset : slot.offset + slot.size].view(self.n_models, *slot.shape)
            for name, slot in self._slots.items()
        }

    def _make_operands(self) -> _Operands:
        w, g, d = self._views(self.flat.data), self._views(self.flat.grad), self.dim
        second = "embedding.tables.0.weight" if self.shared else "embedding.tables.1.weight"
        w1_a, w1_b = w["linear1.weight"][:, :d], w["linear1.weight"][:, d:]
        return _Operands(
            embedding_a=w["embedding.tables.0.weight"],
            embedding_b=w[second],
            embedding_a_t=w["embedding.tables.0.weight"].transpose(1, 2),
            embedding_b_t=w[second].transpose(1, 2),
            w1_a=w1_a,
            w1_b=w1_b,
            w1_a_t=w1_a.transpose(1, 2),
            w1_b_t=w1_b.transpose(1, 2),
            b1=w["linear1.bias"].unsqueeze(1),
            w2=w["linear2.weight"],
            w2_t=w["linear2.weight"].transpose(1, 2),
            b2=w["linear2.bias"].unsqueeze(1),
            w3=w["output.weight"],
            w3_t=w["output.weight"].transpose(1, 2),
            b3=w["output.bias"].unsqueeze(1),
            grad_embedding_a=g["embedding.tables.0.weight"],
            grad_embedding_b=g[second],
            grad_w1_a=g["linear1.weight"][:, :d],
            grad_w1_b=g["linear1.weight"][:, d:],
            grad_b1=g["linear1.bias"],
            grad_w2=g["linear2.weight"],
            grad_b2=g["linear2.bias"],
            grad_w3=g["output.weight"],
            grad_b3=g["output.bias"],
        )

    def _to_model_layout(self, buffer: torch.Tensor, k: int) -> dict[str, torch.Tensor]:
        """Row ``k`` of ``buffer`` as a ``state_dict``: fresh tensors in ``GrokMLP``'s layout."""
        out = {}
        for name, slot in self._slots.items():
            value = buffer[k, slot.offset : slot.offset + slot.size].view(slot.shape)
            out[name] = value.T.contiguous() if slot.transposed else value.clone()
        return out

    def _from_model_layout(self, buffer: torch.Tensor, k: int, tensors: dict[str, torch.Tensor]) -> None:
        if set(tensors) != set(self._slots):
            raise ValueError(f"expected the entries {sorted(self._slots)}, got {sorted(tensors)}")
        with torch.no_grad():
            for name, slot in self._slots.items():
                value = tensors[name].to(dtype=self.dtype, device=self.device)
                target = buffer[k, slot.offset : slot.offset + slot.size].view(slot.shape)
                target.copy_(value.T if slot.transposed else value)

    # ----- weights and optimizer state of one model ----------------------------------------

    def state_dict(self, k: int) -> dict[str, torch.Tensor]:
        """Model ``k``'s weights as a ``GrokMLP`` ``state_dict`` (copies)."""
        return self._to_model_layout(self.flat.detach(), k)

    def load_model(self, k: int, model: GrokMLP) -> None:
        """Set row ``k`` to ``model``'s weights."""
        self._from_model_layout(self.flat.data, k, dict(model.state_dict()))

    def copy_to(self, k: int, model: GrokMLP) -> GrokMLP:
        """Copy model ``k``'s weights into ``model`` (a ``GrokMLP`` of the same shape); return it."""
        model.load_state_dict(self.state_dict(k))
        return model

    def optimizer_state(self, k: int) -> dict[str, Any]:
        """Model ``k``'s AdamW state as ``torch.optim.AdamW(model.parameters()).state_dict()`` gives it.

        The parameters are numbered in ``GrokMLP.parameters()`` order, so the state loads
        into a plain AdamW over a ``GrokMLP`` as well as back into this class.
        """
        state = self.optimizer.state.get(self.flat, {})
        group = {key: value for key, value in self.optimizer.param_groups[0].items() if key != "params"}
        group["params"] = list(range(len(self._slots)))
        if not state:
            return {"state": {}, "param_groups": [group]}
        moments = {key: self._to_model_layout(state[key], k) for key in ("exp_avg", "exp_avg_sq")}
        per_parameter = {
            index: {"step": state["step"].clone(), **{key: moments[key][name] for key in moments}}
            for index, name in enumerate(self._slots)
        }
        return {"state": per_parameter, "param_groups": [group]}

    def load_optimizer_state(self, states: Sequence[dict[str, Any]]) -> None:
        """Restore every row's AdamW state from :meth:`optimizer_state` dicts (one per model).

        Raises
        ------
        ValueError
            If the states disagree on the step count or do not cover every parameter.
        """
        if len(states) != self.n_models:
            raise ValueError(f"expected {self.n_models} optimizer states, got {len(states)}")
        names = list(self._slots)
        if all(not state["state"] for state in states):
            self.optimizer.state.clear()
            return
        steps = set()
        exp_avg = torch.zeros_like(self.flat.data)
        exp_avg_sq = torch.zeros_like(self.flat.data)
        for k, state in enumerate(states):
            per_parameter = state["state"]
            if sorted(per_parameter) != list(range(len(names))):
                raise ValueError(f"optimizer state of model {k} does not cover its {len(names)} parameters")
            steps |= {float(entry["step"]) for entry in per_parameter.values()}
            self._from_model_layout(exp_avg, k, {n: per_parameter[i]["exp_avg"] for i, n in enumerate(names)})
            self._from_model_layout(
                exp_avg_sq, k, {n: per_parameter[i]["exp_avg_sq"] for i, n in enumerate(names)}
            )
        if len(steps) != 1:
            raise ValueError(f"the stacked models must share one optimizer step, got {sorted(steps)}")
        flat_state = {"step": torch.tensor(steps.pop()), "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
        # load_state_dict puts the step count on the device and in the dtype AdamW keeps it in.
        self.optimizer.load_state_dict(
            {"state": {0: flat_state}, "param_groups": self.optimizer.state_dict()["param_groups"]}
        )

    # ----- the step ----------------------------------------------------------------------

    def l2_norms(self) -> torch.Tensor:
        """``(K,)``: each model's L2 norm over all its parameters."""
        return torch.linalg.vector_norm(self.flat.detach(), dim=1)

    def rows(self, pairs: torch.Tensor) -> torch.Tensor:
        """``(K, B, 2)`` operand pairs -> ``(K * B, 2)`` rows of the flattened first-layer table."""
        k, t = self.n_models, self.n_tokens
        base = (torch.arange(k, device=pairs.device) * 2 * t).view(k, 1, 1)
        shift = torch.tensor([0, t], device=pairs.device).view(1, 1, 2)
        return (pairs + base + shift).reshape(-1, 2)

    def _forward(self, rows: torch.Tensor, batch: int) -> tuple[torch.Tensor, ...]:
        """``z1, h1, z2, h2, logits``, each ``(K, B, width)``."""
        o, t = self._operands, self.n_tokens
        # The first-layer table: rows E_a W1_a^T + b1, then E_b W1_b^T, for every model.
        torch.baddbmm(o.b1, o.embedding_a, o.w1_a, out=self._table[:, :t])
        torch.bmm(o.embedding_b, o.w1_b, out=self._table[:, t:])
        z1 = functional.embedding_bag(rows, self._table.view(-1, self.hidden), mode="sum")
        z1 = z1.view(self.n_models, batch, self.hidden)
        h1 = functional.silu(z1)
        z2 = torch.baddbmm(o.b2, h1, o.w2_t)
        h2 = functional.silu(z2)
        return z1, h1, z2, h2, torch.baddbmm(o.b3, h2, o.w3_t)

    def logits(self, rows: torch.Tensor, batch: int) -> torch.Tensor:
        """``(K, B, C)`` logits of every model on its own ``B`` samples (``rows`` from :meth:`rows`)."""
        with torch.no_grad():
            return self._forward(rows, batch)[-1]

    @staticmethod
    def evaluate(logits: torch.Tensor, labels: torch.Tensor) -> Evaluation:
        """Mean cross-entropy and correct-prediction count per model; ``labels`` is ``(K, B)``."""
        with torch.no_grad():
            log_probs = torch.log_softmax(logits, dim=2)
            loss = -log_probs.gather(2, labels.unsqueeze(2)).mean(dim=(1, 2))
            correct = (logits.argmax(dim=2) == labels).sum(dim=1)
        return Evaluation(loss, correct)

    def step(self, rows: torch.Tensor, labels: torch.Tensor, *, evaluate: bool = False) -> Evaluation | None:
        """One full-batch AdamW step of every model on its own samples.

        Parameters
        ----------
        rows : torch.Tensor
            ``(K * B, 2)`` from :meth:`rows` of the ``(K, B, 2)`` training pairs.
        labels : torch.Tensor
            ``(K, B)`` training labels.
        evaluate : bool
            Also return the loss and accuracy counts of the weights before the update.
        """
        k, batch = labels.shape
        o, t = self._operands, self.n_tokens
        with torch.no_grad():
            z1, h1, z2, h2, logits = self._forward(rows, batch)
            result = self.evaluate(logits, labels) if evaluate else None
            # d loss / d logits = (softmax - one_hot) / B for the mean cross-entropy.
            delta = torch.softmax(logits, dim=2)
            delta.scatter_add_(2, labels.unsqueeze(2), self._minus_ones(k, batch))
            delta.mul_(1.0 / batch)
            torch.bmm(delta.transpose(1, 2), h2, out=o.grad_w3)
            torch.sum(delta, dim=1, out=o.grad_b3)
            delta = _SILU_BACKWARD(torch.bmm(delta, o.w3), z2)
            torch.bmm(delta.transpose(1, 2), h1, out=o.grad_w2)
            torch.sum(delta, dim=1, out=o.grad_b2)
            delta = _SILU_BACKWARD(torch.bmm(delta, o.w2), z1).view(k * batch, self.hidden)
            # Back through the table: scatter the rows' gradients, then through its products.
            table = self._table_grad.zero_()
            table.index_add_(0, rows[:, 0], delta).index_add_(0, rows[:, 1], delta)
            table = table.view(k, 2 * t, self.hidden)
            table_a, table_b = table[:, :t], table[:, t:]
            torch.sum(table_a, dim=1, out=o.grad_b1)
            torch.bmm(o.embedding_a_t, table_a, out=o.grad_w1_a)
            torch.bmm(o.embedding_b_t, table_b, out=o.grad_w1_b)
            if self.shared:
                torch.bmm(table_a, o.w1_a_t, out=o.grad_embedding_a).baddbmm_(table_b, o.w1_b_t)
            else:
                torch.bmm(table_a, o.w1_a_t, out=o.grad_embedding_a)
                torch.bmm(table_b, o.w1_b_t, out=o.grad_embedding_b)
        self._update()
        return result

    def _update(self) -> None:
        """One AdamW update of the buffer: what ``self.optimizer.step()`` does, minus its wrapper."""
        state = self.optimizer.state.get(self.flat)
        if not state:
            self.optimizer.step()  # creates AdamW's state, then takes the first step
            return
        group = self.optimizer.param_groups[0]
        beta1, beta2 = group["betas"]
        adamw(
            [self.flat],
            [self.flat.grad],
            [state["exp_avg"]],
            [state["exp_avg_sq"]],
            [],
            [state["step"]],
            foreach=group["foreach"],
            fused=group["fused"],
            amsgrad=False,
            beta1=beta1,
            beta2=beta2,
            lr=group["lr"],
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            maximize=False,
        )

    def _minus_ones(self, k: int, batch: int) -> torch.Tensor:
        """A cached ``(k, batch, 1)`` tensor of ``-1``: the one-hot term of the loss gradient."""
        key = (k, batch)
        if key not in self._minus_ones_cache:
            ones = torch.full((k, batch, 1), -1.0, dtype=self.dtype, device=self.device)
            self._minus_ones_cache[key] = ones
        return self._minus_ones_cache[key]
