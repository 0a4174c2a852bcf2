"""Asset discovery: flags, then RVC_ROOT, then ./assets; both RVC HuBERT layouts; one folder per kind for
a host; the status that names what is missing and the command that gets it."""

import pytest

from webui_lora.assets import DEFAULT_ASSETS, Assets
from webui_lora.errors import UserError


def touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_search_order_is_flags_then_rvc_root_then_project_assets(tmp_path, monkeypatch):
    flag, rvc = tmp_path / "mine", tmp_path / "rvc"
    monkeypatch.setenv("RVC_ROOT", str(rvc))
    assert Assets.discover(flag).roots == [flag, rvc / "assets", DEFAULT_ASSETS]
    assert Assets.discover().roots == [rvc / "assets", DEFAULT_ASSETS]
    assert Assets.discover(rvc_root=tmp_path / "other").rvc_root == tmp_path / "other"  # --rvc-root beats the env
    monkeypatch.delenv("RVC_ROOT")
    assert Assets.discover().roots == [DEFAULT_ASSETS]
    assert Assets(flag).roots == [flag]  # built by hand (tests, hosts): exactly what is given

    touch(flag / "rmvpe" / "rmvpe.pt")
    touch(rvc / "assets" / "rmvpe" / "rmvpe.pt")
    assert Assets.discover(flag, rvc).rmvpe() == flag / "rmvpe" / "rmvpe.pt"
    assert Assets.discover(tmp_path / "empty", rvc).rmvpe() == rvc / "assets" / "rmvpe" / "rmvpe.pt"


@pytest.mark.parametrize("layout", ["hubert/hubert_base.pt", "hubert_base/config.json"])
def test_both_rvc_hubert_layouts_are_found(tmp_path, layout):
    touch(tmp_path / layout)
    found = Assets(tmp_path).hubert()
    assert found == (tmp_path / layout if layout.endswith(".pt") else tmp_path / "hubert_base")


def test_a_folder_per_kind_comes_first_and_takes_the_outputs(tmp_path):
    host = tmp_path / "rvc"
    touch(host / "assets" / "weights" / "a.pth")
    touch(host / "my_weights" / "b.pth")
    touch(host / "logs" / "voice" / "added_IVF1_voice.index")
    touch(host / "logs" / "voice" / "trained_IVF1_voice.index")
    touch(host / "assets" / "hubert_base" / "config.json")
    touch(host / "predictors" / "rmvpe.pt")
    assets = Assets.discover(host / "assets", host, weights=host / "my_weights", rmvpe=host / "predictors")
    assert [p.name for p in assets.models()] == ["b.pth", "a.pth"]
    assert [p.name for p in assets.indices()] == ["added_IVF1_voice.index"]  # RVC skips trained_*
    assert assets.rmvpe() == host / "predictors" / "rmvpe.pt" and assets.pitch_assets_dir() == host / "predictors"
    assert assets.output_dir("weights") == host / "my_weights" and assets.output_dir("adapters") == host / "assets" / "adapters"
    assert assets.experiments_dir == host / "logs"
    with pytest.raises(UserError, match="unknown asset kind; choose from weights, indices"):
        Assets(tmp_path, folders={"weight": tmp_path})


def test_status_says_what_is_found_and_the_command_for_what_is_not(tmp_path):
    touch(tmp_path / "weights" / "voice.pth")
    touch(tmp_path / "pretrained_v2" / "f0G40k.pth")
    assets = Assets(tmp_path)
    text = assets.status_text()
    assert f"- RVC models: found, {tmp_path / 'weights'}" in text
    assert "- HuBERT: missing; python -m webui_lora download-assets --only hubert" in text
    assert "- RMVPE (pitch): missing; python -m webui_lora download-assets --only rmvpe" in text
    assert f"- pretrained v2 (training): found, {tmp_path / 'pretrained_v2' / 'f0G40k.pth'}" in text
    assert assets.missing_help().splitlines() == [
        "- no HuBERT: python -m webui_lora download-assets --only hubert",
        "- no RMVPE (pitch): python -m webui_lora download-assets --only rmvpe"]
