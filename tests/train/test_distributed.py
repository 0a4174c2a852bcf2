"""Data-parallel training in 2 CPU processes over gloo: the ranks end with identical weights, and when
they see the same samples (every item's random draws are seeded per item) 2 processes match 1 process
with twice the batch."""

import socket
import subprocess
import sys

import torch
import torch.multiprocessing as mp

from ddp_worker import run_rank


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def equal_length_experiment(folder, hubert):
    """Two 9 s recordings prepared, the filelist cut to the full 3.7 s pieces: every item has the same
    length, as the KL term is normalised per process by its frame count."""
    import numpy as np
    import soundfile
    from scipy.io import wavfile

    from speech import ONE_VOICE, flite_sentence
    from webui_lora.train.prepare import PrepareOptions, Target, prepare

    recordings = folder / "recordings"
    recordings.mkdir(parents=True)
    for half in range(2):
        sentences = [flite_sentence(text, "slt", 16000) for text in ONE_VOICE[half * 4:half * 4 + 4]]
        soundfile.write(recordings / f"take{half}.wav", np.concatenate(sentences), 16000)
    experiment = folder / "exp"
    prepare([recordings], experiment, Target("v2", 40000, True), PrepareOptions(f0_method="pm", index=False),
            hubert_path=hubert)
    lines = (experiment / "filelist.txt").read_text().split("\n")
    full = [line for line in lines if "/mute/" not in line and len(wavfile.read(line.split("|")[0])[1]) == 148000]
    assert len(full) >= 4
    (experiment / "filelist.txt").write_text("\n".join(full[:4]))
    return experiment


def test_two_gloo_processes_match_one_process_with_twice_the_batch(prepared, tmp_path, hubert):
    model, _ = prepared
    experiment = equal_length_experiment(tmp_path / "data", hubert)
    (tmp_path / "ddp").mkdir()
    (tmp_path / "single").mkdir()
    mp.start_processes(run_rank, args=(2, free_port(), str(experiment), str(model), str(tmp_path / "ddp"), 2, 1),
                       nprocs=2, start_method="spawn")
    run_rank(0, 1, free_port(), str(experiment), str(model), str(tmp_path / "single"), 2, 2)
    rank0, rank1 = (torch.load(tmp_path / "ddp" / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    single = torch.load(tmp_path / "single" / "rank0.pt", weights_only=True)
    assert rank0.keys() == rank1.keys() == single.keys()
    moved = 0
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
        assert torch.allclose(rank0[name], single[name], atol=2e-5, rtol=1e-4), name
        moved += "lora_B" in name and bool(rank0[name].abs().sum() > 0)
    assert moved > 0  # the adapters did train
    assert (tmp_path / "ddp" / "adapter.safetensors").is_file()


def test_torchrun_runs_the_train_command(prepared, tmp_path, hubert):
    model, exp = prepared
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
               str(free_port()), "-m", "webui_lora", "train", "--base", str(model), "--dataset", str(exp), "--out",
               str(tmp_path / "a.safetensors"), "--steps", "1", "--batch-size", "1", "--d-width", "16",
               "--device", "cpu", "--hubert", str(hubert), "--preview-every", "0", "--holdout", "0", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env={"OMP_NUM_THREADS": "1",
                                                                                    **__import__("os").environ})
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "a.safetensors").is_file() and done.stdout.count('"steps": 1') == 2  # both ranks report
