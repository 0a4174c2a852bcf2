"""RVC's synthesizers and discriminators, rebuilt with RVC's exact state-dict keys."""

from .discriminator import PERIODS, DiscriminatorP, DiscriminatorS, MultiPeriodDiscriminator, build_discriminator
from .synthesizer import (
    CONFIG_FIELDS,
    RVC_CLASS_NAMES,
    SynthesizerV1F0,
    SynthesizerV1NoF0,
    SynthesizerV2F0,
    SynthesizerV2NoF0,
    build_synthesizer,
    parse_sample_rate,
    sample_rate_tag,
    synthesizer_class,
)

__all__ = [
    "CONFIG_FIELDS",
    "PERIODS",
    "RVC_CLASS_NAMES",
    "DiscriminatorP",
    "DiscriminatorS",
    "MultiPeriodDiscriminator",
    "SynthesizerV1F0",
    "SynthesizerV1NoF0",
    "SynthesizerV2F0",
    "SynthesizerV2NoF0",
    "build_discriminator",
    "build_synthesizer",
    "parse_sample_rate",
    "sample_rate_tag",
    "synthesizer_class",
]
