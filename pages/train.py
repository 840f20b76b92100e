"""Train or load a model: bundled, uploaded (.safetensors only) or trained here, then its model card."""

from ui.shell import require_app

require_app()  # before anything is drawn: see ui/shell.py

from functools import partial

import streamlit as st

from ui import cache, state, teaching, training, views
from vae_core import LatentLabError, TrainConfig, checkpoint_bytes, load_checkpoint
from vae_core.charts import loss_chart

st.title("Train or load a model")
st.markdown(
    "**What am I looking at?** Where the current model comes from: a bundled one, a "
    "`.safetensors` file you upload, or one you train here. Models you add stay in your session only."
)
teaching.expander()
if msg := st.session_state.pop(state.FLASH, None):
    st.success(msg)
if msg := st.session_state.pop(state.FLASH_WARNING, None):
    st.warning(msg)

# Once a visitor has trained, the Train tab is the one that opens: the page reruns when a run ends (to show
# the new model), and the flash message above moves the tabs, which Streamlit then draws afresh. Tabs that
# track their state would rerun on every click, and a click during a run would stop it.
OPENED_TRAIN = "_opened_train"
load_tab, train_tab = st.tabs(["Load", "Train"], default="Train" if st.session_state.get(OPENED_TRAIN) else None)
with load_tab:
    st.markdown(
        "Pick a bundled model in the sidebar, or upload a checkpoint saved by this app or by "
        "`python -m vae_core.train`."
    )
    upload = st.file_uploader("Upload a .safetensors checkpoint", type=["safetensors"], key="upload")
    if upload is not None and st.session_state.get("_loaded_upload") != upload.file_id:
        try:
            model, meta = load_checkpoint(upload.getvalue())
            state.check_upload(model, meta)
        except LatentLabError as exc:
            st.error(f"{upload.name} was not loaded: {training.public_text(exc)}. The current model is unchanged.")
        else:
            st.session_state["_loaded_upload"] = upload.file_id
            if same := state.user_model_like(model, meta):  # the same file again: no second copy in the picker
                st.session_state[state.PENDING_MODEL] = same
                st.session_state[state.FLASH] = f"{upload.name} is already loaded; it is now the current model."
                st.rerun()
            state.add_user_model(model, meta, "uploaded")
            st.session_state[state.FLASH] = f"Loaded {upload.name}; it is now the current model."
            if missing := views.test_split_missing(meta["dataset"]):
                st.session_state[state.FLASH_WARNING] = (
                    f"Its test digits are not available here ({missing}), so the pages that show them say so; "
                    "Random samples works with any model."
                )
            st.rerun()

with train_tab:
    with st.form("train"):
        c1, c2, c3 = st.columns(3)
        dataset = c1.selectbox(
            "Data set",
            training.dataset_choices(),
            key="train_dataset",
            help="digits works offline everywhere; the others need their IDX files or internet.",
        )
        data_dir = ""  # a public demo never reads folders a visitor names
        if training.folders_allowed():
            data_dir = c1.text_input(
                "IDX folder (optional)", key="train_dir", help="A folder with the four IDX files; needed for 'idx'."
            )
        precision = c1.selectbox(
            "Matrix multiplies",
            training.precision_choices(),
            format_func=training.precision_label,
            key="train_precision",
            help="bfloat16 layers run about twice as fast on a CPU that has them in hardware (only "
            "then offered); the weights, Adam and the loss stay float32, and the test loss ends the same.",
        )
        latent_dim = c2.number_input("Latent dimension Z", 1, 64, 2, key="train_z")
        hidden = c2.number_input("Hidden size", 16, 1024, 256, 16, key="train_hidden")
        beta = c2.number_input(
            "β (KL weight)",
            0.0,
            20.0,
            1.0,
            0.5,
            key="train_beta",
            help="β > 1 pulls codes harder toward N(0, I): a smoother space whose random samples more often "
            "look like digits, but blurrier samples and reconstructions; too high and dimensions go unused.",
        )
        epochs = c3.number_input("Epochs", 1, 100, 20, key="train_epochs")
        lr = c3.number_input("Learning rate", 1e-5, 10.0, 1e-3, format="%.5f", key="train_lr")
        batch = c3.select_slider("Batch size", [32, 64, 128, 256, 512], 128, key="train_batch")
        start = st.form_submit_button("Train", type="primary")
        if training.public_demo():
            st.caption(
                f"On this public demo a run stops after {training.PUBLIC_RUN_S // 60} minutes and keeps the "
                "epochs it finished; one visitor trains at a time."
            )
    if start:
        st.session_state[OPENED_TRAIN] = True
        st.button("Stop (keeps the epochs done so far)", key="stop")
        cfg = TrainConfig(epochs=int(epochs), lr=float(lr), batch_size=int(batch), precision=precision).resolved()
        model_cfg = {"hidden_sizes": (int(hidden),), "latent_dim": int(latent_dim), "beta": float(beta)}
        training.run(dataset, data_dir.strip(), model_cfg, cfg)
        if any(key in st.session_state for key in (state.PENDING_MODEL, state.FLASH, state.FLASH_WARNING)):
            st.rerun()  # show the new model, or why there is none, at the top of the page


def show_test_loss(metric_at, caption_at, loss: dict, beta: float | None, when: str) -> None:
    """beta None: a plain autoencoder, whose loss is its reconstruction alone."""
    metric_at.metric(
        "Test loss (nats/image)",
        f"{loss['loss']:.1f}",
        help=f"reconstruction {loss['recon']:.1f}" + ("" if beta is None else f" + β x KL {loss['kl']:.1f}"),
    )
    if beta is None:
        caption_at.caption(
            f"Test loss {loss['loss']:.2f}: reconstruction only (an autoencoder has no KL term), {when}."
        )
        return
    caption_at.caption(
        f"Test loss {loss['loss']:.2f} = reconstruction {loss['recon']:.2f} + "
        f"β · KL {loss['kl']:.2f} (β = {beta:g}), {when}."
    )


entry = state.current()
st.subheader("Model card")
last = entry.last_epoch
c1, c2, c3, c4 = st.columns(4)
c1.metric("Data set", entry.dataset)
c2.metric("Latent dimension Z", entry.model.config.latent_dim)
c3.metric("Parameters", f"{entry.model.n_parameters():,}")
loss_caption = st.empty()
views.undertrained_warning(entry)
if entry.meta.get("history"):
    st.altair_chart(loss_chart(entry.meta["history"]), width="stretch")
if entry.timeline and len(entry.timeline["epochs"]) > 1:
    training.show_timeline(entry)
if how := training.describe_training(entry.meta.get("train_config") or {}):
    st.caption(how)
# Made on click (only finite models are ever installed, so checkpoint_bytes does not refuse here).
model_file = partial(checkpoint_bytes, entry.model, entry.meta)
views.download(
    st,
    "Download this model (.safetensors)",
    model_file,
    f"{entry.id}.safetensors",
    "application/octet-stream",
    "download_model",
)
beta = None if entry.config.kind == "ae" else entry.model.beta
if "test_loss" in last:
    recorded = {"loss": last["test_loss"], "recon": last["test_recon"], "kl": last["test_kl"]}
    epochs = last["epoch"]
    show_test_loss(c4, loss_caption, recorded, beta, f"after {epochs} epoch{'' if epochs == 1 else 's'}")
else:  # no history (e.g. uploaded): computed now; last, as require_test_data stops the page without a split
    views.require_test_data(entry)
    loss = cache.test_loss(entry.fingerprint, entry)
    show_test_loss(c4, loss_caption, loss, beta, "computed now on the test split")
