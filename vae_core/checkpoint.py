"""Checkpoints: one .safetensors file; the config and metadata as JSON in its header. No pickle."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import math
import os
import struct
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import SafetensorError

from .config import VAEConfig
from .errors import CheckpointError, ConfigError

if TYPE_CHECKING:
    import numpy as np
    import torch

    from .model import VAE

__all__ = [
    "FORMAT",
    "MAX_CHECKPOINT_BYTES",
    "checkpoint_bytes",
    "save_checkpoint",
    "check_writable",
    "load_checkpoint",
    "read_checkpoint",
    "parse_metadata",
]

FORMAT = "latent-lab-vae/1"
MAX_CHECKPOINT_BYTES = 64 * 2**20  # larger than any sensible MNIST model; checked before reading
MAX_HEADER_BYTES = 2**20  # the JSON header; a bigger claim is refused before it is read
MAX_PARAMETERS = MAX_CHECKPOINT_BYTES // 4
STALE_TEMP_S = 60  # a temp file this old belongs to a save that died
MAX_HISTORY = 1000  # epochs kept in the metadata
MAX_CLASSES = 100
MAX_NAME = 64  # characters in a dataset or class name
_CONFIG_KEYS = {"image_shape", "hidden_sizes", "latent_dim", "beta", "kind"}
_META_KEYS = {"dataset", "class_names", "history", "train_config", "note"}
# In the header's metadata: sha256 of the canonical header without this field, then of the tensor bytes.
# It covers the header too, so one flipped bit anywhere gives the same "damaged" message.
CHECKSUM_KEY = "sha256"
SAVE_HINT = "python -m vae_core.train or the app's download button"  # how a good checkpoint is made
CHOOSE_ANOTHER = f"choose a .safetensors checkpoint saved by latent-lab ({SAVE_HINT})"
RESAVE = f"re-download it, or re-save it with {SAVE_HINT}"


def checkpoint_bytes(model: VAE, meta: dict | None = None) -> bytes:
    """The checkpoint file's bytes (for downloads), refusing non-finite weights."""
    import torch
    from safetensors.torch import save as st_save

    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if not all(torch.isfinite(t).all() for t in tensors.values()):
        raise CheckpointError(
            "the model has non-finite weights, so it was not saved; train it again with a lower learning rate"
        )
    meta = dict(meta or {})
    _check_meta(meta)
    header = {"format": FORMAT, "config": json.dumps(model.config.to_dict()), "meta": json.dumps(meta)}
    return _seal(st_save(tensors, metadata=header))


def _seal(data: bytes) -> bytes:
    """Add the checksum and rewrite the header with sorted keys: safetensors writes metadata in hash-map
    order, so the same model would otherwise give different bytes (and a spurious diff in git) each save."""
    (n,) = struct.unpack("<Q", data[:8])
    header, body = json.loads(data[8 : 8 + n]), memoryview(data)[8 + n :]
    header["__metadata__"][CHECKSUM_KEY] = _checksum(header, body)
    text = _canonical_json(header)
    text += b" " * (-len(text) % 8)  # safetensors pads the header to 8-byte alignment with spaces
    return struct.pack("<Q", len(text)) + text + body


def _canonical_json(header: dict) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode()


def _checksum(header: dict, body: memoryview) -> str:
    """sha256 of the header as saved minus the checksum itself, then of the tensor bytes after it."""
    metadata = {k: v for k, v in header["__metadata__"].items() if k != CHECKSUM_KEY}
    digest = hashlib.sha256(_canonical_json({**header, "__metadata__": metadata}))
    digest.update(body)
    return digest.hexdigest()


def save_checkpoint(path: str | os.PathLike, model: VAE, meta: dict | None = None) -> None:
    """Write atomically: a temp file in the same folder, flushed, then renamed over `path`."""
    path = Path(path)
    if path.suffix != ".safetensors":  # load_checkpoint refuses any other name: such a file could not be reopened
        raise CheckpointError(
            f"{path.name}: a checkpoint's name must end in .safetensors; save it as {path.stem}.safetensors"
        )
    data = checkpoint_bytes(model, meta)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a checkpoint is an ordinary readable file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _remove_stale_temps(path)
    except OSError as exc:
        raise CheckpointError(f"cannot write {path}: {exc.strerror or exc}; choose another folder") from exc
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)


def _remove_stale_temps(path: Path) -> None:
    """Temp files left by a save that was killed half-way (older than a minute: not a live writer)."""
    for stray in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(OSError):
            if time.time() - stray.stat().st_mtime > STALE_TEMP_S:
                stray.unlink()


def check_writable(path: str | os.PathLike) -> None:
    """Fail early (before a long training run) if `path` cannot be written."""
    folder = Path(path).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise CheckpointError(f"cannot write to {folder}: {exc.strerror or exc}; choose another --out") from exc


def load_checkpoint(source: str | os.PathLike | bytes) -> tuple[VAE, dict]:
    """Load a path or the bytes of an upload; return (model in eval mode, metadata dict)."""
    from safetensors.torch import load as st_load

    from .model import VAE

    data, config, meta = _open(source)
    try:
        tensors = st_load(data)
    except (SafetensorError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"the file is damaged: its tensors cannot be read ({exc}); {RESAVE}") from exc
    model = VAE(config)
    _check_tensors(model, tensors)
    model.load_state_dict(tensors, strict=True)
    return model.eval(), meta


def read_checkpoint(source: str | os.PathLike | bytes) -> tuple[VAEConfig, dict, dict[str, np.ndarray]]:
    """(config, metadata, weights as NumPy arrays by name) of a sealed checkpoint, without PyTorch: what
    the app's first page of a bundled model needs (ui/state.py). The size, framing, checksum and
    metadata are checked as in load_checkpoint, but not the tensors' names, shapes and values: those
    checks need the model, so a file from elsewhere (an upload) goes through load_checkpoint."""
    from safetensors.numpy import load as np_load

    data, config, meta = _open(source)
    try:
        return config, meta, np_load(data)
    except (SafetensorError, ValueError) as exc:
        raise CheckpointError(f"the file is damaged: its tensors cannot be read ({exc}); {RESAVE}") from exc


def _open(source: str | os.PathLike | bytes) -> tuple[bytes, VAEConfig, dict]:
    """The file's bytes, once its size, framing and checksum are checked, and its config and metadata."""
    data = _read_capped(source)
    header = _parse_header(data)
    _verify_checksum(header, data)  # first: a damaged file gets this message, not whatever broke in it
    config, meta = parse_metadata(header.get("__metadata__"))
    return data, config, meta


def _read_capped(source: str | os.PathLike | bytes) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        path = Path(source)
        if path.suffix != ".safetensors":
            raise CheckpointError(f"{path.name}: only .safetensors checkpoints are accepted; {CHOOSE_ANOTHER}")
        try:
            size = path.stat().st_size
            if size > MAX_CHECKPOINT_BYTES:
                raise CheckpointError(_too_big(size))
            data = path.read_bytes()
        except OSError as exc:
            raise CheckpointError(
                f"cannot read {path}: {exc.strerror or exc}; check the path or {CHOOSE_ANOTHER}"
            ) from exc
    if len(data) > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(_too_big(len(data)))
    return data


def _too_big(size: int) -> str:
    return f"the file is {size} bytes; the limit is {MAX_CHECKPOINT_BYTES}: {CHOOSE_ANOTHER}"


def _parse_header(data: bytes) -> dict:
    """Check the safetensors framing ourselves: an 8-byte length, then that many bytes of JSON."""
    not_st = "not a safetensors checkpoint"
    if len(data) < 10:
        raise CheckpointError(f"the file is {len(data)} bytes long: {not_st}; {CHOOSE_ANOTHER}")
    (n,) = struct.unpack("<Q", data[:8])
    header = None
    if n <= min(MAX_HEADER_BYTES, len(data) - 8):
        try:
            header = json.loads(data[8 : 8 + n])
        except (UnicodeDecodeError, ValueError, RecursionError):  # JSONDecodeError is a ValueError
            header = None
    if isinstance(header, dict):
        return header
    # Only now look for other formats: a real header length can start with the same bytes.
    if data[:1] == b"\x80" or data[:2] == b"PK":
        raise CheckpointError(
            f"{not_st}: it looks like a pickle / torch.save file, which is never loaded here; {CHOOSE_ANOTHER}"
        )
    if n > MAX_HEADER_BYTES:  # far beyond any latent-lab checkpoint's header: most likely another kind of file
        raise CheckpointError(f"{not_st}: it looks like {_looks_like(data)}; {CHOOSE_ANOTHER}")
    if n > len(data) - 8:
        raise CheckpointError(
            f"{not_st}: its header claims {n} bytes but the file has {len(data) - 8} (cut short or not a "
            f"checkpoint); {RESAVE}"
        )
    raise CheckpointError(
        f"{not_st}: its header is not a JSON object of at most {MAX_HEADER_BYTES} bytes; {CHOOSE_ANOTHER}"
    )


_OTHER_FORMATS = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"%PDF": "a PDF document",
    b"\x1f\x8b": "a gzip archive",
}


def _looks_like(data: bytes) -> str:
    """What a file that is not a safetensors checkpoint seems to be, for the message."""
    kind = next((name for magic, name in _OTHER_FORMATS.items() if data.startswith(magic)), None)
    if kind:
        return kind
    start = data[:256]
    try:
        start.decode("utf-8")
    except UnicodeDecodeError:
        return "some other file"
    return "some other file" if b"\x00" in start else "a text file"


def _verify_checksum(header: dict, data: bytes) -> None:
    """Refuse a file whose header or tensor bytes changed since it was saved."""
    metadata = header.get("__metadata__")
    _check_sealed(metadata)
    (n,) = struct.unpack("<Q", data[:8])
    if not hmac.compare_digest(metadata[CHECKSUM_KEY], _checksum(header, memoryview(data)[8 + n :])):
        raise CheckpointError(f"the file is damaged: its contents do not match the checksum saved with it; {RESAVE}")


def _check_sealed(metadata: object) -> None:
    """The format tag, then a checksum field (64 hex digits), which every latent-lab save writes."""
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise CheckpointError(f"not a latent-lab checkpoint: its metadata lacks format {FORMAT!r}; {CHOOSE_ANOTHER}")
    saved = metadata.get(CHECKSUM_KEY)
    if not (isinstance(saved, str) and len(saved) == 64 and all(c in "0123456789abcdef" for c in saved)):
        raise CheckpointError(
            f"the checkpoint has no valid {CHECKSUM_KEY} checksum, so damage could not be detected "
            f"(an older or foreign file); {RESAVE}"
        )


def parse_metadata(metadata: object) -> tuple[VAEConfig, dict]:
    """Validate the header's metadata against the schema; return (config, meta)."""
    _check_sealed(metadata)
    try:
        return _parse_fields(metadata)
    except CheckpointError as exc:
        raise CheckpointError(f"{exc}; {CHOOSE_ANOTHER}") from exc


def _parse_fields(metadata: dict) -> tuple[VAEConfig, dict]:
    config = _json_field(metadata, "config")
    meta = _json_field(metadata, "meta")
    if not isinstance(config, dict) or set(config) != _CONFIG_KEYS:
        raise CheckpointError(f"the model config must have exactly the keys {sorted(_CONFIG_KEYS)}")
    for key in ("image_shape", "hidden_sizes"):
        if not isinstance(config[key], list) or len(config[key]) > 8:
            raise CheckpointError(f"config {key} must be a short list of whole numbers")
    try:
        cfg = VAEConfig(**config)
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"the model config is out of range: {exc}") from exc
    if _parameter_count(cfg) > MAX_PARAMETERS:
        raise CheckpointError(f"the config describes a model larger than {MAX_PARAMETERS} parameters")
    _check_meta(meta)
    return cfg, meta


def _json_field(metadata: dict, key: str) -> object:
    raw = metadata.get(key)
    if not isinstance(raw, str):
        raise CheckpointError(f"the checkpoint metadata lacks {key!r}")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, and ints of over 4300 digits
        raise CheckpointError(f"checkpoint metadata {key!r} is not valid JSON") from exc


def _check_meta(meta: object) -> None:
    if not isinstance(meta, dict) or not set(meta) <= _META_KEYS:
        raise CheckpointError(f"checkpoint metadata may only hold {sorted(_META_KEYS)}")
    if not _short_str(meta.get("dataset", "")) or not _short_str(meta.get("note", "")):
        raise CheckpointError(f"dataset and note must be strings of at most {MAX_NAME} characters")
    names = meta.get("class_names", [])
    if not isinstance(names, list) or len(names) > MAX_CLASSES or not all(_short_str(c) for c in names):
        raise CheckpointError(f"class_names must be a list of at most {MAX_CLASSES} short strings")
    history = meta.get("history", [])
    if not isinstance(history, list) or len(history) > MAX_HISTORY or not all(_flat_numbers(h) for h in history):
        raise CheckpointError(f"history must be a list of at most {MAX_HISTORY} records of numbers")
    if not _flat_numbers(meta.get("train_config", {}), allow_str=True):
        raise CheckpointError("train_config must be a flat record of numbers and strings")


def _short_str(value: object) -> bool:
    return isinstance(value, str) and len(value) <= MAX_NAME


def _flat_numbers(record: object, allow_str: bool = False) -> bool:
    if not isinstance(record, dict) or len(record) > 32:
        return False
    ok = (int, float, str) if allow_str else (int, float)
    return all(
        _short_str(k)
        and isinstance(v, ok)
        and (not isinstance(v, str) or _short_str(v))
        and (not isinstance(v, float) or math.isfinite(v))
        for k, v in record.items()
    )


def _parameter_count(cfg: VAEConfig) -> int:
    sizes = [cfg.n_pixels, *cfg.hidden_sizes]
    enc = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    heads = 2 * (cfg.hidden_sizes[-1] + 1) * cfg.latent_dim
    dec_sizes = [cfg.latent_dim, *reversed(cfg.hidden_sizes), cfg.n_pixels]
    return enc + heads + sum((a + 1) * b for a, b in zip(dec_sizes[:-1], dec_sizes[1:], strict=True))


def _check_tensors(model: VAE, tensors: dict[str, torch.Tensor]) -> None:
    expected = model.state_dict()
    missing, extra = set(expected) - set(tensors), set(tensors) - set(expected)
    if missing or extra:
        raise CheckpointError(
            f"the tensors do not match the config: missing {sorted(missing)}, extra {sorted(extra)}; {CHOOSE_ANOTHER}"
        )
    for name, ref in expected.items():
        t = tensors[name]
        if t.shape != ref.shape or t.dtype != ref.dtype:
            raise CheckpointError(
                f"tensor {name} is {t.dtype} {tuple(t.shape)}; expected {ref.dtype} {tuple(ref.shape)}; "
                + CHOOSE_ANOTHER
            )
        if not t.isfinite().all():
            raise CheckpointError(f"tensor {name} holds NaN or infinite values; {CHOOSE_ANOTHER}")
