"""Training from the page: progress with ETA, a loss chart that grows, and keep-what-was-done on Stop."""

from __future__ import annotations

import contextlib
import math
import threading
import time
from dataclasses import asdict

import numpy as np
import streamlit as st
import torch
from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException

from vae_core import DATASET_NAMES, VAE, Dataset, LatentLabError, TrainConfig, VAEConfig, load_dataset, train
from vae_core.charts import loss_chart, timeline_chart, timeline_domain
from vae_core.projection import training_view
from vae_core.subset import subset_indices
from vae_core.train import StepInfo, pick_precision, seeded_model

from . import state
from .access import PUBLIC_ENV, folders_allowed, public_demo, public_text  # noqa: F401 (re-exported)

BUSY = "Another visitor is training a model; try again in a minute."
NOTHING_KEPT = "Stopped before the first epoch finished; nothing was kept, the current model is unchanged."
# One run at a time across all sessions: two would halve each other's speed on a 2-core server.
_RUNS = threading.Semaphore(1)
TIMELINE_POINTS = 1000  # test digits encoded after each epoch: milliseconds, and enough to show the clusters
# On a public demo a run ends after this long, keeping its completed epochs: everyone else waits meanwhile.
PUBLIC_RUN_S = 180


_PRECISION_NAMES = {"fp32": "float32", "bf16": "bfloat16"}


def precision_choices() -> list[str]:
    """bfloat16 is offered only where "auto" takes it (the CPU has it in hardware): emulated, it is many
    times slower."""
    return ["auto", "fp32"] + (["bf16"] if pick_precision("auto", "cpu") == "bf16" else [])


def precision_label(choice: str) -> str:
    if choice == "auto":
        return f"auto ({_PRECISION_NAMES[pick_precision('auto', 'cpu')]} on this machine)"
    return _PRECISION_NAMES[choice]


def describe_training(config: dict) -> str | None:
    """The model card's line on how a model was trained, from its checkpoint's train_config. Only known
    keys with values of the right kind are shown: an uploaded file's header is not trusted to hold
    anything fit to print."""

    def number(key: str, kind: type | tuple[type, ...]):
        value = config.get(key)
        return value if isinstance(value, kind) and not isinstance(value, bool) else None

    epochs, lr, batch = number("epochs", int), number("lr", (int, float)), number("batch_size", int)
    if epochs is None or lr is None:
        return None
    seed = number("seed", int)
    line = f"Trained for {epochs} epoch{'s' if epochs != 1 else ''} with Adam, learning rate {lr:g}"
    if config.get("lr_schedule") == "cosine":
        line += " (a cosine schedule down to 0)"
    line += f", batches of {batch}" if batch is not None else ""
    line += f", seed {seed}" if seed is not None else ""
    precision = config.get("precision")
    if precision in _PRECISION_NAMES:
        line += f", {_PRECISION_NAMES[precision]} layers"
        line += " (weights and Adam in float32)" if precision == "bf16" else ""
    return line + "."


def dataset_choices() -> list[str]:
    return [name for name in DATASET_NAMES if not (name == "idx" and not folders_allowed())]


def run(dataset: str, data_dir: str | None, model_cfg: dict, train_cfg: TrainConfig) -> None:
    """Train in this script run, if no other session is training; see _run."""
    if not _RUNS.acquire(blocking=False):
        st.warning(BUSY)
        return
    try:
        _run(dataset, data_dir, model_cfg, train_cfg)
    finally:
        _RUNS.release()


def _run(dataset: str, data_dir: str | None, model_cfg: dict, train_cfg: TrainConfig) -> None:
    """A click on Stop interrupts the run (Streamlit raises at the next st.* call, mid-epoch):
    the weights of the last completed epoch are then installed, not the half-trained ones."""
    try:
        with st.spinner(f"Loading {dataset}…"):
            train_set = load_dataset(dataset, "train", data_dir or None)
            test_set = load_dataset(dataset, "test", data_dir or None)
        model = seeded_model(VAEConfig(image_shape=train_set.image_shape, **model_cfg), train_cfg.seed)
    except LatentLabError as exc:
        st.error(public_text(exc))
        return
    bar, status = st.progress(0.0, text=f"epoch 1/{train_cfg.epochs} · starting…"), st.empty()
    left, right = st.columns(2)
    chart, latent = left.empty(), right.empty()
    chart.caption("The loss per epoch, train and test, is drawn here as each epoch ends.")
    history: list[dict] = []
    meta = {
        "dataset": dataset,
        "class_names": train_set.class_names,
        "history": history,
        "train_config": asdict(train_cfg),
    }
    own_test = test_set if (data_dir or dataset == "idx") else None  # not loadable by name alone
    last_epoch: dict[str, torch.Tensor] = {}
    # None when the test images do not fit the model: train() then says so (a ConfigError, shown below)
    timeline = Timeline(test_set) if test_set.image_shape == model.config.image_shape else None
    if timeline is not None:
        timeline.add(model, 0)  # the untrained encoder: every digit near the same point
        latent.altair_chart(timeline.chart(), width="content")
        right.caption(
            f"The means μ of the same {len(timeline.labels):,} test digits after each epoch. The model card "
            "keeps every epoch, to step through once the run ends."
        )

    def on_step(info: StepInfo) -> None:
        bar.progress(
            min(1.0, info.fraction), text=f"epoch {info.epoch}/{train_cfg.epochs} · batch loss {info.loss:.1f} nats"
        )
        status.caption(f"elapsed {info.elapsed_s:.0f} s · about {info.eta_s:.0f} s left")

    def on_epoch_end(record: dict) -> None:
        history.append(record)
        last_epoch.update({k: v.detach().clone() for k, v in model.state_dict().items()})
        if timeline is not None:  # before any st.* call, where a Stop raises: it must match last_epoch
            timeline.add(model, record["epoch"])
        chart.altair_chart(loss_chart(history), width="stretch")
        if timeline is not None:
            latent.altair_chart(timeline.chart(), width="content")

    deadline = time.monotonic() + PUBLIC_RUN_S if public_demo() else math.inf

    def out_of_time() -> bool:
        return time.monotonic() > deadline

    state.collect_kept()  # anything a run before this one left (normally collected already)
    box = state.kept_box()
    box.clear()
    box["done"] = done = threading.Event()
    try:
        train(
            model, train_set, test_set, train_cfg, on_step=on_step, on_epoch_end=on_epoch_end, should_stop=out_of_time
        )
        why = time_limit() if len(history) < train_cfg.epochs else ""  # the public demo's time limit
        box["kept"] = _kept(model, meta, last_epoch if why else None, train_cfg.epochs, own_test, why, timeline)
    except LatentLabError as exc:
        st.error(f"Training stopped: {public_text(exc)}. Nothing was kept; the current model is unchanged.")
        return
    except ScriptControlException:  # Stop, another page, or the session ending: keep the last completed epoch
        box["kept"] = _kept(model, meta, last_epoch, train_cfg.epochs, own_test, timeline=timeline)
        done.set()  # before collecting here: collect_kept waits for it
        with contextlib.suppress(ScriptControlException):  # after a stop request the next run installs it
            state.collect_kept()
        raise
    finally:
        done.set()  # only once "kept" is stored: a run waiting in collect_kept must find it
    state.collect_kept()


def time_limit() -> str:
    return f"this public demo trains for at most {PUBLIC_RUN_S // 60} minutes at a time, so others can too"


def _kept(
    model: VAE,
    meta: dict,
    last_epoch: dict | None,
    total: int,
    test_data: Dataset | None,
    why: str = "",
    timeline: Timeline | None = None,
) -> dict:
    """What a run keeps, for state.collect_kept: all of it (last_epoch None), or the weights of the last
    completed epoch, or nothing; with the model, its timeline. No st.* call here: a stopped run can make
    none (see state.kept_box)."""
    message = "the new model is now current (only in your session)."
    if last_epoch is not None:
        if not last_epoch:
            return {"message": NOTHING_KEPT[:-1] + f" ({why})." if why else NOTHING_KEPT, "warning": True}
        model.load_state_dict(last_epoch)
        message = f"Stopped after epoch {len(meta['history'])} of {total}{f' ({why})' if why else ''}; {message}"
    else:
        message = f"Trained; {message}"
    model.cpu().eval()
    kept_meta = dict(meta, history=list(meta["history"]))
    kept_timeline = timeline.kept() if timeline else None
    return {"model": model, "meta": kept_meta, "test_data": test_data, "message": message, "timeline": kept_timeline}


class Timeline:
    """The latent space after each epoch of a run: a fixed set of test digits' means, in 2-D (μ itself
    for Z = 2; for larger Z its two principal axes, refitted each epoch and kept pointing the same way).
    Recorded while training and kept with the model for this session (not in its file), so the model
    card can step through the epochs. Epoch 0 is the untrained encoder."""

    def __init__(self, test_set: Dataset, n: int = TIMELINE_POINTS) -> None:
        idx = torch.as_tensor(subset_indices(len(test_set), n))
        subset = Dataset(test_set.name, test_set.images[idx], test_set.labels[idx], test_set.class_names, "test")
        self.images = subset.as_float()  # not the whole split's floats first (31 MB for MNIST)
        self.labels = subset.labels.numpy()
        self.class_names = list(test_set.class_names)
        self.epochs: list[int] = []
        self.coords: list[np.ndarray] = []
        self._axes: np.ndarray | None = None

    def add(self, model: VAE, epoch: int) -> None:
        with torch.no_grad():
            mu, _ = model.encode(self.images.to(next(model.parameters()).device))
        coords, self._axes = training_view(mu.float().cpu().numpy(), self._axes)
        self.epochs.append(epoch)
        self.coords.append(coords)

    def chart(self):
        """The latest epoch's view, in a frame that fits it (the run's final frame is not known yet)."""
        return timeline_chart(self.coords[-1], self.labels, self.class_names, self.epochs[-1])

    def kept(self) -> dict:
        """What the model keeps (not the images): epochs, coordinates per epoch, labels, class names. A
        run stopped mid-epoch keeps the weights of its last whole epoch, the last one recorded here."""
        return {
            "epochs": list(self.epochs),
            "coords": list(self.coords),
            "labels": self.labels,
            "class_names": self.class_names,
        }


def show_timeline(entry: state.ModelEntry) -> None:
    """The model card of a model trained in this session: its latent space after any epoch."""
    timeline = entry.timeline
    epochs, z_dim = timeline["epochs"], entry.config.latent_dim
    st.markdown("**The latent space during training**")
    left, right = st.columns([1, 2], vertical_alignment="center")
    epoch = left.select_slider("After epoch", epochs, epochs[-1], key=f"timeline_{entry.id}")
    at = epochs.index(epoch)
    axes = {1: "μ against 0 (Z = 1)", 2: "μ itself (Z = 2)"}.get(
        z_dim, f"the two directions along which μ varies most, found anew after each epoch (Z = {z_dim})"
    )
    pull = (
        "An autoencoder has no KL term: nothing keeps its codes near 0, and nothing makes the space between "
        "the clusters decode to digits."
        if entry.config.kind == "ae"
        else "The reconstruction term rewards codes that tell digits apart; the KL term keeps the whole cloud "
        "near N(0, I)."
    )
    left.caption(
        f"{len(timeline['labels']):,} test digits at their means μ; axes: {axes}. Epoch 0 is the untrained "
        f"encoder, every digit near the same point. {pull} Same frame for every epoch."
    )
    domain = timeline_domain(timeline["coords"])
    chart = timeline_chart(timeline["coords"][at], timeline["labels"], timeline["class_names"], epoch, domain)
    right.altair_chart(chart, width="content")
