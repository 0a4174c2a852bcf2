"""HuBERT/ContentVec loading: fairseq checkpoints without fairseq, transformers folders, padding, refusals."""

import argparse
import os
import pickle
import re
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
from transformers import HubertConfig

from webui_lora.errors import UserError
from webui_lora.rvc.checkpoints import CheckpointError, UnsafeCheckpointError
from webui_lora.rvc.hubert import HubertWithFinalProj, load_hubert, save_hubert_folder
from webui_lora.rvc.hubert_fairseq import parse_conv_layers

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "hubert_fairseq"
FAIRSEQ_PT = FIXTURE / "hubert_fairseq.pt"


@pytest.fixture(scope="module")
def fixture_audio():
    return torch.from_numpy(np.load(FIXTURE / "hubert_inputs.npz")["audio"])


@pytest.fixture(scope="module")
def fixture_model():
    return load_hubert(FAIRSEQ_PT)


# ---------------------------------------------------------------- helpers: tiny models, fairseq-layout files

def tiny_config(**overrides):
    """HuBERT-base layout (7 convs, total stride 320, 12 layers) at a width that runs in milliseconds."""
    settings = dict(hidden_size=32, num_hidden_layers=12, num_attention_heads=4, intermediate_size=48,
                    conv_dim=[16] * 7, num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=4,
                    classifier_proj_size=8)
    settings.update(overrides)
    return HubertConfig(**settings)


def random_hubert(config, normalize=False, seed=0):
    """A HubertWithFinalProj whose every tensor (norms included) is random, so a swapped key shows."""
    torch.manual_seed(seed)
    model = HubertWithFinalProj(config, normalize_waveform=normalize)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.1)
    return model.eval()


class _ForeignPickler(pickle._Pickler):
    """Writes a class that has `pickled_as = (module, name)` under that name, as fairseq/omegaconf would.

    Lets the tests write the globals real checkpoints hold without fairseq or omegaconf installed.
    """

    def save_global(self, obj, name=None):
        foreign = obj.__dict__.get("pickled_as") if isinstance(obj, type) else None
        if foreign is None:
            return super().save_global(obj, name)
        self.write(pickle.GLOBAL + f"{foreign[0]}\n{foreign[1]}\n".encode())
        self.memoize(obj)


FOREIGN_PICKLE = types.SimpleNamespace(__name__="foreign_pickle", Pickler=_ForeignPickler)


class FakeDictionary:
    pickled_as = ("fairseq.data.dictionary", "Dictionary")

    def __init__(self, symbols):
        self.symbols, self.count, self.nspecial = symbols, [1] * len(symbols), 4


class FakeDictConfig:
    pickled_as = ("omegaconf.dictconfig", "DictConfig")


class FakeListConfig:
    pickled_as = ("omegaconf.listconfig", "ListConfig")


class FakeAnyNode:
    pickled_as = ("omegaconf.nodes", "AnyNode")


class FakeChoice:
    """fairseq's ChoiceEnum values (extractor_mode...): pickled as `Choices(value)`."""
    pickled_as = ("fairseq.dataclass.constants", "Choices")

    def __init__(self, value):
        self.value = value

    def __reduce__(self):
        return type(self), (self.value,)


def as_omegaconf(value, parent=None):
    """Mirror omegaconf's pickled layout: containers keep `_content`, nodes `_val`, both point to `_parent`."""
    if isinstance(value, (dict, list)):
        container = FakeDictConfig() if isinstance(value, dict) else FakeListConfig()
        items = value.items() if isinstance(value, dict) else enumerate(value)
        content = {key: as_omegaconf(item, container) for key, item in items}
        container.__dict__.update(_metadata={"ref_type": __import__("typing").Any}, _parent=parent,
                                  _content=content if isinstance(value, dict) else list(content.values()))
        return container
    node = FakeAnyNode()
    node.__dict__.update(_parent=parent, _val=FakeChoice(value) if value in ("default", "layer_norm") else value)
    return node


# transformers -> fairseq: the inverse of hubert_fairseq's rules, written apart from them on purpose,
# so that loading these checkpoints tests those rules instead of repeating them.
_TO_FAIRSEQ_KEYS = [(re.compile(pattern), replacement) for pattern, replacement in (
    (r"^feature_extractor\.conv_layers\.(\d+)\.conv\.", r"feature_extractor.conv_layers.\1.0."),
    (r"^feature_projection\.layer_norm\.", "layer_norm."),
    (r"^feature_projection\.projection\.", "post_extract_proj."),
    (r"^encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original0$", "encoder.pos_conv.0.weight_g"),
    (r"^encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original1$", "encoder.pos_conv.0.weight_v"),
    (r"^encoder\.pos_conv_embed\.conv\.", "encoder.pos_conv.0."),
    (r"^encoder\.layers\.(\d+)\.attention\.", r"encoder.layers.\1.self_attn."),
    (r"^encoder\.layers\.(\d+)\.layer_norm\.", r"encoder.layers.\1.self_attn_layer_norm."),
    (r"^encoder\.layers\.(\d+)\.feed_forward\.intermediate_dense\.", r"encoder.layers.\1.fc1."),
    (r"^encoder\.layers\.(\d+)\.feed_forward\.output_dense\.", r"encoder.layers.\1.fc2."),
    (r"^masked_spec_embed$", "mask_emb"),
)]


def fairseq_state(model):
    """The model's weights under fairseq HubertModel's key names (written from fairseq's layout, not ours)."""
    layer_norm_mode = model.config.feat_extract_norm == "layer"
    state = {}
    for key, tensor in model.state_dict().items():
        conv_norm = re.match(r"^feature_extractor\.conv_layers\.(\d+)\.layer_norm\.(\w+)$", key)
        if conv_norm:  # GroupNorm is module 2 of a conv block; "layer_norm" mode wraps its LayerNorm as 2.1
            index, param = conv_norm.groups()
            key = f"feature_extractor.conv_layers.{index}.2.{'1.' if layer_norm_mode else ''}{param}"
        for pattern, replacement in _TO_FAIRSEQ_KEYS:
            key = pattern.sub(replacement, key)
        state[key] = tensor.clone()
    state["label_embs_concat"] = torch.randn(504, model.config.classifier_proj_size)
    return state


def fairseq_cfg(config, normalize):
    conv = " + ".join(f"[({dim},{kernel},{stride})]"
                      for dim, kernel, stride in zip(config.conv_dim, config.conv_kernel, config.conv_stride))
    model = {"_name": "hubert", "label_rate": 50.0,
             "extractor_mode": "layer_norm" if config.feat_extract_norm == "layer" else "default",
             "encoder_layers": config.num_hidden_layers, "encoder_embed_dim": config.hidden_size,
             "encoder_ffn_embed_dim": config.intermediate_size,
             "encoder_attention_heads": config.num_attention_heads, "activation_fn": "gelu",
             "layer_type": "transformer", "final_dim": config.classifier_proj_size, "untie_final_proj": False,
             "layer_norm_first": config.do_stable_layer_norm, "conv_feature_layers": conv,
             "conv_bias": config.conv_bias, "conv_pos": config.num_conv_pos_embeddings,
             "conv_pos_groups": config.num_conv_pos_embedding_groups, "latent_temp": [2.0, 0.5, 0.999995]}
    task = {"_name": "hubert_pretraining", "data": "/nonexistent", "labels": ["km"], "sample_rate": 16000,
            "normalize": normalize}
    return model, task


def fairseq_checkpoint(model, cfg_style="cfg"):
    """`model` as fairseq's trainer saves it: cfg (plain, omegaconf, or old argparse args) + task_state."""
    model_cfg, task_cfg = fairseq_cfg(model.config, model.normalize_waveform)
    checkpoint = {"args": None, "cfg": {"model": model_cfg, "task": task_cfg, "common": {"fp16": False}},
                  "model": fairseq_state(model), "criterion": None,
                  "optimizer_history": [{"criterion_name": "HubertCriterion", "num_updates": 0}],
                  "task_state": {"dictionaries": [FakeDictionary(["<s>", "<pad>", "</s>", "<unk>", "0"])]},
                  "extra_state": {"previous_training_time": 0.0}}
    if cfg_style == "omegaconf":
        checkpoint["cfg"] = as_omegaconf(checkpoint["cfg"])
    elif cfg_style == "args":
        flat = {**task_cfg, **model_cfg, "arch": "hubert"}
        del flat["_name"]
        checkpoint.update(cfg=None, args=argparse.Namespace(**flat))
    return checkpoint


def write_checkpoint(checkpoint, path):
    torch.save(checkpoint, path, pickle_module=FOREIGN_PICKLE)
    return path


def speech_like(batch, samples, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, samples, generator=generator) * 0.3


# ---------------------------------------------------------------- (1) fairseq fixture parity

@pytest.mark.parametrize("version", ["v1", "v2"])
def test_fairseq_checkpoint_reproduces_fairseq_features(fixture_model, fixture_audio, version):
    expected = np.load(FIXTURE / "hubert_expected.npz")[version]
    features = fixture_model.features(fixture_audio, version)
    assert features.dtype == torch.float32
    np.testing.assert_allclose(features.numpy(), expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("layer_norm_mode", [False, True])
def test_tiled_front_end_is_the_whole_row_function(fixture_model, layer_norm_mode, monkeypatch):
    """Long input runs the conv front end in tiles (GroupNorm statistics from a first pass over the row)."""
    model = random_hubert(tiny_config(feat_extract_norm="layer")) if layer_norm_mode else fixture_model
    audio = speech_like(2, 16000 * 3 + 123)
    monkeypatch.setattr(type(model), "front_end_tile_frames", 10_000)
    whole = model.features(audio, "v2")
    monkeypatch.setattr(type(model), "front_end_tile_frames", 7)
    tiled = model.features(audio, "v2")
    assert tiled.shape == whole.shape
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=1e-5)


def test_geometry_comes_from_the_checkpoint_cfg(fixture_model):
    config = fixture_model.config
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == (12, 64, 4)
    assert (config.intermediate_size, config.classifier_proj_size) == (96, 16)
    assert list(config.conv_dim) == [32] * 7 and list(config.conv_stride) == [5, 2, 2, 2, 2, 2, 2]
    assert (config.num_conv_pos_embeddings, config.num_conv_pos_embedding_groups) == (16, 4)
    assert config.feat_extract_norm == "group" and not config.do_stable_layer_norm
    assert fixture_model.normalize_waveform is False
    assert "fairseq" not in sys.modules and "omegaconf" not in sys.modules


def test_loaded_model_is_frozen_in_eval_mode(fixture_model):
    fixture_model.train()
    assert not fixture_model.training
    assert not any(param.requires_grad for param in fixture_model.parameters())


@pytest.mark.parametrize("stable_layer_norm", [False, True])
def test_features_match_transformers_own_forward(fixture_model, fixture_audio, stable_layer_norm):
    model = random_hubert(tiny_config(do_stable_layer_norm=True)) if stable_layer_norm else fixture_model
    outputs = model(fixture_audio, output_hidden_states=True)
    torch.testing.assert_close(model.features(fixture_audio, "v1"), model.final_proj(outputs.hidden_states[9]))
    if not stable_layer_norm:  # fairseq's output_layer=12 skips the final LayerNorm that last_hidden_state has
        torch.testing.assert_close(model.features(fixture_audio, "v2"), outputs.last_hidden_state)


# ---------------------------------------------------------------- (2) transformers folder <-> fairseq layout

def test_fairseq_fixture_saved_as_transformers_folder_loads_to_same_features(tmp_path, fixture_model, fixture_audio):
    save_hubert_folder(fixture_model, tmp_path / "hubert_base")
    assert sorted(os.listdir(tmp_path / "hubert_base")) == ["config.json", "model.safetensors",
                                                            "preprocessor_config.json"]
    from_folder = load_hubert(tmp_path / "hubert_base")
    expected = np.load(FIXTURE / "hubert_expected.npz")
    for version in ("v1", "v2"):
        features = from_folder.features(fixture_audio, version)
        torch.testing.assert_close(features, fixture_model.features(fixture_audio, version), atol=0, rtol=0)
        np.testing.assert_allclose(features.numpy(), expected[version], atol=1e-4, rtol=0)


GEOMETRIES = {
    "hubert-base-layout": dict(config=tiny_config(), normalize=False),
    "layer-norm-first": dict(config=tiny_config(do_stable_layer_norm=True, feat_extract_norm="layer",
                                                conv_bias=True, num_conv_pos_embeddings=7),
                             normalize=True),
}


@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("cfg_style", ["cfg", "omegaconf", "args"])
def test_transformers_folder_and_fairseq_layout_give_same_features(tmp_path, geometry, cfg_style):
    model = random_hubert(**GEOMETRIES[geometry])
    save_hubert_folder(model, tmp_path / "folder")
    from_folder = load_hubert(tmp_path / "folder")
    from_fairseq = load_hubert(write_checkpoint(fairseq_checkpoint(model, cfg_style), tmp_path / "model.pt"))
    assert from_fairseq.normalize_waveform == from_folder.normalize_waveform == GEOMETRIES[geometry]["normalize"]
    audio = speech_like(1, 8000)
    for version in ("v1", "v2"):
        reference = model.features(audio, version)
        torch.testing.assert_close(from_folder.features(audio, version), reference, atol=0, rtol=0)
        torch.testing.assert_close(from_fairseq.features(audio, version), reference, atol=1e-6, rtol=1e-5)


def test_folder_with_legacy_weight_norm_names_loads(tmp_path):
    model = random_hubert(tiny_config())
    save_hubert_folder(model, tmp_path)
    state = safetensors.torch.load_file(tmp_path / "model.safetensors")
    legacy = {key.replace("parametrizations.weight.original0", "weight_g")
                 .replace("parametrizations.weight.original1", "weight_v"): tensor for key, tensor in state.items()}
    assert "encoder.pos_conv_embed.conv.weight_g" in legacy
    (tmp_path / "model.safetensors").unlink()
    torch.save(legacy, tmp_path / "pytorch_model.bin")
    audio = speech_like(1, 4000)
    torch.testing.assert_close(load_hubert(tmp_path).features(audio, "v2"), model.features(audio, "v2"))


# ---------------------------------------------------------------- (3) padding masks

@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_padded_batch_matches_each_row_alone(fixture_model, fixture_audio, version, normalize):
    fixture_model.normalize_waveform = normalize
    try:
        lengths = [32000, 20000, 9000]
        batch = speech_like(3, 32000, seed=7) * 5  # loud junk in the padding must not leak into the rows
        batch[0] = fixture_audio[0]
        batch[1, :20000] = fixture_audio[0, 5000:25000]
        batch[2, :9000] = fixture_audio[0, 11000:20000]
        padding_mask = torch.arange(32000)[None, :] >= torch.tensor(lengths)[:, None]
        batched = fixture_model.features(batch, version, padding_mask)
        for row, length in enumerate(lengths):
            alone = fixture_model.features(batch[row:row + 1, :length], version)[0]
            torch.testing.assert_close(batched[row, :alone.shape[0]], alone, atol=1e-4, rtol=1e-4)
    finally:
        fixture_model.normalize_waveform = False


def test_all_false_padding_mask_is_the_unpadded_path(fixture_model, fixture_audio):
    mask = np.zeros(fixture_audio.shape, dtype=bool)
    torch.testing.assert_close(fixture_model.features(fixture_audio.numpy(), "v2", mask),
                               fixture_model.features(fixture_audio, "v2"), atol=0, rtol=0)


def test_padding_must_sit_at_the_end(fixture_model, fixture_audio):
    mask = torch.zeros_like(fixture_audio, dtype=torch.bool)
    mask[:, :100] = True
    with pytest.raises(ValueError, match="end of each row"):
        fixture_model.features(fixture_audio, "v2", mask)


def test_unknown_version_and_bad_shapes_are_refused(fixture_model, fixture_audio):
    with pytest.raises(ValueError, match="v1"):
        fixture_model.features(fixture_audio, "v3")
    with pytest.raises(ValueError, match=r"\[batch, samples\]"):
        fixture_model.features(fixture_audio[0], "v2")
    with pytest.raises(ValueError, match="only 2 layers"):
        random_hubert(tiny_config(num_hidden_layers=2)).features(fixture_audio, "v2")


# ---------------------------------------------------------------- (4) errors and refusals

def test_missing_path_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nope.pt"))):
        load_hubert(tmp_path / "nope.pt")


def test_folder_without_config_or_weights_names_it(tmp_path):
    with pytest.raises(CheckpointError, match=re.escape(str(tmp_path)) + ".*config.json"):
        load_hubert(tmp_path)
    (tmp_path / "hubert_base.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="hubert_base.pt"):
        load_hubert(tmp_path)
    tiny_config().to_json_file(tmp_path / "config.json")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_hubert(tmp_path)


def test_folder_of_another_model_type_is_refused(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "wav2vec2"}')
    with pytest.raises(CheckpointError, match="wav2vec2"):
        load_hubert(tmp_path)


def test_non_hubert_checkpoints_are_refused(tmp_path):
    rvc_model = tmp_path / "voice.pth"
    torch.save({"weight": {"enc_p.emb_phone.weight": torch.zeros(2, 2)}, "config": [1, 2], "version": "v2"},
               rvc_model)
    with pytest.raises(CheckpointError, match=re.escape(str(rvc_model)) + ".*not a fairseq checkpoint"):
        load_hubert(rvc_model)

    checkpoint = fairseq_checkpoint(random_hubert(tiny_config()))
    checkpoint["cfg"]["model"]["_name"] = "wav2vec2"
    wav2vec = write_checkpoint(checkpoint, tmp_path / "wav2vec.pt")
    with pytest.raises(CheckpointError, match="not a fairseq HuBERT.*wav2vec2"):
        load_hubert(wav2vec)

    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match=re.escape(str(text))):
        load_hubert(text)


def test_missing_and_unexpected_keys_are_listed(tmp_path):
    checkpoint = fairseq_checkpoint(random_hubert(tiny_config()))
    del checkpoint["model"]["encoder.layers.3.fc1.bias"]
    checkpoint["model"]["encoder.layers.3.adapter.weight"] = torch.zeros(1)
    path = write_checkpoint(checkpoint, tmp_path / "edited.pt")
    with pytest.raises(CheckpointError) as raised:
        load_hubert(path)
    message = str(raised.value)
    assert str(path) in message
    assert "encoder.layers.3.feed_forward.intermediate_dense.bias" in message
    assert "encoder.layers.3.adapter.weight" in message


def test_folder_without_final_proj_serves_v2_and_says_why_not_v1(tmp_path, fixture_audio):
    model = random_hubert(tiny_config())
    save_hubert_folder(model, tmp_path)
    weights = safetensors.torch.load_file(tmp_path / "model.safetensors")
    safetensors.torch.save_file({k: v for k, v in weights.items() if not k.startswith("final_proj.")},
                                tmp_path / "model.safetensors")
    plain = load_hubert(tmp_path)
    torch.testing.assert_close(plain.features(fixture_audio, "v2"), model.features(fixture_audio, "v2"))
    with pytest.raises(UserError, match="no final_proj: it serves v2 models only"):
        plain.features(fixture_audio, "v1")


def test_weights_that_disagree_with_config_shapes_are_refused(tmp_path):
    save_hubert_folder(random_hubert(tiny_config()), tmp_path)
    tiny_config(classifier_proj_size=5).to_json_file(tmp_path / "config.json")
    with pytest.raises(CheckpointError, match="(?s)" + re.escape(str(tmp_path)) + ".*final_proj"):
        load_hubert(tmp_path)


class _RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _RunsPython:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


@pytest.mark.parametrize("payload", [_RunsShell, _RunsPython])
@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_pickle_that_carries_code_is_refused_without_running_it(tmp_path, payload, writer):
    marker = tmp_path / "pwned"
    path = tmp_path / "hubert_base.pt"
    checkpoint = {"cfg": {"model": {"_name": "hubert"}}, "model": {}, "extra_state": payload(marker)}
    if writer == "torch.save":
        torch.save(checkpoint, path)
    else:
        with open(path, "wb") as handle:
            pickle.dump(checkpoint, handle, protocol=2)
    with pytest.raises(UnsafeCheckpointError, match=re.escape(str(path)) + ".*(system|exec)"):
        load_hubert(path)
    assert not marker.exists()


def test_torchscript_archive_is_refused(tmp_path):
    """torch.load would hand such a zip to torch.jit.load, past the restricted unpickler."""
    path = tmp_path / "scripted.pt"
    with zipfile.ZipFile(path, "w") as archive:
        for entry in ("scripted/data.pkl", "scripted/constants.pkl", "scripted/code/__torch__.py"):
            archive.writestr(entry, b"")
    with pytest.raises(UnsafeCheckpointError, match="TorchScript"):
        load_hubert(path)


def test_conv_layer_spec_is_parsed_not_evaluated():
    assert parse_conv_layers("[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2") == (
        [(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2)
    with pytest.raises(ValueError, match="unsupported"):
        parse_conv_layers("__import__('os').system('true')")
