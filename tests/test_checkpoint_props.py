"""Property-based tests: whatever a hostile header holds, parsing ends in a model config or CheckpointError."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vae_core import CheckpointError, VAEConfig, load_checkpoint
from vae_core.checkpoint import CHECKSUM_KEY, FORMAT, parse_metadata

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
config_like = st.fixed_dictionaries(
    {},
    optional={
        "image_shape": json_values | st.lists(st.integers(-5, 200), max_size=3),
        "hidden_sizes": json_values | st.lists(st.integers(-5, 5000), max_size=5),
        "latent_dim": json_values | st.integers(-5, 10**12),
        "beta": json_values,
        "kind": st.sampled_from(["vae", "ae", "gan"]) | json_values,
    },
)


REMEDY = "python -m vae_core.train or the app's download button"
SOME_CHECKSUM = "0" * 64  # parse_metadata checks its form; load_checkpoint compares it with the file


def _metadata(config: object, meta: object) -> dict:
    return {"format": FORMAT, "config": json.dumps(config), "meta": json.dumps(meta), CHECKSUM_KEY: SOME_CHECKSUM}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=config_like | json_values, meta=json_values)
def test_any_metadata_gives_a_config_or_a_checkpoint_error(config, meta) -> None:
    try:
        cfg, parsed = parse_metadata(_metadata(config, meta))
    except CheckpointError as exc:
        assert REMEDY in str(exc)
        return
    assert isinstance(cfg, VAEConfig) and isinstance(parsed, dict)


@settings(max_examples=200, deadline=None)
@given(raw=st.dictionaries(st.text(max_size=12), st.text(max_size=40), max_size=4) | json_values)
def test_any_raw_metadata_object_is_refused_cleanly(raw) -> None:
    try:
        parse_metadata(raw)
    except CheckpointError:
        pass


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=2048))
def test_any_bytes_load_or_raise_checkpoint_error(data) -> None:
    try:
        load_checkpoint(data)
    except CheckpointError:
        pass


@settings(max_examples=100, deadline=None)
@given(checksum=st.none() | st.integers() | st.text(max_size=70))
def test_metadata_without_a_well_formed_checksum_is_refused(checksum) -> None:
    metadata = _metadata({"image_shape": [8, 8], "hidden_sizes": [16], "latent_dim": 2, "beta": 1.0, "kind": "vae"}, {})
    metadata[CHECKSUM_KEY] = checksum
    if checksum is None:
        del metadata[CHECKSUM_KEY]
    try:
        parse_metadata(metadata)
    except CheckpointError as exc:
        assert "checksum" in str(exc)
    else:
        assert isinstance(checksum, str) and len(checksum) == 64 and set(checksum) <= set("0123456789abcdef")
