"""Training from the page: progress with ETA, a loss chart that grows, and keep-what-was-done on Stop."""

from __future__ import annotations

import time

import streamlit as st

from vae_core import VAE, LatentLabError, TrainConfig, VAEConfig, load_dataset, train
from vae_core.charts import loss_chart
from vae_core.train import StepInfo

from . import state


def run(dataset: str, data_dir: str | None, model_cfg: dict, train_cfg: TrainConfig) -> None:
    """Train in this script run. A click on Stop interrupts the run; `finally` keeps the model so far."""
    try:
        with st.spinner(f"Loading {dataset}…"):
            train_set = load_dataset(dataset, "train", data_dir or None)
            test_set = load_dataset(dataset, "test", data_dir or None)
        model = VAE(VAEConfig(image_shape=train_set.image_shape, **model_cfg))
    except LatentLabError as exc:
        st.error(str(exc))
        return
    bar, status, chart = st.progress(0.0), st.empty(), st.empty()
    history: list[dict] = []
    meta = {"dataset": dataset, "class_names": train_set.class_names, "history": history}

    def on_step(info: StepInfo) -> None:
        bar.progress(
            min(1.0, info.fraction), text=f"epoch {info.epoch}/{train_cfg.epochs} · batch loss {info.loss:.1f} nats"
        )
        status.caption(f"elapsed {info.elapsed_s:.0f} s · about {info.eta_s:.0f} s left")

    def on_epoch_end(record: dict) -> None:
        history.append(record)
        chart.altair_chart(loss_chart(history), width="stretch")

    finished = failed = False
    try:
        train(model, train_set, test_set, train_cfg, on_step=on_step, on_epoch_end=on_epoch_end)
        finished = True
    except LatentLabError as exc:
        failed = True
        st.error(f"Training stopped: {exc}. Nothing was kept; the current model is unchanged.")
    finally:
        if history and not failed:  # also runs when a click on Stop interrupts this script run
            _keep(model, meta, finished, len(history), train_cfg.epochs)


def _keep(model: VAE, meta: dict, finished: bool, done: int, total: int) -> None:
    model.cpu().eval()
    state.add_user_model(model, dict(meta, history=list(meta["history"])), "trained")
    word = "Trained" if finished else f"Stopped after epoch {done} of {total};"
    st.session_state[state.FLASH] = f"{word} the new model is now current (only in your session)."
    st.session_state["_trained_at"] = time.time()
