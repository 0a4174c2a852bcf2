"""LoRA overhead on a decoder of RVC v2 40k's size (upsample 10,10,2,2; 512 initial channels; resblock
kernels 3,7,11 with dilations 1,3,5; legacy weight norm), r=8 on every conv.

Prints forward-time ratios against the base model measured in the same process, interleaved run by run
so machine noise hits both sides alike, and the wall time of merge / unmerge over all layers.

    .venv/bin/python benchmarks/lora_overhead.py [--frames 200] [--repeats 7] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lora_core import LoRAConfig, inject_lora, merge_lora, unmerge_lora
from webui_lora.rvc.models.generator import Generator


def v2_40k_decoder(seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    return Generator(192, "1", [3, 7, 11], [[1, 3, 5]] * 3, [10, 10, 2, 2], 512, [16, 16, 4, 4],
                     gin_channels=256).eval()


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=200, help="latent frames (100 per second of audio)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    base, adapted = v2_40k_decoder(), v2_40k_decoder()
    wrapped = inject_lora(adapted, LoRAConfig(r=8, lora_alpha=16, target_modules="all", init_lora_weights=False))
    lora_params = sum(p.numel() for n, p in adapted.named_parameters() if "lora_" in n)
    z = torch.randn(1, 192, args.frames, generator=torch.Generator().manual_seed(0))
    g = torch.randn(1, 256, 1, generator=torch.Generator().manual_seed(1))

    def run(model):
        with torch.no_grad():
            return model(z, g)

    run(base), run(adapted)  # warm-up
    base_times, unmerged_times, merged_times, merge_times, unmerge_times = [], [], [], [], []
    for _ in range(args.repeats):
        base_times.append(seconds(lambda: run(base)))
        unmerged_times.append(seconds(lambda: run(adapted)))
        merge_times.append(seconds(lambda: merge_lora(adapted)))
        merged_times.append(seconds(lambda: run(adapted)))
        unmerge_times.append(seconds(lambda: unmerge_lora(adapted)))

    base_s = statistics.median(base_times)
    print(f"decoder: {sum(p.numel() for p in base.parameters()):,} params; LoRA r=8 on {len(wrapped)} layers: "
          f"{lora_params:,} params; input {args.frames} frames ({args.frames / 100:.1f} s audio); "
          f"{args.threads} threads; median of {args.repeats}")
    print(f"base forward            {base_s * 1000:8.1f} ms   1.000x")
    for label, times in (("unmerged LoRA forward", unmerged_times), ("merged LoRA forward", merged_times)):
        median = statistics.median(times)
        print(f"{label:<23} {median * 1000:8.1f} ms   {median / base_s:.3f}x")
    print(f"merge all layers        {statistics.median(merge_times) * 1000:8.1f} ms")
    print(f"unmerge all layers      {statistics.median(unmerge_times) * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
