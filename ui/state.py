"""Session-state keys and the model registry (bundled models shared, user models per session)."""

from __future__ import annotations

import hashlib
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from vae_core.bundled import DEFAULT_MODEL, bundled_model_paths, model_label
from vae_core.checkpoint import read_checkpoint
from vae_core.config import VAEConfig
from vae_core.data import DATASET_NAMES
from vae_core.errors import CheckpointError
from vae_core.precompute import fingerprint, fingerprint_arrays

from . import preload

if TYPE_CHECKING:
    from vae_core import VAE, Dataset

# Session-state keys, in one place.
MODEL = "model"  # id of the current model (sidebar picker, in the URL)
PROJECTION = "projection"  # "raw" | "pca" | "tsne" | "umap" (sidebar picker, in the URL)
USER_MODELS = "user_models"  # id -> ModelEntry: trained or uploaded in this session only
FLASH = "flash"  # a message to show once after a rerun
FLASH_WARNING = "flash_warning"  # the same, for something that did not happen (shown as a warning)
USER_COUNT = "user_model_count"  # how many models this session has added: numbers them in the picker
PENDING_MODEL = "pending_model"  # a new model to select before the picker is drawn next run
KEPT = "_kept"  # what a training run that was stopped keeps, for the next run to install (see kept_box)
SAMPLE_N = "n_samples"  # Random samples page: how many draws (the latent page overlays the same ones)
SAMPLE_SEED = "sample_seed"  # Random samples page: seed of z ~ N(0, I)
TEMPERATURE = "temperature"  # Random samples page: scale of z

PROJECTION_LABELS = {"raw": "raw (two latent dims)", "pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
MAX_USER_MODELS = 4  # per session; the oldest is dropped beyond this, bounding memory
IMAGE_SHAPES = {"digits": (8, 8), "mnist": (28, 28), "fashion-mnist": (28, 28), "kmnist": (28, 28)}  # idx: any
N_CLASSES = 10  # every data set here has ten classes


@dataclass
class ModelEntry:
    """A model with what the pages need to know about it.

    A bundled model's entry is made from its file without PyTorch: the config, the metadata and the
    fingerprint are all the sidebar and a bundled MNIST model's first scatter need (its sidecar ships
    the rest), so they can be drawn while the server is still importing torch. Its weights are loaded
    on first use of `.model`.
    """

    id: str
    _model: VAE | Path = field(repr=False)  # the model, or a bundled model's checkpoint until `.model` loads it
    meta: dict = field(repr=False)
    source: str  # "bundled" | "trained" | "uploaded"
    weights_hash: str  # vae_core.precompute.fingerprint(model): config and weights
    test_data: Dataset | None = field(default=None, repr=False)  # a trained model's own test split (e.g. idx)
    number: int = 0  # user models: 1, 2, ... in the order this session added them
    # A model trained here: its latent space after each epoch (ui/training.Timeline.kept), this session only
    timeline: dict | None = field(default=None, repr=False, compare=False)
    config: VAEConfig | None = field(default=None, repr=False)  # taken from the model when not given
    fingerprint: str = field(init=False)  # the cache key for everything derived from this model
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.config is None:
            self.config = self._model.config
        # The cached functions read the weights, the data set (its test split), the source and, for
        # bundled models, the id (shipped projections); the key covers all of them, so an uploaded copy
        # of bundled weights labelled with another data set never shares a bundled model's entries.
        origin = f"bundled:{self.id}" if self.source == "bundled" else self.source
        self.fingerprint = f"{self.weights_hash}:{self.dataset}:{origin}"
        if self.test_data is not None:
            self.fingerprint += f":test-{_dataset_hash(self.test_data)}"

    @property
    def model(self) -> VAE:
        """The model; a bundled one is loaded from its checkpoint on first use (shared, read-only)."""
        with self._lock:  # bundled entries are shared by every visitor's script thread
            if isinstance(self._model, Path):
                self._model = _load_frozen(self._model)
            return self._model

    @property
    def dataset(self) -> str:
        return self.meta.get("dataset", "mnist")

    @property
    def last_epoch(self) -> dict:
        """The training record of the last epoch (losses, epoch number), or {} when there is none."""
        return (self.meta.get("history") or [{}])[-1]

    @property
    def label(self) -> str:
        cfg = self.config
        if self.source == "bundled":
            return model_label(cfg.kind, cfg.latent_dim, self.dataset)
        beta = f"β={cfg.beta:g}, " if cfg.beta != 1 else ""  # two runs often differ only in β
        return model_label(cfg.kind, cfg.latent_dim, self.dataset, f"{beta}{self.source} here #{self.number}")

    @property
    def class_names(self) -> list[str]:
        return self.meta.get("class_names") or [str(i) for i in range(10)]


def _dataset_hash(data: Dataset) -> str:
    digest = hashlib.sha256(data.images.contiguous().numpy().tobytes())
    digest.update(data.labels.contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


@st.cache_resource(show_spinner="Loading bundled model…")
def _bundled(model_id: str) -> ModelEntry:
    path = bundled_model_paths()[model_id]
    config, meta, weights = read_checkpoint(path)  # no torch: see ModelEntry
    return ModelEntry(model_id, path, meta, "bundled", fingerprint_arrays(config, weights), config=config)


def _load_frozen(path: Path) -> VAE:
    engine()
    from vae_core.checkpoint import load_checkpoint

    model, _ = load_checkpoint(path)
    for p in model.parameters():
        p.requires_grad_(False)  # shared across visitors: read-only
    return model


def engine(say: bool = False) -> None:
    """Wait until the server's preload has imported PyTorch and the modules that use it: called before
    anything imports them, as the start and latent pages may be drawn before that (ui/preload.py).
    say: show a spinner meanwhile; never inside a cached function (Streamlit replays the elements those
    make, and they have spinners of their own)."""
    if say and preload.pending():
        with st.spinner("Starting up: loading PyTorch (only the first visit after a restart)…"):
            preload.wait()
    else:
        preload.wait()


def user_models() -> dict[str, ModelEntry]:
    return st.session_state.setdefault(USER_MODELS, {})


def model_ids() -> list[str]:
    bundled = list(bundled_model_paths())
    bundled.sort(key=lambda m: m != DEFAULT_MODEL)
    return bundled + list(user_models())


def get_entry(model_id: str) -> ModelEntry:
    if model_id in user_models():
        return user_models()[model_id]
    return _bundled(model_id)


def label_of(model_id: str) -> str:
    return get_entry(model_id).label


def add_user_model(
    model: VAE, meta: dict, source: str, test_data: Dataset | None = None, timeline: dict | None = None
) -> str:
    """Keep a trained or uploaded model in this session only, make it current, return its id.

    test_data: the model's own test split, when its data set's cannot be had by name (an IDX folder).
    timeline: a model trained here, its latent space after each epoch (ui/training.Timeline.kept).
    """
    if not all(p.isfinite().all() for p in model.parameters()):
        raise ValueError("a model with non-finite weights is never installed")
    model.eval()
    models = user_models()
    model_id = f"{source}-{uuid.uuid4().hex[:8]}"
    number = st.session_state[USER_COUNT] = st.session_state.get(USER_COUNT, 0) + 1
    models[model_id] = ModelEntry(
        model_id, model, meta, source, fingerprint(model), test_data, number, timeline=timeline
    )
    while len(models) > MAX_USER_MODELS:
        models.pop(next(iter(models)))
    st.session_state[PENDING_MODEL] = model_id  # the picker already exists this run
    return model_id


def user_model_like(model: VAE, meta: dict) -> str | None:
    """The id of this session's model with exactly these weights, config and data set, if there is one."""
    target, dataset = fingerprint(model), meta.get("dataset", "mnist")
    found = (i for i, e in user_models().items() if e.weights_hash == target and e.dataset == dataset)
    return next(found, None)


def kept_box() -> dict:
    """Where a training run leaves what it keeps when it is stopped; taken when the run starts.

    A click on Stop, or on another page, makes Streamlit stop the run. With fast reruns (the default)
    it then starts the next run at once, in another thread, and in the stopped one every st.* call,
    session state included, raises StopException again. So the stopped run puts the model in this
    plain dict, which it holds already, and sets box["done"]; the next run installs it (collect_kept).
    """
    return st.session_state.setdefault(KEPT, {})


def collect_kept(wait_s: float = 30.0) -> None:
    """Install what a stopped training run kept, once: the model (current from now on) and its message.
    Called before the model picker is drawn; waits for a run still unwinding (milliseconds, normally)."""
    box = st.session_state.get(KEPT)
    if not box:
        return
    done = box.get("done")
    if done is not None and not done.is_set():
        with st.spinner("Stopping the training run…"):
            done.wait(wait_s)
    user_models()  # raises here, before anything is taken from the box, if this run is being stopped too
    with box.setdefault("lock", threading.Lock()):  # the stopped run and the next one may both get here
        kept = box.get("kept")
        if kept is None:
            return
        if kept.get("model") is not None:
            add_user_model(kept["model"], kept["meta"], "trained", kept.get("test_data"), kept.get("timeline"))
        st.session_state[FLASH_WARNING if kept.get("warning") else FLASH] = kept["message"]
        box.pop("kept")  # last: a run stopped in the middle of the above leaves it for the next one


def check_upload(model: VAE, meta: dict) -> None:
    """Refuse a checkpoint the pages could not show: unknown data set, wrong image size, odd class names.

    Raises CheckpointError (the page says the file was not loaded and the current model is unchanged).
    """
    dataset = meta.get("dataset")
    if dataset not in DATASET_NAMES:
        raise CheckpointError(
            f"its data set is {dataset!r}; a checkpoint must name one of {', '.join(DATASET_NAMES)} "
            "(save it with this app or `python -m vae_core.train`)"
        )
    shape = tuple(model.config.image_shape)
    if dataset in IMAGE_SHAPES and shape != IMAGE_SHAPES[dataset]:
        h, w = IMAGE_SHAPES[dataset]
        raise CheckpointError(f"its images are {shape[0]}x{shape[1]} but {dataset} images are {h}x{w}")
    names = meta.get("class_names")
    if names is not None and not (
        isinstance(names, list) and len(names) == N_CLASSES and all(isinstance(n, str) for n in names)
    ):
        raise CheckpointError(f"class_names must be a list of {N_CLASSES} strings, one per class")


def default_model_id() -> str:
    ids = model_ids()
    return DEFAULT_MODEL if DEFAULT_MODEL in ids else ids[0]


def current() -> ModelEntry:
    model_id = st.session_state.get(MODEL)
    return get_entry(model_id if model_id in model_ids() else default_model_id())


def n_params(entry: ModelEntry) -> int:
    return entry.model.n_parameters()
