"""Training from the page: progress with ETA, a loss chart that grows, and keep-what-was-done on Stop."""

from __future__ import annotations

import contextlib
import math
import threading
import time
from dataclasses import asdict

import streamlit as st
import torch
from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException

from vae_core import DATASET_NAMES, VAE, Dataset, LatentLabError, TrainConfig, VAEConfig, load_dataset, train
from vae_core.charts import loss_chart
from vae_core.train import StepInfo, pick_precision

from . import state
from .access import PUBLIC_ENV, folders_allowed, public_demo, public_text  # noqa: F401 (re-exported)

BUSY = "Another visitor is training a model; try again in a minute."
NOTHING_KEPT = "Stopped before the first epoch finished; nothing was kept, the current model is unchanged."
# One run at a time across all sessions: two would halve each other's speed on a 2-core server.
_RUNS = threading.Semaphore(1)
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
        model = VAE(VAEConfig(image_shape=train_set.image_shape, **model_cfg))
    except LatentLabError as exc:
        st.error(public_text(exc))
        return
    bar, status, chart = st.progress(0.0), st.empty(), st.empty()
    history: list[dict] = []
    meta = {
        "dataset": dataset,
        "class_names": train_set.class_names,
        "history": history,
        "train_config": asdict(train_cfg),
    }
    own_test = test_set if (data_dir or dataset == "idx") else None  # not loadable by name alone
    last_epoch: dict[str, torch.Tensor] = {}

    def on_step(info: StepInfo) -> None:
        bar.progress(
            min(1.0, info.fraction), text=f"epoch {info.epoch}/{train_cfg.epochs} · batch loss {info.loss:.1f} nats"
        )
        status.caption(f"elapsed {info.elapsed_s:.0f} s · about {info.eta_s:.0f} s left")

    def on_epoch_end(record: dict) -> None:
        history.append(record)
        last_epoch.update({k: v.detach().clone() for k, v in model.state_dict().items()})
        chart.altair_chart(loss_chart(history), width="stretch")

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
        box["kept"] = _kept(model, meta, last_epoch if why else None, train_cfg.epochs, own_test, why)
    except LatentLabError as exc:
        st.error(f"Training stopped: {public_text(exc)}. Nothing was kept; the current model is unchanged.")
        return
    except ScriptControlException:  # Stop, another page, or the session ending: keep the last completed epoch
        box["kept"] = _kept(model, meta, last_epoch, train_cfg.epochs, own_test)
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
    model: VAE, meta: dict, last_epoch: dict | None, total: int, test_data: Dataset | None, why: str = ""
) -> dict:
    """What a run keeps, for state.collect_kept: all of it (last_epoch None), or the weights of the last
    completed epoch, or nothing. No st.* call here: a stopped run can make none (see state.kept_box)."""
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
    return {"model": model, "meta": kept_meta, "test_data": test_data, "message": message}
