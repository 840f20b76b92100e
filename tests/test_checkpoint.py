"""vae_core/checkpoint.py: exact round trips, atomic saves, and hostile files that must all be CheckpointError."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import random
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as st_save

from vae_core import VAE, CheckpointError, VAEConfig, checkpoint_bytes, load_checkpoint, save_checkpoint
from vae_core.checkpoint import CHECKSUM_KEY, FORMAT, MAX_CHECKPOINT_BYTES, read_checkpoint

REPO_ROOT = Path(__file__).resolve().parent.parent

META = {
    "dataset": "digits",
    "class_names": [str(i) for i in range(10)],
    "note": "test",
    "history": [{"epoch": 1, "train_loss": 30.5}],
    "train_config": {"lr": 0.001, "lr_schedule": "constant"},
}


@pytest.fixture
def model() -> VAE:
    torch.manual_seed(0)
    return VAE(VAEConfig(image_shape=(8, 8), hidden_sizes=(16, 8), latent_dim=3, beta=2.0))


def tensors_of(model: VAE) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


def craft(tensors: dict[str, torch.Tensor], config: object, meta: object = None, fmt: str = FORMAT) -> bytes:
    """A safetensors file with any tensors and metadata; strings are passed through as raw JSON."""
    metadata = {
        "format": fmt,
        "config": config if isinstance(config, str) else json.dumps(config),
        "meta": meta if isinstance(meta, str) else json.dumps(meta or {}),
    }
    return seal(st_save(tensors, metadata=metadata))


def frame(header: dict, body: bytes) -> bytes:
    """A safetensors file from its header and tensor bytes, the header in the canonical form saves use."""
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + body


def seal(data: bytes) -> bytes:
    """Add the checksum the loader wants: sha256 of the canonical header, then of the tensor bytes."""
    n = header_length(data)
    header, body = json.loads(data[8 : 8 + n]), data[8 + n :]
    header.setdefault("__metadata__", {})
    digest = hashlib.sha256(json.dumps(header, sort_keys=True, separators=(",", ":")).encode() + body)
    header["__metadata__"][CHECKSUM_KEY] = digest.hexdigest()
    return frame(header, body)


REMEDY = "python -m vae_core.train or the app's download button"  # how to get a checkpoint that loads


def assert_says_what_to_do(exc: Exception) -> None:
    assert REMEDY in str(exc), f"no remedy in: {exc}"


def same_state(a: VAE, b: VAE) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def no_temp_files(folder: Path) -> bool:
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp") or p.name.startswith(".")] == []


# --- round trips ------------------------------------------------------------------------------------


def test_round_trip_gives_identical_outputs(tmp_path, model):
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, model, META)
    loaded, meta = load_checkpoint(path)
    assert meta == META and loaded.config == model.config and not loaded.training
    model.eval()
    x = torch.rand(7, 1, 8, 8)
    z = torch.randn(7, 3)
    with torch.no_grad():
        assert torch.equal(loaded.decode(z), model.decode(z))
        (mu, logvar), (ref_mu, ref_logvar) = loaded.encode(x), model.encode(x)
        assert torch.equal(mu, ref_mu) and torch.equal(logvar, ref_logvar)
    assert same_state(loaded, model)


def test_bytes_and_file_hold_the_same_checkpoint(tmp_path, model):
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, model, META)
    from_file, meta_file = load_checkpoint(path)
    from_bytes, meta_bytes = load_checkpoint(checkpoint_bytes(model, META))
    assert meta_file == meta_bytes == META
    assert same_state(from_file, from_bytes)


def test_checkpoint_bytes_are_a_function_of_model_and_meta(model):
    """Saving the same model twice gives the same bytes, so a rebuilt bundled model with unchanged
    weights does not show up as a changed binary in git. (safetensors writes the metadata dict in
    hash-map order, which varies from call to call.)"""
    assert len({checkpoint_bytes(model, META) for _ in range(8)}) == 1


def test_autoencoder_round_trip(tmp_path):
    """This model's header happens to be 896 bytes: its file starts 80 03, like a pickle."""
    ae = VAE(VAEConfig(image_shape=(5, 7), hidden_sizes=(8,), latent_dim=2, kind="ae"))
    save_checkpoint(tmp_path / "ae.safetensors", ae)
    loaded, _ = load_checkpoint(tmp_path / "ae.safetensors")
    assert loaded.config.kind == "ae" and loaded.beta == 0.0


def header_length(data: bytes) -> int:
    return struct.unpack("<Q", data[:8])[0]


def meta_for_header_length(model: VAE, target: int) -> dict:
    """Metadata that makes the model's safetensors header exactly `target` bytes long."""
    for n_records in range(1000):
        history = [{"e" * 40: 1}] * n_records  # coarse steps of about 50 bytes
        if header_length(checkpoint_bytes(model, {"history": history, "note": "x" * 64})) < target:
            continue
        for k in range(65):  # fine steps of one byte (before padding to a multiple of 8)
            meta = {"history": history, "note": "x" * k}
            if header_length(checkpoint_bytes(model, meta)) == target:
                return meta
        break
    raise AssertionError(f"no metadata gives a {target}-byte header")


@pytest.mark.parametrize(("target", "start"), [(1152, b"\x80\x04"), (1408, b"\x80\x05"), (19280, b"PK")])
def test_a_header_length_that_looks_like_a_pickle_or_zip_signature_still_loads(target, start):
    """A safetensors file starts with its header length (little-endian u64), so its first two bytes
    can be anything, including 80 02-05 (pickle) or PK (zip): only a file that fails to parse as
    safetensors may be called a pickle."""
    model = VAE(VAEConfig(image_shape=(5, 7), hidden_sizes=(8,), latent_dim=2))
    meta = meta_for_header_length(model, target)
    data = checkpoint_bytes(model, meta)
    assert data[:2] == start
    loaded, loaded_meta = load_checkpoint(data)
    assert loaded_meta == meta and torch.equal(loaded.to_mu.weight, model.to_mu.weight)


# --- atomic saves -----------------------------------------------------------------------------------


def test_save_leaves_no_temp_files_and_creates_folders(tmp_path, model):
    path = tmp_path / "deep" / "er" / "m.safetensors"
    save_checkpoint(path, model)
    save_checkpoint(path, model, META)  # overwriting too
    assert [p.name for p in path.parent.iterdir()] == ["m.safetensors"]
    assert load_checkpoint(path)[1] == META


def test_failed_save_of_nan_weights_keeps_the_previous_file(tmp_path, model):
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, model, META)
    before = path.read_bytes()
    broken = VAE(model.config)
    with torch.no_grad():
        broken.decoder[0].weight[0, 0] = float("nan")
    with pytest.raises(CheckpointError, match="non-finite"):
        save_checkpoint(path, broken)
    assert path.read_bytes() == before and load_checkpoint(path)[1] == META
    assert no_temp_files(tmp_path)


def test_save_that_fails_mid_write_keeps_the_previous_file(tmp_path, model, monkeypatch):
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, model, META)
    before = path.read_bytes()

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(CheckpointError, match="No space left on device; choose another folder"):
        save_checkpoint(path, VAE(model.config))
    monkeypatch.undo()
    assert path.read_bytes() == before and load_checkpoint(path)[1] == META
    assert no_temp_files(tmp_path)


@pytest.mark.parametrize("name", ["m.pt", "m.safetensors.tmp", "m", "safetensors"])
def test_save_refuses_a_name_that_loading_would_refuse(tmp_path, model, name):
    with pytest.raises(CheckpointError, match=r"must end in \.safetensors"):
        save_checkpoint(tmp_path / name, model, META)
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_metadata_outside_the_schema(tmp_path, model):
    with pytest.raises(CheckpointError):
        save_checkpoint(tmp_path / "m.safetensors", model, {"password": "hunter2"})
    assert list(tmp_path.iterdir()) == []


# --- hostile files: one table, each with the message it must give -----------------------------------


def flip_bit(data: bytes, offset: int, bit: int = 0) -> bytes:
    damaged = bytearray(data)
    damaged[offset] ^= 1 << bit
    return bytes(damaged)


def flip_in_header(good: bytes) -> bytes:
    """latent_dim 3 -> 2 in the config: still valid JSON and a valid config, so only the checksum tells."""
    at = good.index(b'\\"latent_dim\\": 3') + len(b'\\"latent_dim\\": ')
    return flip_bit(good, at)


def without_checksum(good: bytes) -> bytes:
    """The same file as saved before checksums existed."""
    n = header_length(good)
    header = json.loads(good[8 : 8 + n])
    del header["__metadata__"][CHECKSUM_KEY]
    return frame(header, good[8 + n :])


def with_tensors(damage):
    """A sealed file whose tensors were changed before sealing: only the tensor checks can catch it."""

    def make(_good: bytes, model: VAE) -> bytes:
        tensors = tensors_of(model)
        damage(tensors)
        return craft(tensors, model.config.to_dict())

    return make


def _delete(name):
    return lambda t: t.pop(name)


def _set(name, value):
    return lambda t: t.__setitem__(name, value(t))


def _nan(t):
    t["decoder.0.weight"][0, 0] = float("nan")


def _inf(t):
    t["to_logvar.bias"][0] = float("-inf")


NOT_ST = "not a safetensors checkpoint"
DAMAGED = "the file is damaged: its contents do not match the checksum saved with it"
HOSTILE_FILES = {  # name: (bytes, or a maker of bytes from a good file and its model; message fragment)
    "zero bytes": (b"", f"0 bytes long: {NOT_ST}"),
    "random bytes": (random.Random(0).randbytes(4096), "it looks like some other file"),
    "random bytes, small header length": (
        struct.pack("<Q", 64) + random.Random(1).randbytes(4088),
        "not a JSON object",
    ),
    "text file": (b"hello, I am a checkpoint. trust me.\n" * 10, "it looks like a text file"),
    "PNG named .safetensors": (b"\x89PNG\r\n\x1a\n" + bytes(100), "it looks like a PNG image"),
    "truncated mid-header": (lambda good, _m: good[:200], "its header claims"),
    "truncated mid-tensor": (lambda good, _m: good[: len(good) - 100], DAMAGED),
    "bit flipped in the tensor data": (lambda good, _m: flip_bit(good, len(good) - 50, 3), DAMAGED),
    "bit flipped in the header": (lambda good, _m: flip_in_header(good), DAMAGED),
    "bit flipped in the checksum": (lambda good, _m: flip_bit(good, good.index(b'"sha256":"') + 12), DAMAGED),
    "header length larger than the file": (
        lambda good, _m: struct.pack("<Q", len(good)) + good[8:],
        "its header claims",
    ),
    "header of 2**63 bytes": (struct.pack("<Q", 2**63) + b"{}" * 8, "it looks like some other file"),
    "header not JSON": (struct.pack("<Q", 8) + b"\xff\xfe{{{{{{", "not a JSON object"),
    "header a JSON list": (struct.pack("<Q", 8) + b"[1,2,3] ", "not a JSON object"),
    "pickle named .safetensors": (pickle.dumps({"state_dict": [1.0, 2.0, 3.0]}), "looks like a pickle"),
    "pickle protocol 2": (pickle.dumps([1, 2, 3], protocol=2), "looks like a pickle"),
    "zip (torch.save)": (b"PK\x03\x04" + bytes(100), "looks like a pickle / torch.save file"),
    "plain safetensors": (lambda _g, model: st_save(tensors_of(model)), "lacks format 'latent-lab-vae/1'"),
    "saved before checksums": (lambda good, _m: without_checksum(good), "has no valid sha256 checksum"),
    "missing tensor": (with_tensors(_delete("to_mu.bias")), "missing ['to_mu.bias'], extra []"),
    "extra tensor": (with_tensors(_set("backdoor.weight", lambda t: torch.zeros(2, 2))), "extra ['backdoor.weight']"),
    "wrong shape": (
        with_tensors(_set("to_mu.weight", lambda t: torch.zeros(4, 8))),
        "to_mu.weight is torch.float32 (4, 8); expected torch.float32 (3, 8)",
    ),
    "transposed": (with_tensors(_set("to_mu.weight", lambda t: t["to_mu.weight"].T.contiguous())), "(8, 3); expected"),
    "wrong dtype": (
        with_tensors(_set("to_mu.weight", lambda t: t["to_mu.weight"].double())),
        "to_mu.weight is torch.float64 (3, 8); expected torch.float32",
    ),
    "NaN weights": (with_tensors(_nan), "decoder.0.weight holds NaN or infinite values"),
    "infinite weights": (with_tensors(_inf), "to_logvar.bias holds NaN or infinite values"),
    "latent_dim 1e9": (
        lambda _g, m: craft(tensors_of(m), {**m.config.to_dict(), "latent_dim": 10**9}),
        "latent_dim must be a whole number from 1 to 512, not 1000000000",
    ),
    "bad JSON in metadata": (lambda _g, m: craft(tensors_of(m), m.config.to_dict(), "{"), "'meta' is not valid JSON"),
    "bad JSON in config": (lambda _g, m: craft(tensors_of(m), "{not json"), "'config' is not valid JSON"),
}


@pytest.mark.parametrize("case", list(HOSTILE_FILES))
def test_hostile_file_gives_its_own_message_and_a_remedy(tmp_path, model, case):
    """The same message whether the file arrives as an upload's bytes or as a .safetensors path."""
    source, fragment = HOSTILE_FILES[case]
    data = source(checkpoint_bytes(model, META), model) if callable(source) else source
    path = tmp_path / "upload.safetensors"
    path.write_bytes(data)
    for arg in (data, path):
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(arg)
        assert fragment in str(err.value)
        assert_says_what_to_do(err.value)


def test_crafted_file_with_the_right_contents_loads(model):
    """The control for the table: craft() and with_tensors() themselves make loadable files."""
    loaded, _ = load_checkpoint(with_tensors(lambda t: None)(b"", model))
    assert torch.equal(loaded.to_logvar.bias, model.to_logvar.bias)


def test_the_checksum_is_sha256_of_the_header_without_it_then_the_tensor_bytes(model):
    """The documented recipe, so other tools can check a file: this test computes it independently."""
    good = checkpoint_bytes(model, META)
    saved = json.loads(good[8 : 8 + header_length(good)])["__metadata__"][CHECKSUM_KEY]
    assert frame(json.loads(good[8 : 8 + header_length(good)]), good[8 + header_length(good) :]) == good
    assert seal(without_checksum(good)) == good and len(saved) == 64


def test_pickle_is_never_unpickled(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("unpickled")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(pickle.dumps({"a": 1}))


def test_path_problems(tmp_path, model):
    for path, fragment in [
        (tmp_path / "absent.safetensors", "No such file"),
        (tmp_path / "model.pt", "only .safetensors checkpoints are accepted"),
        (tmp_path / "folder.safetensors", "Is a directory"),
    ]:
        if path.name.startswith("folder"):
            path.mkdir()
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(path)
        assert fragment in str(err.value)
        assert_says_what_to_do(err.value)


def test_oversized_file_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.safetensors"
    with open(path, "wb") as f:
        f.truncate(MAX_CHECKPOINT_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(CheckpointError, match="limit") as err:
        load_checkpoint(path)
    assert_says_what_to_do(err.value)


# --- hostile metadata -------------------------------------------------------------------------------

GOOD_CONFIG = {"image_shape": [8, 8], "hidden_sizes": [16, 8], "latent_dim": 3, "beta": 2.0, "kind": "vae"}
HOSTILE_CONFIGS = {
    "latent_dim 1e9": {**GOOD_CONFIG, "latent_dim": 1_000_000_000},
    "hidden 1e9": {**GOOD_CONFIG, "hidden_sizes": [1_000_000_000]},
    "a thousand hidden layers": {**GOOD_CONFIG, "hidden_sizes": [16] * 1000},
    "many parameters within each bound": {
        **GOOD_CONFIG,
        "image_shape": [128, 128],
        "hidden_sizes": [4096] * 4,
    },
    "image side 1e9": {**GOOD_CONFIG, "image_shape": [1_000_000_000, 1]},
    "extra config key": {**GOOD_CONFIG, "__class__": "os.system"},
    "missing config key": {k: v for k, v in GOOD_CONFIG.items() if k != "beta"},
    "config a list": [8, 8, 16],
    "kind unknown": {**GOOD_CONFIG, "kind": "exec"},
    "beta negative": {**GOOD_CONFIG, "beta": -1.0},
    "latent_dim a string": {**GOOD_CONFIG, "latent_dim": "3"},
    "hidden a number": {**GOOD_CONFIG, "hidden_sizes": 16},
    "config not JSON": "{not json",
    # values json.loads accepts but int() / float() choke on
    "image side Infinity": json.dumps(GOOD_CONFIG).replace("[8, 8]", "[1e400, 8]"),
    "image side NaN": json.dumps(GOOD_CONFIG).replace("[8, 8]", "[NaN, 8]"),
    "image side a word": {**GOOD_CONFIG, "image_shape": ["eight", 8]},
    "image side fractional": {**GOOD_CONFIG, "image_shape": [8.5, 8]},
    "image side a numeric string": {**GOOD_CONFIG, "image_shape": ["8", "8"]},
    "beta a word": {**GOOD_CONFIG, "beta": "high"},
    "latent_dim with 5000 digits": json.dumps(GOOD_CONFIG).replace('"latent_dim": 3', '"latent_dim": ' + "9" * 5000),
}


@pytest.mark.parametrize("case", list(HOSTILE_CONFIGS))
def test_hostile_config(model, case):
    with pytest.raises(CheckpointError, match="config") as err:
        load_checkpoint(craft(tensors_of(model), HOSTILE_CONFIGS[case]))
    assert_says_what_to_do(err.value)


HOSTILE_META = {
    "extra meta key": {"dataset": "digits", "eval": "__import__('os')"},
    "meta a list": [1, 2],
    "dataset not a string": {"dataset": ["digits"]},
    "dataset name of 10k characters": {"dataset": "x" * 10_000},
    "too many classes": {"class_names": ["c"] * 1000},
    "history too long": {"history": [{"epoch": 1}] * 5000},
    "history not numbers": {"history": [{"epoch": "one"}]},
    "history NaN": '{"history": [{"loss": NaN}]}',
    "history nested": {"history": [{"loss": {"deep": 1}}]},
    "train_config nested": {"train_config": {"lr": [0.1]}},
    "meta not JSON": "][",
    "meta nested 100k deep": '{"history": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "number with 5000 digits": '{"history": [{"epoch": ' + "9" * 5000 + "}]}",
}


@pytest.mark.parametrize("case", list(HOSTILE_META))
def test_hostile_meta(model, case):
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(craft(tensors_of(model), GOOD_CONFIG, HOSTILE_META[case]))
    assert_says_what_to_do(err.value)


def _header_only(header: bytes) -> bytes:
    return struct.pack("<Q", len(header)) + header


OFFSETS_PAST_THE_END = {
    "__metadata__": {"format": FORMAT, "config": json.dumps(GOOD_CONFIG), "meta": "{}"},
    "to_mu.bias": {"dtype": "F32", "shape": [3], "data_offsets": [0, 10**9]},
}
HOSTILE_HEADERS = {
    "no metadata": _header_only(b"{}"),
    "metadata not an object": _header_only(b'{"__metadata__": "x"}'),
    "header nested 100k deep": _header_only(b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    "header number with 5000 digits": _header_only(b'{"a": ' + b"9" * 5000 + b"}"),
    "tensor offsets past the end": seal(_header_only(json.dumps(OFFSETS_PAST_THE_END).encode())),
}


@pytest.mark.parametrize("case", list(HOSTILE_HEADERS))
def test_hostile_header(case):
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(HOSTILE_HEADERS[case])
    assert_says_what_to_do(err.value)


def test_tensor_offsets_past_the_end_are_named_as_damage():
    with pytest.raises(CheckpointError, match="the file is damaged: its tensors cannot be read"):
        load_checkpoint(HOSTILE_HEADERS["tensor offsets past the end"])


def test_a_save_killed_half_way_leaves_the_previous_checkpoint_loadable(tmp_path, model):
    """A real process is SIGKILLed while it writes; the old file must load, and the next save tidies up."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from vae_core.checkpoint import STALE_TEMP_S

    path = tmp_path / "model.safetensors"
    save_checkpoint(path, model, META)
    script = (
        "import os, sys, time\n"
        "import vae_core.checkpoint as c\n"
        "from vae_core import VAE, VAEConfig\n"
        "os.fsync = lambda fd: (print('writing', flush=True), time.sleep(60))\n"  # stall mid-save
        "c.save_checkpoint(sys.argv[1], VAE(VAEConfig(image_shape=(8, 8), hidden_sizes=(16,), latent_dim=3)))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(path)], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    strays = list(tmp_path.glob(".model.safetensors.*.tmp"))
    assert len(strays) == 1  # the killed writer's half-written temp file
    loaded, _ = load_checkpoint(path)  # the previous checkpoint is intact
    assert loaded.config == model.config
    old = time.time() - STALE_TEMP_S - 5
    os.utime(strays[0], (old, old))
    save_checkpoint(path, model, META)
    assert not list(tmp_path.glob(".model.safetensors.*.tmp"))


def test_read_checkpoint_gives_what_load_checkpoint_gives_without_building_a_model(model):
    """The torch-free reader the app's first page uses (ui/state.py): same config, metadata, weights."""
    import numpy as np

    data = checkpoint_bytes(model, META)
    config, meta, weights = read_checkpoint(data)
    loaded, loaded_meta = load_checkpoint(data)
    assert config == loaded.config and meta == loaded_meta == META
    state = loaded.state_dict()
    assert weights.keys() == state.keys() and all(np.array_equal(weights[k], v.numpy()) for k, v in state.items())


@pytest.mark.parametrize("case", [c for c, (_, message) in HOSTILE_FILES.items() if message == DAMAGED])
def test_read_checkpoint_refuses_a_damaged_file_as_load_checkpoint_does(model, case):
    source, fragment = HOSTILE_FILES[case]
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(source(checkpoint_bytes(model, META), model))
    assert fragment in str(err.value)
