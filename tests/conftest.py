"""Suite-wide settings: deterministic, CPU-only, no deadlines (shared machines are noisy)."""

import os

import torch
from hypothesis import settings

settings.register_profile("default", deadline=None, max_examples=40, derandomize=True)

torch.set_num_threads(min(2, torch.get_num_threads()))
settings.register_profile("thorough", deadline=None, max_examples=400)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
