"""Tiny assets for the UI tests: two RVC models (f0 and no-f0), a HuBERT, three adapters (one that fits,
one trained on another base, one for another architecture), an index named after the model, a
flite-spoken sentence and a file that is not audio."""

import os

import numpy as np
import pytest
import soundfile

from builders import tiny_hubert_folder, tiny_model_file
from lora_core import LoRAConfig, inject_lora, save_adapter
from speech import flite_sentence
from webui_lora.assets import Assets
from webui_lora.rvc.checkpoints import load_model
from webui_lora.rvc.index import build_index

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

SENTENCE = "Hello, how are you?"
MODEL = "v2_f0_40k.pth"
NO_F0_MODEL = "v2_nof0_32k.pth"


def _adapter(model_path, path, extra):
    net = load_model(model_path).synthesizer
    inject_lora(net, LoRAConfig(r=2, target_modules=["dec.ups"], init_lora_weights=False), "a")
    save_adapter(net, path, "a", extra=extra)


@pytest.fixture(scope="session")
def asset_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("ui_assets")
    tiny_hubert_folder(root)
    weights, adapters, scratch = root / "weights", root / "adapters", root / "scratch"
    for folder in (weights, adapters, scratch):
        folder.mkdir()
    model = tiny_model_file(weights, "v2_f0_40k")
    tiny_model_file(weights, "v2_nof0_32k")
    v2 = {"version": "v2", "sr": 40000, "f0": True}
    _adapter(model, adapters / "voice.safetensors", v2)
    _adapter(tiny_model_file(scratch, "v2_f0_40k", seed=1), adapters / "other_base.safetensors", v2)
    _adapter(tiny_model_file(scratch, "v1_f0_48k"), adapters / "v1_voice.safetensors",
             {"version": "v1", "sr": 48000, "f0": True})
    (root / "indices").mkdir()
    features = np.random.default_rng(0).standard_normal((200, 768)).astype(np.float32)
    build_index(features, root / "indices" / "added_IVF2_Flat_nprobe_1_v2_f0_40k_v2.index")
    soundfile.write(root / "speech.wav", flite_sentence(SENTENCE, "slt", 22050), 22050)
    (root / "not_audio.wav").write_text("this is not a wav file")
    return root


@pytest.fixture(scope="session")
def assets(asset_dir):
    return Assets(asset_dir)  # not discover(): an RVC_ROOT in the environment must not add models
