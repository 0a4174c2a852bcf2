"""Translate a fairseq HuBERT checkpoint (cfg + state dict) into a transformers `HubertConfig` and key names.

The geometry is read from the checkpoint's own cfg (fairseq's `HubertConfig` fields, or the flat
`argparse.Namespace` of older checkpoints); a field fairseq would default is defaulted the same way.
"""

import ast
import re

from transformers import HubertConfig

from .checkpoints import CheckpointError
from .fairseq_checkpoint import plain_config

# fairseq activation names -> transformers ACT2FN names with the same formula.
_ACTIVATIONS = {"gelu": "gelu", "gelu_accurate": "gelu_new", "relu": "relu", "tanh": "tanh", "linear": "linear"}
_EXTRACTOR_NORMS = {"default": "group", "layer_norm": "layer"}
_REQUIRED_FIELDS = ("encoder_layers", "encoder_embed_dim", "encoder_ffn_embed_dim", "encoder_attention_heads",
                    "conv_feature_layers", "conv_pos", "conv_pos_groups", "final_dim")

# fairseq key -> transformers key; keys that match no rule are reported as unexpected.
_KEY_RULES = [(re.compile(pattern), replacement) for pattern, replacement in (
    (r"^feature_extractor\.conv_layers\.(\d+)\.0\.", r"feature_extractor.conv_layers.\1.conv."),
    (r"^feature_extractor\.conv_layers\.(\d+)\.2\.(1\.)?", r"feature_extractor.conv_layers.\1.layer_norm."),
    (r"^layer_norm\.", "feature_projection.layer_norm."),
    (r"^post_extract_proj\.", "feature_projection.projection."),
    (r"^encoder\.pos_conv\.0\.", "encoder.pos_conv_embed.conv."),
    (r"^encoder\.layer_norm\.", "encoder.layer_norm."),
    (r"^encoder\.layers\.(\d+)\.self_attn\.", r"encoder.layers.\1.attention."),
    (r"^encoder\.layers\.(\d+)\.self_attn_layer_norm\.", r"encoder.layers.\1.layer_norm."),
    (r"^encoder\.layers\.(\d+)\.fc1\.", r"encoder.layers.\1.feed_forward.intermediate_dense."),
    (r"^encoder\.layers\.(\d+)\.fc2\.", r"encoder.layers.\1.feed_forward.output_dense."),
    (r"^encoder\.layers\.(\d+)\.final_layer_norm\.", r"encoder.layers.\1.final_layer_norm."),
    (r"^final_proj\.", "final_proj."),
)]
# Pretraining-only tensors: the masked-frame embedding and the cluster-label embeddings.
_TRAINING_ONLY_KEYS = {"mask_emb", "label_embs_concat"}
_HUBERT_MARKERS = ("post_extract_proj.weight", "encoder.pos_conv.0.bias", "final_proj.weight")


def parse_conv_layers(spec):
    """Evaluate fairseq's `conv_feature_layers` string, e.g. "[(512,10,5)] + [(512,3,2)] * 4", without eval().

    Only list/tuple literals of ints, `+` and `*` are accepted; the result is [(dim, kernel, stride), ...].
    """
    def evaluate(node):
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [evaluate(item) for item in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            left, right = evaluate(node.left), evaluate(node.right)
            return left + right if isinstance(node.op, ast.Add) else left * right
        raise ValueError(f"unsupported element {ast.dump(node)}")

    try:
        layers = evaluate(ast.parse(spec, mode="eval").body)
        if not layers or not all(isinstance(layer, tuple) and len(layer) == 3 for layer in layers):
            raise ValueError("expected a non-empty list of (dim, kernel, stride)")
    except (SyntaxError, ValueError, TypeError) as err:
        raise ValueError(f"conv_feature_layers {spec!r}: {err}") from None
    return layers


def fairseq_sections(checkpoint, path):
    """Return (model cfg, task cfg) as plain dicts from `cfg` (fairseq >= 0.10) or the older flat `args`."""
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
        raise CheckpointError(path, "not a fairseq checkpoint (no 'model' state dict)")
    cfg = plain_config(checkpoint.get("cfg"))
    if isinstance(cfg, dict) and isinstance(cfg.get("model"), dict):
        return cfg["model"], cfg.get("task") or {}
    args = plain_config(checkpoint.get("args"))
    if isinstance(args, dict):
        return args, args
    raise CheckpointError(path, "fairseq checkpoint without 'cfg' or 'args'; its geometry is unknown")


def check_is_hubert(model_cfg, state, path):
    """Refuse wav2vec2, data2vec, RVC synthesizers and other checkpoints before building anything."""
    model_type = model_cfg.get("_name", model_cfg.get("arch"))
    missing = [key for key in _HUBERT_MARKERS if key not in state]
    if (model_type is not None and model_type != "hubert") or missing:
        raise CheckpointError(path, f"not a fairseq HuBERT/ContentVec checkpoint "
                              f"(model type {model_type!r}, missing {missing})")


def hubert_config_from_fairseq(model_cfg, task_cfg, path):
    """Build the transformers config for the checkpoint's geometry; returns (config, normalize_waveform)."""
    absent = [field for field in _REQUIRED_FIELDS if field not in model_cfg]
    if absent:
        raise CheckpointError(path, f"checkpoint cfg lacks {absent}")
    unsupported = {field: model_cfg[field] for field, plain in (
        ("layer_type", "transformer"), ("pos_enc_type", "abs"), ("conv_pos_batch_norm", False),
        ("untie_final_proj", False)) if model_cfg.get(field, plain) != plain}
    activation = model_cfg.get("activation_fn", "gelu")
    extractor_mode = model_cfg.get("extractor_mode", "default")
    if activation not in _ACTIVATIONS or extractor_mode not in _EXTRACTOR_NORMS:
        unsupported.update(activation_fn=activation, extractor_mode=extractor_mode)
    if task_cfg.get("sample_rate", 16000) != 16000:
        unsupported["sample_rate"] = task_cfg["sample_rate"]
    if unsupported:
        raise CheckpointError(path, f"unsupported HuBERT variant {unsupported}")
    try:
        conv_layers = parse_conv_layers(model_cfg["conv_feature_layers"])
    except ValueError as err:
        raise CheckpointError(path, f"{err}") from None
    hidden = model_cfg["encoder_embed_dim"]
    config = HubertConfig(
        hidden_size=hidden,
        num_hidden_layers=model_cfg["encoder_layers"],
        num_attention_heads=model_cfg["encoder_attention_heads"],
        intermediate_size=model_cfg["encoder_ffn_embed_dim"],
        hidden_act=_ACTIVATIONS[activation],
        conv_dim=[dim for dim, _, _ in conv_layers],
        conv_kernel=[kernel for _, kernel, _ in conv_layers],
        conv_stride=[stride for _, _, stride in conv_layers],
        conv_bias=bool(model_cfg.get("conv_bias", False)),
        feat_extract_norm=_EXTRACTOR_NORMS[extractor_mode],
        feat_extract_activation="gelu",
        feat_proj_layer_norm=True,
        do_stable_layer_norm=bool(model_cfg.get("layer_norm_first", False)),
        num_conv_pos_embeddings=model_cfg["conv_pos"],
        num_conv_pos_embedding_groups=model_cfg["conv_pos_groups"],
        classifier_proj_size=model_cfg["final_dim"] if model_cfg["final_dim"] > 0 else hidden,
        layer_norm_eps=1e-5,
        mask_time_prob=0.0,  # inference only: no masked-frame embedding is built or loaded
        mask_feature_prob=0.0,
    )
    return config, bool(task_cfg.get("normalize", False))


def transformers_state_from_fairseq(state):
    """Rename fairseq keys to transformers keys; returns (renamed state, keys no rule knows)."""
    renamed, unknown = {}, []
    for key, tensor in state.items():
        if key in _TRAINING_ONLY_KEYS:
            continue
        for pattern, replacement in _KEY_RULES:
            if pattern.match(key):
                renamed[pattern.sub(replacement, key, count=1)] = tensor
                break
        else:
            unknown.append(key)
    return renamed, unknown
