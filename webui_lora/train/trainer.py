"""Train a LoRA adapter (or, in full mode, every weight) on a prepared experiment with RVC's whole
objective: mel L1 x45 on the training window, KL x1, feature matching x2 and LSGAN against the
multi-period discriminator; AdamW (0.8, 0.99, eps 1e-9, weight decay 0.01) for both networks,
ExponentialLR 0.999875 per epoch, RVC's windows and bucket sampler. Mixed precision on CUDA (bf16 where
the GPU has it, else fp16 with a GradScaler), fp32 on the CPU.

Checkpoints (``<out>.training/checkpoint.pt``) are atomic and hold all state, so ``resume`` continues
exactly: every random draw of the training pass comes from per-item generators seeded by (seed,
epoch, item), and the sampler can start part-way into an epoch. Under ``torchrun`` the same code runs
data-parallel (NCCL on CUDA, gloo on the CPU), each rank drawing its share of every epoch's batches
and only rank 0 writing files.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from lora_core import adapter_from_model, write_adapter

from ..errors import UserError
from ..rvc.configs import TRAIN, layout
from ..rvc.models.commons import seeded_items, slice_segments
from ..rvc.pitch import CLASSIC, CONVENTIONS
from .data import BucketSampler, TrainingSet, collate, item_seeds, read_filelist
from .experiment import Experiment, read_wav
from .intake import DatasetError
from .losses import MelScale, discriminator_loss, feature_matching_loss, generator_loss, kl_loss
from .setup import (ADAPTER, D_MODES, MODES, AdapterSpec, adapter_bytes, add_adapter, full_mode,
                    load_discriminator_for, load_generator)
from .state import load_checkpoint, save_checkpoint

LORA_LR = 1e-3  # adapters move further per step than full weights; see benchmarks/README.md
LOSSES = ("mel", "kl", "fm", "gen", "disc")
HELDOUT_FRAMES = 200  # each held-out piece is measured on its first 2 s


@dataclass
class TrainOptions:
    mode: str = "lora"
    adapter: AdapterSpec = field(default_factory=AdapterSpec)
    d_mode: str = "full"
    pretrained_g: Optional[str] = None
    pretrained_d: Optional[str] = None
    d_width: int = 1  # fresh discriminator's channel divisor (RVC's: 1)
    epochs: Optional[int] = None
    steps: Optional[int] = None
    batch_size: int = 4
    lr: Optional[float] = None  # default: LORA_LR for adapters, RVC's 1e-4 in full mode
    seed: int = TRAIN["seed"]
    save_every: int = 100  # steps
    preview_every: int = 0  # epochs; 0: only at the end
    holdout: int = 1  # pieces kept out of training to measure and preview on
    f0_convention: str = CLASSIC
    device: Optional[str] = None
    resume: bool = False

    def check(self) -> None:
        if self.mode not in MODES:
            raise UserError(f"--mode {self.mode}", f"expected one of {', '.join(MODES)}")
        if self.d_mode not in D_MODES:
            raise UserError(f"--d-mode {self.d_mode}", f"expected one of {', '.join(D_MODES)}")
        if self.f0_convention not in CONVENTIONS:
            raise UserError(f"--f0-convention {self.f0_convention}", f"expected one of {', '.join(CONVENTIONS)}")
        for name in ("batch_size", "save_every", "d_width"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} {getattr(self, name)}", "must be at least 1")
        if self.epochs is not None and self.steps is not None:
            raise UserError("--epochs and --steps", "give one of them")

    def fixed(self) -> dict:
        """The options a resumed run must share with the run it continues."""
        spec = asdict(self.adapter)
        return {"mode": self.mode, **{k: spec[k] for k in ("preset", "targets", "rank", "alpha", "rslora",
                                                            "rank_pattern", "train_speaker")},
                "d_mode": self.d_mode, "batch_size": self.batch_size, "seed": self.seed,
                "f0_convention": self.f0_convention, "d_width": self.d_width}


@dataclass
class Progress:
    step: int
    total_steps: int
    epoch: int
    losses: dict
    seconds: float  # since this run (or resumption) started
    message: str = ""
    heldout_mel: Optional[float] = None  # set at the end of an epoch
    preview: Optional[tuple] = None  # (epoch, base wav, adapted wav) when one was just written


@dataclass
class TrainResult:
    output: Path
    index: Optional[Path]
    steps: int
    epochs: int
    losses: dict
    history: list
    heldout_mel: list  # [(step, mel L1 on held-out pieces)]
    previews: list  # [(epoch, base preview, adapted preview)]
    trainable: int
    stopped: bool = False


class Trainer:
    """One run: ``Trainer(...).run()``. ``report(Progress)`` is called after every step; ``should_stop()``
    is polled between steps (a stop saves a checkpoint and ends the run cleanly)."""

    def __init__(self, experiment_dir, base: str, output, options: TrainOptions = TrainOptions(), *,
                 report: Optional[Callable] = None, should_stop: Optional[Callable] = None,
                 previews: Optional[Callable] = None):
        """``previews(clip16k, f0_method)`` makes the previewer for the held-out clip (see preview.py)."""
        options.check()
        self.options, self.report, self.should_stop = options, report, should_stop or (lambda: False)
        self.make_previewer, self.previewer = previews, None
        self.output = Path(output)
        self.base = base
        self.experiment_dir = Path(experiment_dir)
        self.rank, self.world = _distributed_rank()
        self.device = _device(options.device, self.rank)
        self.state_dir = self.output.with_name(self.output.name + ".training")
        self.checkpoint = self.state_dir / "checkpoint.pt"

    # ----- set-up -------------------------------------------------------------------------------
    def _load(self):
        options = self.options
        torch.manual_seed(options.seed)  # fresh weights (enc_q, LoRA A, the discriminator) the same every run
        self.gen = load_generator(self.base, options.pretrained_g)
        self.experiment, self.prepared = _open_experiment(self.experiment_dir, self.gen)
        self.layout = layout(self.gen.version, self.gen.sr)
        self.mel = MelScale(self.layout)
        items = read_filelist(self.experiment.filelist, self.gen.f0)
        pieces = [i for i in items if "/mute/" not in i.wav.as_posix()]
        held = sorted(pieces, key=lambda i: i.wav.name)[-options.holdout:] if 0 < options.holdout < len(pieces) else []
        self.heldout = TrainingSet(held, self.layout, self.gen.f0, options.f0_convention)
        self.dataset = TrainingSet([i for i in items if i not in held], self.layout, self.gen.f0,
                                   options.f0_convention)
        self.sampler = BucketSampler(self.dataset.lengths, options.batch_size, self.world, self.rank)
        if self.make_previewer is not None and held and self.rank == 0:
            clip = read_wav(self.experiment.piece_files(held[0].wav.stem)["wav16k"]).astype("float32")
            self.previewer = self.make_previewer(clip, self.prepared.get("f0_method"))
        if len(self.sampler) == 0:
            raise DatasetError(self.experiment.root, "no piece is long enough for RVC's sampler; add recordings")
        net = self.gen.net
        if options.mode == "lora":
            self.trainable = add_adapter(net, options.adapter, items[0].speaker)
        else:
            self.trainable = full_mode(net)
        self.net_g = net.to(self.device).train()
        self.net_d = None
        if options.d_mode != "off":
            self.net_d = load_discriminator_for(self.gen.version, options.pretrained_d) if options.pretrained_d \
                else _fresh_discriminator(self.gen.version, options.d_width)
            self._configure_discriminator()
            self.net_d.to(self.device).train()
        lr = options.lr or (LORA_LR if options.mode == "lora" else TRAIN["learning_rate"])
        adapter_params = [p for n, p in net.named_parameters() if p.requires_grad and not n.startswith("enc_q.")]
        posterior = [p for p in net.enc_q.parameters()]
        groups = [{"params": adapter_params, "lr": lr}]
        if options.mode == "lora":
            groups.append({"params": posterior, "lr": TRAIN["learning_rate"]})
        else:
            groups[0]["params"] = adapter_params + posterior
        self.optim_g = _adamw(groups)
        self.sched_g = torch.optim.lr_scheduler.ExponentialLR(self.optim_g, TRAIN["lr_decay"])
        trainable_d = [p for p in self.net_d.parameters() if p.requires_grad] if self.net_d is not None else []
        self.optim_d = _adamw([{"params": trainable_d, "lr": TRAIN["learning_rate"]}]) if trainable_d else None
        self.sched_d = torch.optim.lr_scheduler.ExponentialLR(self.optim_d, TRAIN["lr_decay"]) \
            if self.optim_d else None
        self.amp_dtype = _amp_dtype(self.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model_g = DistributedDataParallel(self.net_g, device_ids=ids)
            self.model_d = DistributedDataParallel(self.net_d, device_ids=ids) \
                if self.net_d is not None and trainable_d else self.net_d
        else:
            self.model_g, self.model_d = self.net_g, self.net_d

    def _configure_discriminator(self):
        mode = self.options.d_mode
        if mode == "lora":
            from lora_core import LoRAConfig, inject_lora, mark_only_lora_trainable

            inject_lora(self.net_d, LoRAConfig(r=self.options.adapter.rank, lora_alpha=self.options.adapter.rank,
                                               target_modules="all"), ADAPTER)
            mark_only_lora_trainable(self.net_d)
        elif mode == "frozen":
            self.net_d.requires_grad_(False)

    @property
    def total_steps(self) -> int:
        options = self.options
        if options.steps is not None:
            return options.steps
        return (options.epochs if options.epochs is not None else 20) * len(self.sampler)

    # ----- the loop -----------------------------------------------------------------------------
    def run(self) -> TrainResult:
        self._load()
        step, epoch, skip, history, heldout, previews = 0, 1, 0, [], [], []
        if self.options.resume and self.checkpoint.is_file():
            step, epoch, skip, history, heldout, previews = self._restore()
        elif self.options.resume:
            self._tell(step, epoch, {}, "no checkpoint to resume from; starting a new run")
        self._tell(step, epoch, {}, self._plan())
        if not heldout and self.heldout.items:
            heldout.append((step, self.heldout_mel()))
            self._tell(step, epoch, {}, f"before training: held-out mel L1 {heldout[-1][1]:.3f}",
                       heldout_mel=heldout[-1][1])
        started, stopped, losses = time.perf_counter(), False, (history[-1][1] if history else {})
        per_epoch, total = len(self.sampler), self.total_steps
        while step < total and not stopped:
            self.sampler.set_epoch(epoch, skip)
            for position, indices in enumerate(self.sampler, skip):
                losses = self.train_step(collate([self.dataset[i] for i in indices]), epoch)
                step += 1
                history.append((step, losses))
                self._tell(step, epoch, losses, "", started)
                last_of_epoch = position + 1 == per_epoch
                if last_of_epoch:
                    self._end_epoch(epoch, heldout, previews, step, losses, started)
                resume_at = (epoch + 1, 0) if last_of_epoch else (epoch, position + 1)
                stop, finished = self.should_stop(), step >= total
                if stop or finished or step % self.options.save_every == 0:
                    self._save(step, *resume_at, history, heldout, previews)
                if stop or finished:
                    stopped = stop and not finished
                    epoch, skip = resume_at
                    break
            else:
                epoch, skip = epoch + 1, 0
        output, index = (None, None) if stopped else self._finish(step, epoch, losses, previews)
        return TrainResult(output or self.output, index, step, epoch - 1, losses, history, heldout, previews,
                           self.trainable, stopped)

    def _plan(self) -> str:
        """What is about to be trained, and how big the result will be."""
        gen = self.gen
        if self.options.mode == "lora":
            size = f"an adapter of about {adapter_bytes(self.trainable) / 1e6:.2f} MB"
        else:
            size = f"an RVC model of about {2 * self.trainable / 1e6:.1f} MB"
        return (f"{gen.describe()} base {Path(gen.base).name}: training {self.trainable:,} parameters "
                f"({self.options.mode}; enc_q {gen.enc_q_from}, discriminator {self.options.d_mode}), "
                f"{len(self.dataset)} pieces, {len(self.sampler)} steps per epoch, {self.total_steps} steps; {size}")

    def train_step(self, batch: dict, epoch: int) -> dict:
        """One D step and one G step, as RVC's train_and_evaluate does them."""
        device, options = self.device, self.options
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        segment = self.layout.segment_size
        with torch.autocast(device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None):
            with seeded_items(item_seeds(options.seed, epoch, batch["index"].tolist())):
                if self.gen.f0:
                    out = self.model_g(batch["phone"], batch["lengths"], batch["pitch"], batch["pitchf"],
                                       batch["spec"], batch["lengths"], batch["speaker"])
                else:
                    out = self.model_g(batch["phone"], batch["lengths"], batch["spec"], batch["lengths"],
                                       batch["speaker"])
            y_hat, ids_slice, _, z_mask, (_, z_p, m_p, logs_p, _, logs_q) = out
            y_mel = slice_segments(self.mel.mel_of_linear(batch["spec"].float()), ids_slice,
                                   self.layout.segment_frames)
            y_hat_mel = self.mel.mel(y_hat.float().squeeze(1))
            wave = slice_segments(batch["wave"], ids_slice * self.layout.hop_length, segment)
        losses = {}
        if self.net_d is not None:
            with torch.autocast(device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None):
                real, fake, _, _ = self.model_d(wave, y_hat.detach())
            loss_disc = discriminator_loss(real, fake)
            if self.optim_d is not None:
                self.optim_d.zero_grad(set_to_none=True)
                self.scaler.scale(loss_disc).backward()
                self.scaler.step(self.optim_d)
            losses["disc"] = float(loss_disc.detach())
            with torch.autocast(device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None):
                _, fake, real_maps, fake_maps = self.model_d(wave, y_hat)
            loss_gen, loss_fm = generator_loss(fake), feature_matching_loss(real_maps, fake_maps)
        else:
            loss_gen = loss_fm = torch.zeros((), device=device)
        loss_mel = F.l1_loss(y_mel, y_hat_mel) * TRAIN["c_mel"]
        loss_kl = kl_loss(z_p, logs_q, m_p, logs_p, z_mask) * TRAIN["c_kl"]
        total = loss_gen + loss_fm + loss_mel + loss_kl
        if not torch.isfinite(total):
            raise UserError("training", f"the loss became {float(total)} (mel {float(loss_mel):.3g}, kl "
                                        f"{float(loss_kl):.3g}); lower --lr and --resume from the last checkpoint")
        self.optim_g.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self.scaler.step(self.optim_g)
        self.scaler.update()
        losses.update({name: float(value.detach()) for name, value in
                       (("mel", loss_mel), ("kl", loss_kl), ("fm", loss_fm), ("gen", loss_gen))})
        return losses

    def _end_epoch(self, epoch, heldout, previews, step, losses, started):
        self.sched_g.step()
        if self.sched_d is not None:
            self.sched_d.step()
        measured = preview = None
        if self.heldout.items:
            measured = self.heldout_mel()
            heldout.append((step, measured))
        every = self.options.preview_every
        if self.previewer is not None and every and epoch % every == 0 and self.rank == 0:
            preview = (epoch, *self.previewer(self._adapter(), epoch))
            previews.append(preview)
        if measured is not None or preview is not None:
            note = f"epoch {epoch}" + (f": held-out mel L1 {measured:.3f}" if measured is not None else "")
            self._tell(step, epoch, losses, note, started, heldout_mel=measured, preview=preview)

    @torch.no_grad()
    def heldout_mel(self) -> float:
        """Mean mel L1 of the held-out pieces converted from their own features and pitch (the inference
        path, prior noise seeded) against their real mel: how well the model speaks unseen audio."""
        net = self.net_g
        net.eval()
        errors = []
        generator_state = torch.get_rng_state()
        try:
            for i in range(len(self.heldout)):
                torch.manual_seed(self.options.seed + i)
                sample = collate([_first_frames(self.heldout[i], HELDOUT_FRAMES, self.layout.hop_length)])
                batch = {k: v.to(self.device) for k, v in sample.items()}
                args = (batch["phone"], batch["lengths"]) + \
                    ((batch["pitch"], batch["pitchf"]) if self.gen.f0 else ()) + (batch["speaker"],)
                audio = net.infer(*args)[0][:, 0]
                real = self.mel.mel_of_linear(batch["spec"].float())
                fake = self.mel.mel(audio.float())
                frames = min(real.shape[-1], fake.shape[-1])
                errors.append(float(F.l1_loss(fake[..., :frames], real[..., :frames])))
        finally:
            torch.set_rng_state(generator_state)
            net.train()
        return sum(errors) / len(errors)

    # ----- checkpoints and the result -----------------------------------------------------------
    def _trainable_state(self) -> dict:
        return {n: p.detach().cpu() for n, p in self.net_g.named_parameters() if p.requires_grad}

    def _save(self, step, epoch, skip, history, heldout, previews):
        if self.rank != 0:
            return
        payload = {"step": step, "epoch": epoch, "skip": skip, "options": self.options.fixed() | {"base": self.base},
                   "generator": self._trainable_state(), "optim_g": self.optim_g.state_dict(),
                   "sched_g": self.sched_g.state_dict(), "scaler": self.scaler.state_dict(),
                   "history": [[s, l] for s, l in history], "heldout": [list(h) for h in heldout],
                   "previews": [[e, str(a), str(b)] for e, a, b in previews]}
        if self.net_d is not None:
            payload["discriminator"] = {k: v.cpu() for k, v in self.net_d.state_dict().items()}
        if self.optim_d is not None:
            payload.update(optim_d=self.optim_d.state_dict(), sched_d=self.sched_d.state_dict())
        save_checkpoint(self.checkpoint, payload)

    def _restore(self):
        state = load_checkpoint(self.checkpoint, self.options.fixed() | {"base": self.base})
        trainable = dict(self.net_g.named_parameters())
        with torch.no_grad():
            for name, value in state["generator"].items():
                if name not in trainable or trainable[name].shape != value.shape:
                    raise UserError(self.checkpoint, f"holds {name} that this run does not train; start a new run")
                trainable[name].copy_(value)
        self.optim_g.load_state_dict(state["optim_g"])
        self.sched_g.load_state_dict(state["sched_g"])
        self.scaler.load_state_dict(state["scaler"])
        if self.net_d is not None:
            self.net_d.load_state_dict(state["discriminator"])
        if self.optim_d is not None:
            self.optim_d.load_state_dict(state["optim_d"])
            self.sched_d.load_state_dict(state["sched_d"])
        from .state import set_rng_state

        set_rng_state(state["rng"])
        history = [(s, dict(l)) for s, l in state["history"]]
        previews = [(e, Path(a), Path(b)) for e, a, b in state["previews"]]
        return state["step"], state["epoch"], state["skip"], history, [tuple(h) for h in state["heldout"]], previews

    def _adapter(self):
        return adapter_from_model(self.net_g, ADAPTER, config=self.options.adapter.lora_config().to_dict(),
                                  extra=self._metadata(), base_fingerprint=self.gen.fingerprint)

    def _metadata(self, **more) -> dict:
        gen, prepared = self.gen, self.prepared
        return {"version": gen.version, "sr": gen.sr, "f0": gen.f0, "f0_method": prepared.get("f0_method"),
                "f0_convention": self.options.f0_convention, "embedder": prepared.get("embedder", "hubert_base"),
                "base": Path(gen.base).name, "preset": self.options.adapter.preset if not self.options.adapter.targets
                else None, "targets": self.options.adapter.lora_config().target_modules,
                "rank": self.options.adapter.rank, "alpha": self.options.adapter.alpha or self.options.adapter.rank,
                "dataset_seconds": prepared.get("dataset", {}).get("seconds"),
                "dataset_digest": prepared.get("dataset", {}).get("digest"), **more}

    def _finish(self, step, epoch, losses, previews):
        if self.rank != 0:
            return None, None
        from ..rvc.checkpoints import save_small_model

        if self.options.mode == "lora":
            adapter = self._adapter()
            adapter.extra.update(steps=step, epochs=epoch - 1, final_losses=losses)
            write_adapter(adapter, self.output)
        else:
            save_small_model(self.output, self.net_g, self.gen.config[:1] + [32] + self.gen.config[2:],
                             version=self.gen.version, f0=self.gen.f0, info=f"{epoch - 1}epoch")
        index = _index_beside(self.experiment, self.output)
        if self.previewer is not None and (not previews or previews[-1][0] != epoch - 1):
            previews.append((epoch - 1, *self.previewer(self._adapter(), epoch - 1)))
            self._tell(step, epoch - 1, losses, f"preview of the final adapter (epoch {epoch - 1})",
                       preview=previews[-1])
        return self.output, index

    def _tell(self, step, epoch, losses, message="", started=None, **extra):
        if self.report is not None and self.rank == 0:
            self.report(Progress(step, self.total_steps, epoch, losses,
                                 time.perf_counter() - started if started else 0.0, message, **extra))


def _first_frames(sample: dict, frames: int, hop: int) -> dict:
    """A loaded piece cut to its first ``frames`` frames (and ``frames * hop`` samples)."""
    cropped = {**sample, "spec": sample["spec"][:, :frames], "wave": sample["wave"][:, :frames * hop]}
    for key in ("phone", "pitch", "pitchf"):
        if key in sample:
            cropped[key] = sample[key][:frames]
    return cropped


def target_of_base(base: str):
    """What a dataset must be prepared for to train ``base`` (a model file or ``new:v2-40k-f0``)."""
    from .prepare import Target
    from .setup import NEW_BASE, refuse_non_models

    fresh = NEW_BASE.fullmatch(str(base))
    if fresh:
        from ..rvc.models import parse_sample_rate

        return Target(fresh.group(1), parse_sample_rate(fresh.group(2)), fresh.group(3) == "f0")
    refuse_non_models(Path(base))
    return Target.of_model(base)


def _adamw(groups):
    return torch.optim.AdamW(groups, betas=tuple(TRAIN["betas"]), eps=TRAIN["eps"], weight_decay=0.01)


def _fresh_discriminator(version: str, width: int):
    from ..rvc.models import build_discriminator

    return build_discriminator(version, width)


def _open_experiment(folder: Path, gen):
    """The prepared experiment, which must have been prepared for this base's version, rate and pitch."""
    state_file = folder / "prepare.json"
    if not state_file.is_file():
        raise DatasetError(folder, "is not a prepared experiment (no prepare.json); give the recordings or run "
                                   "prepare first")
    prepared = json.loads(state_file.read_text())
    made_for = (prepared.get("version"), prepared.get("sr"), prepared.get("f0"))
    if made_for != (gen.version, gen.sr, gen.f0):
        described = f"{made_for[0]} {made_for[1] // 1000 if made_for[1] else '?'}k {'f0' if made_for[2] else 'no-f0'}"
        raise DatasetError(folder, f"was prepared for a {described} model, but the base is {gen.describe()}; "
                                   "prepare it again for this base (prepare --base ...)")
    return Experiment(folder, gen.version, gen.sr, gen.f0), prepared


def _index_beside(experiment: Experiment, output: Path) -> Optional[Path]:
    """The dataset's index copied beside the result under its name, so the Convert tab pairs them."""
    indices = experiment.indices()
    if not indices:
        return None
    from lora_core.atomic import write_atomic

    target = output.with_suffix(".index")
    write_atomic(target, indices[0].read_bytes())
    return target


def _distributed_rank() -> tuple:
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) < 2:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


def _device(requested: Optional[str], rank: int) -> torch.device:
    if requested:
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise UserError(f"--device {requested}", "torch sees no CUDA device here; use --device cpu")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
    return torch.device("cpu")


def _amp_dtype(device: torch.device):
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
