"""The shared layer under the CLI and the tabs: names, index pairing, settings, user-facing messages."""

from pathlib import Path

import pytest

from lora_core import AdapterFileError
from webui_lora.assets import Assets
from webui_lora.errors import UserError, user_message
from webui_lora.workspace import Workspace, short_names


@pytest.fixture
def workspace(tmp_path):
    for relative in ("weights/voice.pth", "weights/other.pth", "adapters/breathy.safetensors",
                     "adapters/breathy.index", "adapters/bright.safetensors",
                     "indices/added_IVF5_Flat_nprobe_1_voice_v2.index", "indices/trained_IVF5_voice_v2.index"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"x")
    return Workspace(Assets(tmp_path), device="cpu")


def test_names_resolve_as_pickers_show_them_or_by_path_or_stem(workspace, tmp_path):
    assert workspace.resolve("voice.pth", "model") == tmp_path / "weights/voice.pth"
    assert workspace.resolve("voice", "model") == tmp_path / "weights/voice.pth"
    assert workspace.resolve(str(tmp_path / "weights/other.pth"), "model") == tmp_path / "weights/other.pth"
    assert list(workspace.choices("index")) == ["added_IVF5_Flat_nprobe_1_voice_v2.index", "breathy.index"]
    with pytest.raises(UserError, match=r"^nope: no such model file, and no model of that name in .*"
                                        r"\(there: other.pth, voice.pth\)"):
        workspace.resolve("nope", "model")
    with pytest.raises(UserError, match="no adapter chosen"):
        workspace.resolve("(none)", "adapter")


def test_adapter_specs_carry_strengths(workspace, tmp_path):
    assert workspace.parse_adapter("breathy:0.5") == (tmp_path / "adapters/breathy.safetensors", 0.5)
    assert workspace.parse_adapter("bright.safetensors") == (tmp_path / "adapters/bright.safetensors", 1.0)
    assert workspace.parse_adapter("bright", -0.25) == (tmp_path / "adapters/bright.safetensors", -0.25)


def test_index_pairing_prefers_the_adapter_s_own_index(workspace, tmp_path):
    model = tmp_path / "weights/voice.pth"
    rvc_pick = tmp_path / "indices/added_IVF5_Flat_nprobe_1_voice_v2.index"
    assert workspace.index_for(model) == rvc_pick
    assert workspace.index_for(tmp_path / "weights/other.pth") is None
    breathy, bright = (tmp_path / "adapters/breathy.safetensors", 1.0), (tmp_path / "adapters/bright.safetensors", 1.0)
    assert workspace.index_for(model, [breathy]) == tmp_path / "adapters/breathy.index"
    assert workspace.index_for(model, [bright, breathy]) == tmp_path / "adapters/breathy.index"
    assert workspace.index_for(model, [(breathy[0], 0.0)]) == rvc_pick  # a switched-off adapter pairs nothing
    assert workspace.resolve_index("auto", model) == rvc_pick
    assert workspace.resolve_index("none", model) is None and workspace.resolve_index("(none)", model) is None


def test_settings_from_user_values_are_coerced_and_checked(workspace):
    settings = workspace.conversion_settings(transpose="-3", filter_radius=3.0, index_rate=None, f0_method="pm")
    assert (settings.transpose, settings.filter_radius, settings.index_rate, settings.f0_method) == (-3.0, 3, 0.75, "pm")
    assert isinstance(settings.filter_radius, int)
    for values, message in ((dict(protect=0.7), "protect 0.7: out of range; use 0.0 to 0.5"),
                            (dict(filter_radius=2.5), "filter_radius 2.5: expected a whole number"),
                            (dict(transpose="high"), "transpose 'high': expected a number"),
                            (dict(f0_method="yin"), "f0_method 'yin': expected one of rmvpe"),
                            (dict(volume=1), "volume: not a conversion setting")):
        with pytest.raises(UserError, match=message):
            workspace.conversion_settings(**values)


def test_one_lock_and_one_converter_per_workspace(workspace):
    assert workspace.converter is workspace.converter
    assert workspace.lock.acquire(blocking=False)
    assert not workspace.lock.acquire(blocking=False)
    workspace.lock.release()


def test_user_messages_are_one_line_and_bugs_are_not_user_errors(tmp_path):
    assert user_message(UserError("a.wav", "too short;\nrecord more")) == "a.wav: too short; record more"
    assert user_message(AdapterFileError("x.safetensors: damaged")) == "x.safetensors: damaged"
    try:
        open(tmp_path / "nope.txt")
    except OSError as err:
        assert user_message(err) == f"{tmp_path / 'nope.txt'}: No such file or directory"
    assert user_message(KeyError("bug")) is None


def test_short_names_grow_only_where_names_collide():
    paths = [Path("/ours/weights/voice.pth"), Path("/rvc/weights/voice.pth"), Path("/ours/weights/x.pth")]
    assert list(short_names(paths)) == ["ours/weights/voice.pth", "rvc/weights/voice.pth", "x.pth"]
