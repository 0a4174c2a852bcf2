"""The frame grid every RVC pitch method shares: 10 ms frames of 16 kHz audio, 50..1100 Hz."""

SAMPLE_RATE = 16000
HOP_LENGTH = 160
F0_MIN = 50.0
F0_MAX = 1100.0
