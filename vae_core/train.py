"""Training: the whole data set as one tensor, shuffled by index each epoch; CLI `python -m vae_core.train`."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from .backprop import PRECISIONS, FlatStep
from .data import Dataset
from .errors import ConfigError, TrainingDivergedError
from .losses import vae_loss
from .model import VAE, VAEConfig

__all__ = [
    "TrainConfig",
    "train",
    "seeded_model",
    "evaluate",
    "pick_device",
    "check_device",
    "pick_precision",
    "StepInfo",
]

MAX_BAD_STEPS = 5  # non-finite losses in a row before training gives up
EVAL_BATCH = 1000  # test-set batch; no gradients, so larger is faster
DIVERGED_FACTOR = 2.0  # an epoch's mean loss above this multiple of the untrained loss: diverged
EVAL_SEED = 1234  # the test loss samples z with a fixed seed so epochs compare fairly
MAX_SEED = 2**63 - 1  # torch.manual_seed takes 64 bits; non-negative keeps one seed one meaning
DEVICES = ("cpu", "cuda", "mps")  # what a config may name; "auto" is resolved by pick_device first


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings. Defaults are the classic PyTorch VAE example's."""

    epochs: int = 10  # full passes over the training set
    lr: float = 1e-3  # Adam learning rate
    batch_size: int = 128  # images per step
    seed: int = 1  # shuffling, initial weights and sampling
    lr_schedule: str = "constant"  # "constant" or "cosine" (decays to 0 over the run)
    device: str = "cpu"  # "cpu", "cuda", "mps"; see pick_device for "auto"
    precision: str = "fp32"  # the layers' arithmetic, "fp32" or "bf16"; "auto" (the CLI's and the page's
    # default) takes bf16 where the CPU has it in hardware (pick_precision): faster, but the same seed
    # then gives other weights on other machines

    def __post_init__(self) -> None:
        if not _whole(self.epochs, 1, 1000):
            raise ConfigError(f"epochs must be a whole number from 1 to 1000, not {self.epochs!r}")
        if not _whole(self.batch_size, 1, 65536):
            raise ConfigError(f"batch_size must be a whole number from 1 to 65536, not {self.batch_size!r}")
        if not _whole(self.seed, 0, MAX_SEED):
            raise ConfigError(f"seed must be a whole number from 0 to 2**63 - 1, not {self.seed!r}")
        lr_ok = isinstance(self.lr, (int, float)) and not isinstance(self.lr, bool)
        if not (lr_ok and math.isfinite(self.lr) and 0 < self.lr <= 100):
            raise ConfigError(f"lr must be a number above 0 (and at most 100), not {self.lr!r}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ConfigError(f"lr_schedule must be 'constant' or 'cosine', not {self.lr_schedule!r}")
        check_device(self.device)
        if self.precision not in ("auto", *PRECISIONS):
            raise ConfigError(f"precision must be 'auto', 'fp32' or 'bf16', not {self.precision!r}")

    def resolved(self) -> TrainConfig:
        """This config with "auto" precision replaced by what train() will use here."""
        return replace(self, precision=pick_precision(self.precision, self.device))


def native_bf16() -> bool:
    """The CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX), about twice its float32 rate."""
    cpu = torch.cpu
    return any(getattr(cpu, name, lambda: False)() for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


def pick_precision(name: str = "auto", device: str = "cpu") -> str:
    """ "auto" takes bfloat16 multiplies on a CPU that has them in hardware, else float32; elsewhere
    (no native bfloat16, or a GPU, where this model is small either way) the exact float32."""
    if name != "auto":
        return name
    return "bf16" if device == "cpu" and native_bf16() else "fp32"


def _whole(value: object, low: int, high: int) -> bool:
    """An int in [low, high]; bool is an int subclass, but True epochs is a bug, not a setting."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def check_device(name: object) -> None:
    """Refuse a device name torch does not know or this machine does not have, before any work starts."""
    if name not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)} (or 'auto' on the command line), not {name!r}")
    if not _device_available(name):
        raise ConfigError(
            f"device {name!r} is not available on this machine (torch finds no {name.upper()} support); "
            "use --device cpu or --device auto"
        )


def _device_available(name: str) -> bool:
    if name == "cuda":
        return torch.cuda.is_available()
    if name == "mps":
        return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    return True


@dataclass(frozen=True)
class StepInfo:
    """What on_step reports: enough for a progress bar with an ETA."""

    epoch: int  # 1-based
    step: int  # 1-based, within the epoch
    steps_per_epoch: int
    loss: float  # nats per image, this batch
    elapsed_s: float
    total_steps: int  # over the whole run

    @property
    def fraction(self) -> float:
        return ((self.epoch - 1) * self.steps_per_epoch + self.step) / max(1, self.total_steps)

    @property
    def eta_s(self) -> float:
        """Seconds left at the pace so far (includes test evaluation only as it has happened)."""
        done = self.fraction
        return self.elapsed_s * (1 - done) / done if done > 0 else float("nan")


def pick_device(name: str = "auto") -> str:
    """ "auto" takes CUDA or MPS when present, else the CPU; any other name must be available here."""
    if name != "auto":
        check_device(name)
        return name
    return next((d for d in ("cuda", "mps") if _device_available(d)), "cpu")


@torch.no_grad()
def evaluate(model: VAE, data: torch.Tensor) -> dict[str, float]:
    """Mean reconstruction, KL and total loss (nats per image) on float images (N, 1, H, W)."""
    was_training = model.training
    model.eval()
    sums = torch.zeros(3, dtype=torch.float64)
    # A generator of its own: the global one is shared with other visitors' training threads, and
    # seeding it here would change their noise (and theirs this one's). Same draws as seeding it.
    gen = torch.Generator(device=data.device).manual_seed(EVAL_SEED)
    for start in range(0, len(data), EVAL_BATCH):
        x = data[start : start + EVAL_BATCH]
        terms = _batch_loss(model, x, gen)
        sums += torch.tensor([terms.reconstruction.item(), terms.kl.item(), terms.total.item()], dtype=torch.float64)
    model.train(was_training)
    n = max(1, len(data))
    return {"recon": sums[0].item() / n, "kl": sums[1].item() / n, "loss": sums[2].item() / n}


def _batch_loss(model: VAE, x: torch.Tensor, gen: torch.Generator):
    mu, logvar = model.encode(x)
    logits = model.decode_logits(model.reparameterize(mu, logvar, gen))
    return vae_loss(x, logits, mu, logvar, model.beta, include_kl=model.config.kind != "ae")


def seeded_model(config: VAEConfig, seed: int) -> VAE:
    """A new model whose initial weights come from `seed`, as TrainConfig.seed promises: train() seeds
    the shuffling and the noise, but a model is made before train() is called, and made from whatever
    state the global generator was in (in the app, whatever ran before: two runs with seed 1 differed).
    Every layer is drawn again from a generator of its own, as nn.Linear draws it: the global one is
    shared with other visitors' threads, so seeding it here would not be enough."""
    model = VAE(config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, nn.Linear):  # nn.Linear.reset_parameters, with `gen`
                nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=gen)
                bound = 1 / math.sqrt(layer.in_features) if layer.in_features > 0 else 0.0
                nn.init.uniform_(layer.bias, -bound, bound, generator=gen)
    return model


def train(
    model: VAE,
    train_set: Dataset,
    test_set: Dataset | None,
    config: TrainConfig,
    on_step: Callable[[StepInfo], None] | None = None,
    on_epoch_end: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[dict]:
    """Train in place; return one dict per completed epoch (losses in nats per image, seconds).

    Stopping early (should_stop() true) returns the model as trained so far. Several non-finite
    losses in a row raise TrainingDivergedError; the weights keep their last finite values.
    """
    for data in (train_set, test_set):
        _check_shape(model, data)
    device = torch.device(config.device)
    model.to(device).train()
    x_train = train_set.as_float().to(device)
    x_test = test_set.as_float().to(device) if test_set is not None else None
    history: list[dict] = []
    baseline = evaluate(model, x_test if x_test is not None else x_train[:EVAL_BATCH])["loss"]
    # The noise has a generator of its own (torch's global one is shared with other visitors' threads),
    # seeded as the global one was before: the same draws as then.
    stepper = _stepper(model, config, torch.Generator(device=device).manual_seed(config.seed))
    steps = math.ceil(len(x_train) / config.batch_size)
    schedule = _schedule(stepper.optimizer, config, steps)
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(config.seed)
    try:
        for epoch in range(1, config.epochs + 1):
            t0 = time.perf_counter()
            sums, stopped = _run_epoch(
                stepper, schedule, x_train, config, gen, epoch, steps, start, on_step, should_stop
            )
            if stopped:
                break
            record = _epoch_record(model, epoch, sums, len(x_train), x_test, time.perf_counter() - t0)
            _check_progress(record, baseline, config)
            history.append(record)
            if on_epoch_end:
                on_epoch_end(record)
            if should_stop and should_stop():
                break
    finally:
        stepper.release()
    model.cpu().eval()
    return history


def _check_shape(model: VAE, data: Dataset | None) -> None:
    """Before any work: a mismatched test split would otherwise fail in torch after a whole epoch."""
    if data is not None and data.image_shape != model.config.image_shape:
        raise ConfigError(
            f"the model expects {model.config.image_shape} images but the {data.split} split of {data.name!r} "
            f"has {data.image_shape}; use a model made for that data set or the matching data set"
        )


def _check_progress(record: dict, baseline: float, config: TrainConfig) -> None:
    """A finite loss far above the untrained model's means the optimiser overshoots."""
    if record["train_loss"] > DIVERGED_FACTOR * baseline:
        raise TrainingDivergedError(
            f"the loss rose from {baseline:.1f} nats (untrained) to {record['train_loss']:.3g} in epoch "
            f"{record['epoch']}; the learning rate {config.lr:g} is most likely too high: try 1e-3"
        )


def _stepper(model: VAE, config: TrainConfig, noise: torch.Generator) -> FlatStep:
    """The hand-written step (vae_core/backprop.py) with Adam; the fused kernel where the device has
    one (a whole update in one pass)."""
    fused = torch.device(config.device).type in ("cpu", "cuda")
    precision = config.resolved().precision
    return FlatStep(model, lr=config.lr, fused=fused or None, precision=precision, generator=noise)


class CosineSchedule:
    """The learning rate from its start down to 0 over `total` steps, by the closed form of torch's
    CosineAnnealingLR, written on the optimiser's group, where FlatStep reads it each step. (torch's
    scheduler warns when the optimiser's own step() is never called, and FlatStep calls Adam's fused
    kernel directly.)"""

    def __init__(self, optimizer: torch.optim.Optimizer, total: int) -> None:
        self.group, self.total, self.done = optimizer.param_groups[0], total, 0
        self.base = self.group["lr"]

    def step(self) -> None:
        self.done += 1
        self.group["lr"] = self.base * 0.5 * (1 + math.cos(math.pi * min(self.done, self.total) / self.total))


def _schedule(optimizer, config: TrainConfig, steps: int):
    if config.lr_schedule == "cosine":
        return CosineSchedule(optimizer, config.epochs * steps)
    return None


def _run_epoch(stepper, schedule, x_train, config, gen, epoch, steps, start, on_step, should_stop):
    """One pass; returns (summed [recon, kl, total] over the steps taken, stopped)."""
    order = torch.randperm(len(x_train), generator=gen).to(x_train.device)
    sums = torch.zeros(3, dtype=torch.float64, device=x_train.device)
    bad = 0
    report_every = max(1, steps // 50)  # about 50 progress updates per epoch
    for step in range(1, steps + 1):
        # index_select, not x_train[idx]: the same rows, 2.5x faster (about 15 against 40 us a batch)
        x = torch.index_select(x_train, 0, order[(step - 1) * config.batch_size : step * config.batch_size])
        x = x.flatten(1)  # (B, D)
        terms = stepper.step(x)
        bad = bad + 1 if terms is None else 0
        if bad >= MAX_BAD_STEPS:
            raise TrainingDivergedError(
                f"the loss or its gradient became non-finite {bad} steps in a row (epoch {epoch}); "
                f"the learning rate {config.lr:g} is most likely too high: try 1e-3"
            )
        if terms is not None:
            sums += terms
            if schedule is not None:
                schedule.step()
        if on_step and (step % report_every == 0 or step == steps):
            loss = float("nan") if terms is None else terms[2].item() / len(x)
            on_step(StepInfo(epoch, step, steps, loss, time.perf_counter() - start, config.epochs * steps))
        if should_stop and should_stop():
            return sums.cpu(), True
    return sums.cpu(), False


def _epoch_record(model, epoch: int, sums: torch.Tensor, n: int, x_test, seconds: float) -> dict:
    if not all(torch.isfinite(p).all() for p in model.parameters()):
        raise TrainingDivergedError("the weights became non-finite; lower the learning rate (try 1e-3)")
    record = {
        "epoch": epoch,
        "train_recon": sums[0].item() / n,
        "train_kl": sums[1].item() / n,
        "train_loss": sums[2].item() / n,
        "seconds": seconds,
    }
    if x_test is not None:
        test = evaluate(model, x_test)
        record.update(test_recon=test["recon"], test_kl=test["kl"], test_loss=test["loss"])
    return record


def _parser():
    import argparse

    from .data import DATASET_NAMES

    p = argparse.ArgumentParser(prog="python -m vae_core.train", description="Train a VAE and save it as .safetensors.")
    p.add_argument("--dataset", default="mnist", choices=DATASET_NAMES)
    p.add_argument(
        "--data-dir", default=None, help="folder with the IDX files (default: $VAE_DATA_DIR or a cache folder)"
    )
    p.add_argument("--latent-dim", type=int, default=20)
    p.add_argument("--hidden", type=int, nargs="+", default=[400], help="encoder widths, e.g. --hidden 512 256")
    p.add_argument("--beta", type=float, default=1.0)
    p.add_argument("--kind", default="vae", choices=("vae", "ae"), help="ae: plain autoencoder, no KL term")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-schedule", default="constant", choices=("constant", "cosine"))
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=1, help="0 to 2**63 - 1")
    p.add_argument("--device", default="auto", choices=("auto", *DEVICES), help="auto takes CUDA or MPS when present")
    p.add_argument(
        "--precision",
        default="auto",
        choices=("auto", *PRECISIONS),
        help="matrix multiplies in float32 or bfloat16; auto takes bf16 on a CPU with native bfloat16",
    )
    p.add_argument("--out", required=True, help="output path, ending in .safetensors")
    return p


def main(argv: list[str] | None = None) -> int:
    import json
    import sys

    from .checkpoint import check_writable, save_checkpoint
    from .data import load_dataset
    from .errors import LatentLabError

    parser = _parser()
    args = parser.parse_args(argv)
    if not args.out.endswith(".safetensors"):
        parser.error("--out must end in .safetensors")
    cfg = _train_config(parser, args)
    try:
        check_writable(args.out)
        train_set = load_dataset(args.dataset, "train", args.data_dir)
        test_set = load_dataset(args.dataset, "test", args.data_dir)
        model_cfg = VAEConfig(train_set.image_shape, tuple(args.hidden), args.latent_dim, args.beta, args.kind)
        model = seeded_model(model_cfg, cfg.seed)
        history = train(model, train_set, test_set, cfg, on_step=_print_progress, on_epoch_end=_print_epoch)
        meta = {
            "dataset": args.dataset,
            "class_names": train_set.class_names,
            "history": history,
            "train_config": asdict(cfg),
        }
        save_checkpoint(args.out, model, meta)
    except LatentLabError as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 2
    seconds = [h["seconds"] for h in history]
    result = {
        "out": args.out,
        "test_loss": history[-1]["test_loss"],
        "test_recon": history[-1]["test_recon"],
        "test_kl": history[-1]["test_kl"],
        "epoch_s": seconds,
        "samples_per_s": len(train_set) * len(seconds) / sum(seconds),
    }
    print(json.dumps(result))
    return 0


def _train_config(parser, args) -> TrainConfig:
    """Bad training flags are usage errors, reported before the data set is loaded."""
    try:
        device = pick_device(args.device)
        config = TrainConfig(args.epochs, args.lr, args.batch_size, args.seed, args.lr_schedule, device, args.precision)
        if config.precision == "bf16" and device == "cpu" and not native_bf16():
            import sys

            print(
                "warning: this CPU has no bfloat16 in hardware, so --precision bf16 is emulated and many times "
                "slower; --precision auto or fp32 is faster here",
                file=sys.stderr,
            )
        return config.resolved()
    except ConfigError as exc:
        parser.error(str(exc))  # exits 2 with the usage line


def _print_progress(info: StepInfo) -> None:
    import sys

    width = 30
    filled = int(width * info.fraction)
    bar = "#" * filled + "-" * (width - filled)
    sys.stderr.write(
        f"\r[{bar}] epoch {info.epoch} {info.fraction:6.1%} loss {info.loss:7.2f} "
        f"elapsed {info.elapsed_s:5.0f}s eta {info.eta_s:5.0f}s"
    )
    sys.stderr.flush()


def _print_epoch(record: dict) -> None:
    import sys

    sys.stderr.write(
        f"\nepoch {record['epoch']}: train {record['train_loss']:.2f} test {record.get('test_loss', float('nan')):.2f} "
        f"(recon {record.get('test_recon', float('nan')):.2f} + KL {record.get('test_kl', float('nan')):.2f}) "
        f"{record['seconds']:.1f}s\n"
    )


if __name__ == "__main__":
    raise SystemExit(main())
