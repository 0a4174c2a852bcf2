"""Extraction on the output of a real (tiny) full fine-tuning run: the adapter keeps the reported energy
and converts closer to the tuned model than the base does."""

from stacks import synth_output, unmerged_stack
from webui_lora.merge import extract
from webui_lora.rvc.checkpoints import load_model
from webui_lora.train.setup import AdapterSpec
from webui_lora.train.trainer import Trainer, TrainOptions


def test_extraction_of_a_real_training_run(prepared, tmp_path):
    model, exp = prepared
    options = TrainOptions(mode="full", steps=3, lr=1e-3, batch_size=2, d_width=16, holdout=1, adapter=AdapterSpec())
    tuned = Trainer(exp, str(model), tmp_path / "tuned.pth", options).run().output
    result = extract([model], tuned, tmp_path / "extracted.safetensors", energy=0.9)
    assert 0.9 <= min(result.energy.values()) <= 1.0
    assert "not carried by an adapter" in result.report()  # full fine-tuning moved the biases too
    tuned_out = synth_output(load_model(tuned).synthesizer, "v2_f0_40k")
    base_out = synth_output(load_model(model).synthesizer, "v2_f0_40k")
    adapted_out = synth_output(unmerged_stack(model, [(result.output, 1.0)]), "v2_f0_40k")
    assert (adapted_out - tuned_out).norm() < 0.5 * (base_out - tuned_out).norm()
