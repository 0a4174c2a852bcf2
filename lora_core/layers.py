"""LoRA wrappers for the layer types RVC uses: Linear, Embedding, Conv1d and ConvTranspose1d.

Every wrapper keeps the original layer as ``base_layer`` and holds any number of named adapters in
``lora_A`` / ``lora_B`` (the PEFT names). An adapter's weight delta is, per group ``G`` of the layer,

    delta = scaling * (left @ right).reshape(weight.shape),   left: [G, d0/G, r], right: [G, r, rest]

where ``d0`` is the layer weight's first axis (the axis weight norm keeps) and ``rest`` the product
of the others. Each layer type maps its ``lora_A`` / ``lora_B`` tensors to and from ``(left, right)``
exactly, so merging, combining, SVD and extraction share one code path and the kernel is always
flattened the way the layer's own factorisation flattens it.

The forward is exact, never an approximation: while no gradient reaches the adapters it runs the
base op once with ``weight + delta`` (no overhead beyond a small matmul); while training adapters
(or with dropout active) it adds the factored branch ``B(A(dropout(x)))``, which is cheaper to
differentiate. Both compute the same function as the merged layer.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from .errors import AdapterStateError, UnsupportedModuleError
from .weights import (effective_weight, load_weight_values, stored_values_for, stored_weight_shape,
                      weight_tensors)


class LoRALayer(nn.Module):
    """A base layer plus named low-rank adapters; subclasses define the layout and the forward ops."""

    kind: str = ""

    def __init__(self, base_layer: nn.Module):
        super().__init__()
        self.base_layer = base_layer
        self.lora_A = nn.ParameterDict()
        self.lora_B = nn.ParameterDict()
        self.lora_dropout = nn.ModuleDict()
        self.lora_alpha: dict = {}
        self.scaling: dict = {}
        self.strength: dict = {}
        self.disabled: set = set()
        self.merged_adapters: list = []
        self._pre_merge_values: Optional[dict] = None

    def __getattr__(self, name: str):
        """Attributes the wrapper lacks (``weight``, ``in_channels``, ``groups``, ...) are the base
        layer's, so model code that reads them keeps working; ``weight`` is the un-adapted one."""
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "base_layer":
                raise
            return getattr(self.base_layer, name)

    # ----- layout, defined per layer type -------------------------------------------------
    @property
    def groups(self) -> int:
        return 1

    def lora_shapes(self, r: int) -> tuple:
        """Shapes of (lora_A, lora_B) for rank ``r``."""
        raise NotImplementedError

    @staticmethod
    def to_factors(A: torch.Tensor, B: torch.Tensor, groups: int) -> tuple:
        """(left [G, d0/G, r], right [G, r, rest]) from the layer's lora_A / lora_B."""
        raise NotImplementedError

    @staticmethod
    def from_factors(left: torch.Tensor, right: torch.Tensor, weight_shape: tuple, groups: int) -> tuple:
        """(lora_A, lora_B) from factors; the inverse of :meth:`to_factors`."""
        raise NotImplementedError

    def _forward_with_weight(self, x: torch.Tensor, weight: torch.Tensor, *args) -> torch.Tensor:
        """The base layer's computation with ``weight`` in place of its own."""
        raise NotImplementedError

    def _factored_branch(self, x: torch.Tensor, A: torch.Tensor, B: torch.Tensor, *args) -> torch.Tensor:
        """The unscaled adapter output ``delta(x)`` computed through A and B without forming delta."""
        raise NotImplementedError

    # ----- adapters -------------------------------------------------------------------------
    @property
    def weight_shape(self) -> tuple:
        return stored_weight_shape(self.base_layer)

    def rank(self, name: str) -> int:
        return self.lora_A[name].shape[0] // self.groups

    def add_adapter(self, name: str, r: int, lora_alpha: float, scaling: float,
                    lora_dropout: float = 0.0, init: object = True) -> None:
        if name in self.lora_A:
            raise AdapterStateError(f"adapter {name!r} already exists on this layer; delete it first")
        if self.merged_adapters:
            raise AdapterStateError(f"cannot add adapter {name!r} while adapters are merged; unmerge first")
        weight = effective_weight(self.base_layer)
        shape_a, shape_b = self.lora_shapes(r)
        A = torch.empty(shape_a, device=weight.device, dtype=torch.float32)
        B = torch.zeros(shape_b, device=weight.device, dtype=torch.float32)
        self._init_factors(A, B, r, init)
        self.lora_A[name] = nn.Parameter(A)
        self.lora_B[name] = nn.Parameter(B)
        self.lora_dropout[name] = nn.Dropout(lora_dropout) if lora_dropout > 0 else nn.Identity()
        self.lora_alpha[name] = float(lora_alpha)
        self.scaling[name] = float(scaling)
        self.strength[name] = 1.0

    def _init_factors(self, A: torch.Tensor, B: torch.Tensor, r: int, init: object) -> None:
        """B starts at zero so a fresh adapter changes nothing; ``init=False`` randomises B too (tests)."""
        if init == "gaussian":
            nn.init.normal_(A, std=1.0 / r)
        else:
            nn.init.kaiming_uniform_(A, a=math.sqrt(5))
        if init is False:
            nn.init.kaiming_uniform_(B, a=math.sqrt(5))

    def delete_adapter(self, name: str) -> None:
        self._require(name)
        if name in self.merged_adapters:
            raise AdapterStateError(f"adapter {name!r} is merged; unmerge before deleting it")
        for table in (self.lora_A, self.lora_B, self.lora_dropout):
            del table[name]
        for table in (self.lora_alpha, self.scaling, self.strength):
            del table[name]
        self.disabled.discard(name)

    def _require(self, name: str) -> None:
        if name not in self.lora_A:
            raise AdapterStateError(f"no adapter named {name!r}; this layer has {sorted(self.lora_A)}")

    def active_adapters(self) -> list:
        """Adapters that change the output: enabled and with a non-zero strength."""
        return [n for n in self.lora_A if n not in self.disabled and self.strength[n] != 0.0]

    def factors(self, name: str) -> tuple:
        self._require(name)
        return self.to_factors(self.lora_A[name], self.lora_B[name], self.groups)

    def delta_weight(self, name: str) -> torch.Tensor:
        """The weight change adapter ``name`` makes at its current strength (differentiable)."""
        left, right = self.factors(name)
        delta = torch.bmm(left, right).reshape(self.weight_shape)
        return delta * (self.scaling[name] * self.strength[name])

    # ----- forward --------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, *args) -> torch.Tensor:
        active = [] if self.merged_adapters else self.active_adapters()
        if not active:
            return self.base_layer(x, *args)
        if self._needs_factored_path(active):
            result = self.base_layer(x, *args)
            for name in active:
                branch = self._factored_branch(self._branch_input(name, x), self.lora_A[name],
                                               self.lora_B[name], *args)
                result = result + (branch * (self.scaling[name] * self.strength[name])).to(result.dtype)
            return result
        return self._forward_with_weight(x, self.current_weight(active), *args)

    def current_weight(self, active: Optional[list] = None) -> torch.Tensor:
        """The weight the folded forward computes with: the base's (merged adapters included) plus the
        deltas of the ``active`` adapters (default: those that change the output now)."""
        weight = effective_weight(self.base_layer)
        if active is None:
            active = [] if self.merged_adapters else self.active_adapters()
        if not active:
            return weight
        delta = sum(self.delta_weight(name) for name in active)
        return weight + delta.to(weight.dtype)

    def _branch_input(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return self.lora_dropout[name](x.to(self.lora_A[name].dtype))

    def _needs_factored_path(self, active: list) -> bool:
        if self.training and any(isinstance(self.lora_dropout[n], nn.Dropout) for n in active):
            return True
        return torch.is_grad_enabled() and any(
            self.lora_A[n].requires_grad or self.lora_B[n].requires_grad for n in active
        )

    # ----- merge ----------------------------------------------------------------------------
    def merged_values(self, names: list) -> dict:
        """The base weight tensors as they would be with ``names`` folded in (nothing is written)."""
        with torch.no_grad():
            weight = effective_weight(self.base_layer).float()
            for name in names:
                weight = weight + self.delta_weight(name).float()
            return stored_values_for(self.base_layer, weight)

    def apply_merge(self, names: list, values: dict) -> None:
        """Write values from :meth:`merged_values`, keeping the originals so unmerge is exact."""
        if self.merged_adapters:
            raise AdapterStateError("adapters are already merged into this layer; unmerge first")
        self._pre_merge_values = {k: t.detach().clone() for k, t in weight_tensors(self.base_layer).items()}
        load_weight_values(self.base_layer, values)
        self.merged_adapters = list(names)

    def unmerge(self) -> None:
        """Restore the base weights exactly as they were before the merge."""
        if not self.merged_adapters:
            return
        load_weight_values(self.base_layer, self._pre_merge_values)
        self._pre_merge_values = None
        self.merged_adapters = []


class LoRALinear(LoRALayer):
    """LoRA on ``nn.Linear``: A [r, in], B [out, r]."""

    kind = "linear"

    def lora_shapes(self, r):
        out_features, in_features = self.weight_shape
        return (r, in_features), (out_features, r)

    @staticmethod
    def to_factors(A, B, groups):
        return B.unsqueeze(0), A.unsqueeze(0)

    @staticmethod
    def from_factors(left, right, weight_shape, groups):
        return right[0], left[0]

    def _forward_with_weight(self, x, weight):
        return F.linear(x, weight, self.base_layer.bias)

    def _factored_branch(self, x, A, B):
        return F.linear(F.linear(x, A), B)


class LoRAEmbedding(LoRALayer):
    """LoRA on ``nn.Embedding``: A [r, num_embeddings], B [embedding_dim, r] (PEFT's layout)."""

    kind = "embedding"

    def __init__(self, base_layer: nn.Embedding):
        if base_layer.max_norm is not None:
            raise UnsupportedModuleError("LoRA on an nn.Embedding with max_norm is not supported: "
                                         "max_norm rewrites the table during the forward")
        super().__init__(base_layer)

    def lora_shapes(self, r):
        num, dim = self.weight_shape
        return (r, num), (dim, r)

    def _init_factors(self, A, B, r, init):
        nn.init.normal_(A, std=1.0 / r if init == "gaussian" else 1.0)
        if init is False:
            nn.init.normal_(B, std=1.0 / r)

    @staticmethod
    def to_factors(A, B, groups):
        return A.t().unsqueeze(0), B.t().unsqueeze(0)

    @staticmethod
    def from_factors(left, right, weight_shape, groups):
        return left[0].t(), right[0].t()

    def _lookup(self, x, table):
        base = self.base_layer
        return F.embedding(x, table, base.padding_idx, None, base.norm_type,
                           base.scale_grad_by_freq, base.sparse)

    def _forward_with_weight(self, x, weight):
        return self._lookup(x, weight)

    def _factored_branch(self, x, A, B):
        return self._lookup(x, A.t()) @ B.t()

    def add_adapter(self, name, r, lora_alpha, scaling, lora_dropout=0.0, init=True):
        # Dropout on integer indices has no meaning; PEFT ignores it for embeddings too.
        super().add_adapter(name, r, lora_alpha, scaling, 0.0, init)

    def _branch_input(self, name, x):
        return x


class LoRAConv1d(LoRALayer):
    """LoRA on ``nn.Conv1d``: A is a conv with the base's full geometry (kernel, stride, padding,
    dilation, padding_mode, groups) mapping in -> r per group; B is a grouped 1-tap conv r -> out.
    With groups the delta is block-diagonal like the base weight, so the merge stays exact."""

    kind = "conv1d"

    @property
    def groups(self):
        return self.base_layer.groups

    def lora_shapes(self, r):
        out_ch, in_per_group, k = self.weight_shape
        return (r * self.groups, in_per_group, k), (out_ch, r, 1)

    @staticmethod
    def to_factors(A, B, groups):
        r = A.shape[0] // groups
        right = A.reshape(groups, r, -1)
        left = B.reshape(groups, B.shape[0] // groups, r)
        return left, right

    @staticmethod
    def from_factors(left, right, weight_shape, groups):
        out_ch, in_per_group, k = weight_shape
        r = left.shape[-1]
        return right.reshape(groups * r, in_per_group, k), left.reshape(out_ch, r, 1)

    def _forward_with_weight(self, x, weight):
        return self.base_layer._conv_forward(x, weight, self.base_layer.bias)

    def _factored_branch(self, x, A, B):
        reduced = self.base_layer._conv_forward(x, A, None)
        return F.conv1d(reduced, B, groups=self.groups)


class LoRAConvTranspose1d(LoRALayer):
    """LoRA on ``nn.ConvTranspose1d`` (weight [in, out/G, k]): A is a grouped 1-tap conv in -> r at
    the input rate; B is a transposed conv r -> out with the base's full geometry (kernel, stride,
    padding, output_padding, dilation, groups). A transposed conv is linear in its input channels,
    so ``convT(A x, B) == convT(x, delta)`` with ``delta[i, o, k] = sum_r A[r, i] B[r, o, k]`` exactly;
    the reduction runs before the upsampling, where it is cheapest."""

    kind = "conv_transpose1d"

    @property
    def groups(self):
        return self.base_layer.groups

    def lora_shapes(self, r):
        in_ch, out_per_group, k = self.weight_shape
        return (r * self.groups, in_ch // self.groups, 1), (r * self.groups, out_per_group, k)

    @staticmethod
    def to_factors(A, B, groups):
        r = A.shape[0] // groups
        left = A.reshape(groups, r, -1).transpose(1, 2)
        right = B.reshape(groups, r, -1)
        return left, right

    @staticmethod
    def from_factors(left, right, weight_shape, groups):
        in_ch, out_per_group, k = weight_shape
        r = left.shape[-1]
        A = left.transpose(1, 2).reshape(groups * r, in_ch // groups, 1)
        return A, right.reshape(groups * r, out_per_group, k)

    def _output_padding(self, x, output_size):
        base = self.base_layer
        if output_size is None:
            return base.output_padding
        return base._output_padding(x, output_size, base.stride, base.padding, base.kernel_size, 1, base.dilation)

    def _transposed(self, x, weight, bias, output_size):
        base = self.base_layer
        return F.conv_transpose1d(x, weight, bias, base.stride, base.padding,
                                  self._output_padding(x, output_size), base.groups, base.dilation)

    def _forward_with_weight(self, x, weight, output_size=None):
        return self._transposed(x, weight, self.base_layer.bias, output_size)

    def _factored_branch(self, x, A, B, output_size=None):
        return self._transposed(F.conv1d(x, A, groups=self.groups), B, None, output_size)


LAYER_TYPES = {
    nn.Linear: LoRALinear,
    nn.Embedding: LoRAEmbedding,
    nn.Conv1d: LoRAConv1d,
    nn.ConvTranspose1d: LoRAConvTranspose1d,
}
LAYERS_BY_KIND = {cls.kind: cls for cls in LAYER_TYPES.values()}


def current_weight(module: nn.Module) -> torch.Tensor:
    """The weight a layer's forward uses now, whether it is a plain layer (weight norm included) or a
    LoRA wrapper (its active adapters folded in): for code that runs the layer's op itself."""
    return module.current_weight() if isinstance(module, LoRALayer) else effective_weight(module)


def lora_class_for(module: nn.Module) -> Optional[type]:
    """The wrapper class for a module, or None. Exact types only, so a subclass with another forward
    is never wrapped by mistake; a parametrized module counts as its original class."""
    cls = type(module)
    if parametrize.is_parametrized(module):
        cls = cls.__bases__[0]
    return LAYER_TYPES.get(cls)
