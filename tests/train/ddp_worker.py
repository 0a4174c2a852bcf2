"""One rank of the data-parallel test (imported by spawned processes): train, then save this rank's
adapter factors where the test can compare them."""

import os

import torch


def run_rank(rank, world, port, experiment, model, out_dir, steps, batch_size):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from webui_lora.train.setup import AdapterSpec
    from webui_lora.train.trainer import Trainer, TrainOptions

    options = TrainOptions(steps=steps, batch_size=batch_size, d_width=16, holdout=0, save_every=1000,
                           adapter=AdapterSpec(rank=2), device="cpu")
    trainer = Trainer(experiment, model, f"{out_dir}/adapter.safetensors", options)
    trainer.run()
    factors = {name: p.detach().clone() for name, p in trainer.net_g.named_parameters() if p.requires_grad}
    torch.save(factors, f"{out_dir}/rank{rank}.pt")
    if world > 1:
        torch.distributed.destroy_process_group()
