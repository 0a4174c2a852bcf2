"""LoRA configuration and the rules that map it onto module names."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Union

Targets = Union[str, list, tuple, None]


@dataclass
class LoRAConfig:
    """What to adapt and how strongly, with the field names PEFT and the original RVC-LoRA use.

    ``target_modules`` and ``exclude_modules`` follow PEFT: a list entry matches a module whose
    dotted name equals it or ends with ``"." + entry``; a single string is a regular expression
    that must match the whole name; ``"all"`` (or None) selects every supported layer. A target
    that names a container (e.g. ``"ups"`` or ``"dec.resblocks"``) selects every supported layer
    inside it. ``rank_pattern`` / ``alpha_pattern`` map a regex (matched against the end of the
    module name) to an override; the first matching key wins.
    """

    r: int = 8
    lora_alpha: float = 8.0
    lora_dropout: float = 0.0
    target_modules: Targets = None
    exclude_modules: Targets = None
    rank_pattern: dict = field(default_factory=dict)
    alpha_pattern: dict = field(default_factory=dict)
    use_rslora: bool = False
    init_lora_weights: Union[bool, str] = True

    def __post_init__(self):
        if isinstance(self.target_modules, tuple):
            self.target_modules = list(self.target_modules)
        if isinstance(self.exclude_modules, tuple):
            self.exclude_modules = list(self.exclude_modules)
        if int(self.r) != self.r or self.r < 1:
            raise ValueError(f"LoRAConfig.r must be a positive integer, got {self.r!r}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"LoRAConfig.lora_dropout must be in [0, 1), got {self.lora_dropout!r}")
        if self.init_lora_weights not in (True, False, "gaussian"):
            raise ValueError("LoRAConfig.init_lora_weights must be True, False or 'gaussian'")
        for name, pattern in {**self.rank_pattern, **self.alpha_pattern}.items():
            re.compile(name)
        for rank in self.rank_pattern.values():
            if int(rank) != rank or rank < 1:
                raise ValueError(f"rank_pattern values must be positive integers, got {rank!r}")

    def rank_for(self, module_name: str) -> int:
        return int(_first_pattern_value(self.rank_pattern, module_name, self.r))

    def alpha_for(self, module_name: str) -> float:
        return float(_first_pattern_value(self.alpha_pattern, module_name, self.lora_alpha))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "LoRAConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def lora_scaling(rank: int, alpha: float, use_rslora: bool) -> float:
    """alpha / r (PEFT), or alpha / sqrt(r) for rank-stabilised LoRA."""
    return alpha / math.sqrt(rank) if use_rslora else alpha / rank


def name_matches(targets: Targets, module_name: str) -> bool:
    """PEFT's matching rule: a string is a full-match regex; a list matches exact names or suffixes."""
    if targets is None:
        return False
    if isinstance(targets, str):
        return targets == "all" or re.fullmatch(targets, module_name) is not None
    return any(module_name == t or module_name.endswith("." + t) for t in targets)


def _first_pattern_value(patterns: dict, module_name: str, default):
    for key, value in patterns.items():
        if re.fullmatch(rf"(?:.*\.)?(?:{key})", module_name):
            return value
    return default
