"""vae_core/train.py: training on digits, callbacks, stopping, divergence, evaluate, the bundled models, the CLI."""

from __future__ import annotations

import copy
import importlib
import json
import math
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from vae_core import (
    VAE,
    ConfigError,
    Dataset,
    LossTerms,
    TrainingDivergedError,
    VAEConfig,
    load_checkpoint,
    vae_loss,
)
from vae_core.backprop import FlatStep
from vae_core.train import StepInfo, TrainConfig, evaluate, seeded_model, train

REPO_ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = REPO_ROOT / "models"
TRAIN_MODULE = importlib.import_module("vae_core.train")  # the module, whatever `vae_core.train` is bound to
HISTORY_KEYS = {"epoch", "train_recon", "train_kl", "train_loss", "seconds", "test_recon", "test_kl", "test_loss"}


def all_finite(model: VAE) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def weights(model: VAE) -> dict[str, torch.Tensor]:
    return copy.deepcopy(model.state_dict())


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- TrainConfig ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"epochs": 0},
        {"epochs": -1},
        {"epochs": 1.5},
        {"epochs": True},
        {"lr": 0},
        {"lr": -1},
        {"lr": float("nan")},
        {"lr": float("inf")},
        {"lr": 1000.0},
        {"lr": True},
        {"batch_size": 0},
        {"batch_size": True},
        {"batch_size": 64.0},
        {"seed": -1},
        {"seed": 2**63},
        {"seed": True},
        {"seed": 1.0},
        {"lr_schedule": "step"},
        {"device": "gpu"},
        {"device": "auto"},  # resolved by pick_device before a config is made
        {"precision": "fp16"},
        {"precision": None},
        *({"device": d} for d in ("cuda", "mps") if not TRAIN_MODULE._device_available(d)),
    ],
    ids=repr,
)
def test_train_config_out_of_range(kwargs):
    with pytest.raises(ConfigError):
        TrainConfig(**kwargs)


def test_train_config_accepts_the_seed_range_ends():
    assert TrainConfig(seed=0).seed == 0 and TrainConfig(seed=2**63 - 1).seed == 2**63 - 1


@pytest.mark.parametrize("device", [d for d in ("cuda", "mps") if not TRAIN_MODULE._device_available(d)])
def test_an_unavailable_device_says_so_and_what_to_use(device):
    with pytest.raises(ConfigError, match=f"'{device}' is not available.*--device cpu or --device auto"):
        TRAIN_MODULE.pick_device(device)


def test_auto_device_is_one_this_machine_has():
    assert TrainConfig(device=TRAIN_MODULE.pick_device("auto")).device in TRAIN_MODULE.DEVICES


def test_train_config_defaults_are_the_classic_example():
    cfg = TrainConfig()
    assert (cfg.epochs, cfg.lr, cfg.batch_size, cfg.lr_schedule) == (10, 1e-3, 128, "constant")


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_takes_bf16_only_on_a_cpu_that_has_it(monkeypatch, native):
    monkeypatch.setattr(TRAIN_MODULE, "native_bf16", lambda: native)
    assert TRAIN_MODULE.pick_precision("auto", "cpu") == ("bf16" if native else "fp32")
    assert TRAIN_MODULE.pick_precision("auto", "cuda") == "fp32"
    assert TRAIN_MODULE.pick_precision("fp32", "cpu") == "fp32" and TRAIN_MODULE.pick_precision("bf16", "cpu") == "bf16"
    assert TrainConfig().precision == "fp32"  # the library's default is exact and the same everywhere
    assert TrainConfig(precision="auto").resolved() == TrainConfig(precision="bf16" if native else "fp32")


def test_the_cli_warns_when_bf16_would_be_emulated(monkeypatch, capsys):
    parser = TRAIN_MODULE._parser()
    argv = ["--dataset", "digits", "--device", "cpu", "--out", "x.safetensors"]
    for native, precision, warned in [(False, "bf16", True), (True, "bf16", False), (False, "auto", False)]:
        monkeypatch.setattr(TRAIN_MODULE, "native_bf16", lambda native=native: native)
        config = TRAIN_MODULE._train_config(parser, parser.parse_args([*argv, "--precision", precision]))
        assert config.precision == ("bf16" if precision == "bf16" or native else "fp32")
        assert ("emulated and many times slower" in capsys.readouterr().err) == warned


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_train_runs_its_multiplies_in_the_configured_precision(monkeypatch, digits_train, precision):
    seen = []
    real = TRAIN_MODULE.FlatStep

    def spy(*args, **kwargs):
        step = real(*args, **kwargs)
        seen.append(step.mm_flat.dtype)
        return step

    monkeypatch.setattr(TRAIN_MODULE, "FlatStep", spy)
    model = VAE(VAEConfig(image_shape=(8, 8), hidden_sizes=(32,), latent_dim=2))
    train(model, digits_train, None, TrainConfig(epochs=1, precision=precision))
    assert seen == [torch.bfloat16 if precision == "bf16" else torch.float32]
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the weights themselves stay float32


def test_bf16_training_reaches_the_float32_test_loss(digits_train, digits_test):
    """Mixed precision is a speed-up, not a different model: the same run in both ends within a
    fraction of a nat (the test loss is about 24 nats here, and training takes it from about 44)."""
    losses = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = VAE(VAEConfig(image_shape=(8, 8), hidden_sizes=(128,), latent_dim=4))
        cfg = TrainConfig(epochs=6, lr=3e-3, batch_size=64, precision=precision)
        losses[precision] = train(model, digits_train, digits_test, cfg)[-1]["test_loss"]
    assert losses["bf16"] == pytest.approx(losses["fp32"], abs=0.5), losses


# --- training on digits -----------------------------------------------------------------------------


def test_short_training_lowers_the_test_loss(digits_train, digits_test):
    torch.manual_seed(0)
    model = VAE(VAEConfig(image_shape=(8, 8), hidden_sizes=(128,), latent_dim=4))
    x_test = digits_test.as_float()
    before = evaluate(model, x_test)["loss"]
    history = train(model, digits_train, digits_test, TrainConfig(epochs=4, lr=3e-3, batch_size=64))
    after = evaluate(model, x_test)["loss"]
    assert after < before - 5, (before, after)
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert all(set(h) == HISTORY_KEYS for h in history)
    assert history[-1]["test_loss"] == pytest.approx(after, rel=1e-6)  # evaluate() is seeded
    assert history[-1]["test_loss"] == pytest.approx(history[-1]["test_recon"] + history[-1]["test_kl"])
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert all(h["seconds"] > 0 for h in history)
    assert not model.training and all_finite(model)


def test_callbacks_report_progress(digits_train, digits_test, small_model):
    steps: list[StepInfo] = []
    records: list[dict] = []
    cfg = TrainConfig(epochs=2, batch_size=100)
    history = train(small_model, digits_train, digits_test, cfg, on_step=steps.append, on_epoch_end=records.append)
    assert records == history and len(history) == 2
    per_epoch = math.ceil(len(digits_train) / 100)
    assert steps and all(s.steps_per_epoch == per_epoch and s.total_steps == 2 * per_epoch for s in steps)
    assert {s.epoch for s in steps} == {1, 2} and steps[-1].step == per_epoch
    assert steps[-1].fraction == pytest.approx(1.0) and steps[-1].eta_s == pytest.approx(0.0)
    assert all(math.isfinite(s.loss) and s.loss > 0 for s in steps)
    elapsed = [s.elapsed_s for s in steps]
    assert elapsed == sorted(elapsed)


def test_without_a_test_set_the_history_has_train_terms_only(digits_train, small_model):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. torch's "lr_scheduler.step() before optimizer.step()"
        history = train(small_model, digits_train, None, TrainConfig(epochs=1, lr_schedule="cosine"))
    assert set(history[0]) == {"epoch", "train_recon", "train_kl", "train_loss", "seconds"}


def test_the_cosine_schedule_is_torchs_cosine_annealing():
    ours = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=3e-3)
    theirs = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=3e-3)
    schedule = TRAIN_MODULE.CosineSchedule(ours, 10)
    reference = torch.optim.lr_scheduler.CosineAnnealingLR(theirs, T_max=10)
    lrs = []
    for _ in range(10):
        theirs.step()
        schedule.step()
        reference.step()
        assert ours.param_groups[0]["lr"] == pytest.approx(theirs.param_groups[0]["lr"], rel=1e-9, abs=1e-15)
        lrs.append(ours.param_groups[0]["lr"])
    assert lrs == sorted(lrs, reverse=True) and lrs[4] == pytest.approx(1.5e-3) and lrs[-1] == pytest.approx(0.0)


def test_same_seed_same_weights(digits_train):
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = VAE(VAEConfig(image_shape=(8, 8), hidden_sizes=(16,), latent_dim=2))
        train(model, digits_train, None, TrainConfig(epochs=1, seed=7))
        runs.append(weights(model))
    assert same_weights(*runs)


def test_image_shape_mismatch_is_a_config_error(digits_train):
    with pytest.raises(ConfigError, match="28"):
        train(VAE(VAEConfig(hidden_sizes=(16,), latent_dim=2)), digits_train, None, TrainConfig(epochs=1))


def test_test_split_shape_mismatch_is_the_same_config_error_before_training(digits_train, small_model):
    images, labels = torch.zeros(5, 4, 4, dtype=torch.uint8), torch.zeros(5, dtype=torch.int64)
    odd_test = Dataset("other", images, labels, ["x"], "test")
    start = weights(small_model)
    with pytest.raises(ConfigError, match=r"expects \(8, 8\) images but the test split of 'other' has \(4, 4\)"):
        train(small_model, digits_train, odd_test, TrainConfig(epochs=1))
    assert same_weights(start, weights(small_model))  # refused before the first step


# --- stopping ---------------------------------------------------------------------------------------


def test_should_stop_mid_epoch_returns_the_model_trained_so_far(digits_train, small_model):
    start = weights(small_model)
    asked = 0

    def stop_after_five() -> bool:
        nonlocal asked
        asked += 1
        return asked >= 5

    history = train(small_model, digits_train, None, TrainConfig(epochs=50, batch_size=32), should_stop=stop_after_five)
    assert history == []  # no epoch completed
    assert asked == 5  # asked once per step, and nothing ran after the answer
    assert not same_weights(start, weights(small_model)) and all_finite(small_model)
    assert not small_model.training


def test_should_stop_after_an_epoch_keeps_that_epoch(digits_train, digits_test, small_model):
    records: list[dict] = []
    cfg = TrainConfig(epochs=50, batch_size=256)

    def stop() -> bool:
        return len(records) >= 2

    history = train(small_model, digits_train, digits_test, cfg, on_epoch_end=records.append, should_stop=stop)
    assert [h["epoch"] for h in history] == [1, 2] and records == history


# --- every image once per epoch ---------------------------------------------------------------------


def index_coded(n: int) -> Dataset:
    """4x4 images whose first two pixels spell their own index, so a batch tells which images it holds."""
    images = torch.zeros(n, 4, 4, dtype=torch.uint8)
    images[:, 0, 0] = torch.arange(n) % 256
    images[:, 0, 1] = torch.arange(n) // 256
    return Dataset("coded", images, torch.zeros(n, dtype=torch.int64), ["x"], "train")


def image_ids(x: torch.Tensor) -> list[int]:
    pixels = (x.flatten(1)[:, :2] * 255).round().long()
    return (pixels[:, 0] + 256 * pixels[:, 1]).tolist()


@pytest.mark.parametrize(("n", "batch_size"), [(300, 32), (103, 10), (50, 128)])
def test_every_image_exactly_once_per_epoch(monkeypatch, n, batch_size):
    model = VAE(VAEConfig(image_shape=(4, 4), hidden_sizes=(8,), latent_dim=2))
    batches: list[list[int]] = []
    epochs: list[list[list[int]]] = []
    real_step = FlatStep.step

    def recording_step(self, x: torch.Tensor):
        batches.append(image_ids(x))
        return real_step(self, x)

    def end_epoch(_record: dict) -> None:
        epochs.append(list(batches))
        batches.clear()

    monkeypatch.setattr(FlatStep, "step", recording_step)  # one call per training batch
    train(model, index_coded(n), None, TrainConfig(epochs=3, batch_size=batch_size), on_epoch_end=end_epoch)
    assert len(epochs) == 3
    for epoch in epochs:
        assert sorted(i for batch in epoch for i in batch) == list(range(n))
        assert [len(b) for b in epoch[:-1]] == [batch_size] * (len(epoch) - 1)
    orders = [[i for batch in epoch for i in batch] for epoch in epochs]
    if n > batch_size:
        assert orders[0] != orders[1] != orders[2]  # reshuffled every epoch


# --- divergence -------------------------------------------------------------------------------------


def test_learning_rate_ten_finishes_finite_or_says_the_learning_rate_is_too_high(digits_train, digits_test):
    torch.manual_seed(0)
    model = VAE(VAEConfig(image_shape=(8, 8), hidden_sizes=(64,), latent_dim=2))
    try:
        history = train(model, digits_train, digits_test, TrainConfig(epochs=2, lr=10.0))
    except TrainingDivergedError as exc:
        assert "learning rate" in str(exc)
    else:
        assert len(history) == 2
        assert all(math.isfinite(h[k]) for h in history for k in ("train_loss", "test_loss"))
    assert all_finite(model)


def test_non_finite_losses_in_a_row_raise_and_leave_the_weights_alone(monkeypatch, digits_train, small_model):
    real = FlatStep._forward_backward  # the loss by kernels.c or by torch's calls: both go through here

    def nan_loss(self, *args, **kwargs) -> LossTerms:
        terms = real(self, *args, **kwargs)
        return LossTerms(terms.reconstruction, terms.kl, terms.total * float("nan"))

    monkeypatch.setattr(FlatStep, "_forward_backward", nan_loss)
    start = weights(small_model)
    with pytest.raises(TrainingDivergedError) as err:
        train(small_model, digits_train, None, TrainConfig(epochs=1, lr=0.5))
    assert "learning rate" in str(err.value) and "0.5" in str(err.value)
    assert same_weights(start, weights(small_model))


def test_a_non_finite_gradient_never_leaves_nan_weights(monkeypatch, digits_train, small_model):
    """An overflowing gradient (simulated in the encoder's backward pass) with a finite loss: whatever
    train() does about it, the model it hands back - normally or with TrainingDivergedError - has
    finite weights, as its docstring promises ("the weights keep their last finite values")."""
    backward_calls = 0
    real_backward = FlatStep._encoder_backward

    def overflow_once(self, *args) -> None:
        nonlocal backward_calls
        backward_calls += 1
        real_backward(self, *args)
        if backward_calls == 3:
            self.head_gw.fill_(float("inf"))

    monkeypatch.setattr(FlatStep, "_encoder_backward", overflow_once)
    try:
        train(small_model, digits_train, None, TrainConfig(epochs=1, batch_size=64))
    except TrainingDivergedError as exc:
        assert "learning rate" in str(exc)
    assert all_finite(small_model)


# --- evaluate ---------------------------------------------------------------------------------------


def test_evaluate_is_the_mean_loss_per_image(digits_train):
    """A plain autoencoder is deterministic, so evaluate() over two EVAL_BATCH chunks equals one big sum."""
    torch.manual_seed(0)
    model = VAE(VAEConfig(image_shape=(8, 8), hidden_sizes=(16,), latent_dim=2, kind="ae"))
    x = digits_train.as_float()
    assert len(x) > TRAIN_MODULE.EVAL_BATCH
    with torch.no_grad():
        mu, logvar = model.encode(x)
        terms = vae_loss(x, model.decode_logits(mu), mu, logvar, beta=0.0)
    result = evaluate(model, x)
    assert result["loss"] == pytest.approx(terms.total.item() / len(x), rel=1e-5)
    assert result["recon"] == pytest.approx(result["loss"], rel=1e-9) and result["kl"] == 0.0


def test_a_beta_zero_vae_reports_its_real_kl(digits_train, digits_test):
    """beta = 0 drops the KL from the objective, not from the report: the history still shows it."""
    torch.manual_seed(0)
    model = VAE(VAEConfig(image_shape=(8, 8), hidden_sizes=(16,), latent_dim=2, beta=0.0))
    history = train(model, digits_train, digits_test, TrainConfig(epochs=1))
    record = history[-1]
    assert record["test_kl"] > 0 and record["train_kl"] > 0
    assert record["test_loss"] == record["test_recon"] and record["train_loss"] == record["train_recon"]


def test_a_plain_autoencoder_reports_no_kl(digits_train, digits_test):
    torch.manual_seed(0)
    model = VAE(VAEConfig(image_shape=(8, 8), hidden_sizes=(16,), latent_dim=2, kind="ae"))
    record = train(model, digits_train, digits_test, TrainConfig(epochs=1))[-1]
    assert record["test_kl"] == 0.0 and record["train_kl"] == 0.0
    assert record["test_loss"] == record["test_recon"]


def test_evaluate_restores_the_mode_and_the_global_rng(digits_test, small_model):
    small_model.train()
    torch.manual_seed(42)
    expected = torch.rand(3)
    torch.manual_seed(42)
    first = evaluate(small_model, digits_test.as_float())
    assert torch.equal(torch.rand(3), expected)  # evaluate's fixed seed does not leak out
    assert small_model.training
    assert evaluate(small_model, digits_test.as_float()) == first


# --- the bundled MNIST models -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "limit"), [("mnist-vae-z20.safetensors", 103.0), ("mnist-vae-z2.safetensors", 150.0)]
)
def test_bundled_model_test_loss(mnist_test, filename, limit):
    path = MODELS_DIR / filename
    assert path.is_file(), f"{path} is missing; build it with `bash models/make.sh`"
    model, meta = load_checkpoint(path)
    assert meta["dataset"] == "mnist" and model.config.image_shape == (28, 28)
    loss = evaluate(model, mnist_test.as_float())["loss"]
    assert loss <= limit, f"{filename}: MNIST test loss {loss:.2f} nats > {limit}"


# --- the command line -------------------------------------------------------------------------------

CLI_RUNS = {  # name: (arguments after the defaults, text the output must hold)
    "good": ([], ""),
    "epochs abc": (["--epochs", "abc"], "invalid int value"),
    "epochs 0": (["--epochs", "0"], "epochs"),
    "out x.pt": (["--out", "{tmp}/x.pt"], ".safetensors"),
    "out under a file": (["--out", "{tmp}/a-file/x.safetensors", "--hidden", "8"], "a-file"),
    "device gpu": (["--device", "gpu"], "invalid choice: 'gpu'"),
    "seed -1": (["--seed", "-1"], "seed must be a whole number from 0"),
    "seed 2**63": (["--seed", str(2**63)], "seed must be a whole number from 0"),
    "seed 1.5": (["--seed", "1.5"], "invalid int value"),
    "precision fp16": (["--precision", "fp16"], "invalid choice"),
    **{  # this CPU-only machine has neither; where one is present the case does not apply
        f"device {d}": (["--device", d], f"'{d}' is not available on this machine")
        for d in ("cuda", "mps")
        if not TRAIN_MODULE._device_available(d)
    },
}
BAD_RUNS = [name for name in CLI_RUNS if name != "good"]


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """Every command line at once, since each one pays about 2 s to import torch; then their results."""
    tmp = tmp_path_factory.mktemp("cli")
    (tmp / "a-file").write_text("a file where a folder should be")
    procs = {}
    for name, (extra, _) in CLI_RUNS.items():
        out = tmp / name.replace(" ", "-") / "x.safetensors"  # a folder that does not exist yet
        args = ["--dataset", "digits", "--epochs", "1", "--latent-dim", "2", "--out", str(out)]
        args += [a.format(tmp=tmp) for a in extra]  # a repeated flag: argparse keeps the last
        cmd = [sys.executable, "-m", "vae_core.train", *args]
        procs[name] = (
            cmd,
            out,
            subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
        )
    results = {}
    for name, (cmd, out, proc) in procs.items():
        stdout, stderr = proc.communicate(timeout=180)
        results[name] = (subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr), out)
    return results


@pytest.mark.slow
def test_cli_trains_saves_and_prints_json(cli_runs):
    proc, out = cli_runs["good"]
    assert proc.returncode == 0, proc.stderr[-1500:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"test_loss", "epoch_s", "samples_per_s"} <= set(result)
    assert math.isfinite(result["test_loss"]) and 0 < result["test_loss"] < 2 * 64 * math.log(2)
    assert len(result["epoch_s"]) == 1 and result["samples_per_s"] > 0
    model, meta = load_checkpoint(out)
    assert model.config.latent_dim == 2 and model.config.image_shape == (8, 8)
    assert meta["dataset"] == "digits" and len(meta["history"]) == 1
    assert meta["history"][-1]["test_loss"] == pytest.approx(result["test_loss"])
    assert meta["train_config"]["precision"] == TRAIN_MODULE.pick_precision("auto", "cpu")  # what ran, not "auto"


@pytest.mark.slow
def test_cli_stderr_has_no_runpy_warning(cli_runs):
    """If `vae_core/__init__` imports vae_core.train eagerly, `python -m vae_core.train` runs the module
    a second time as __main__ and Python prints a RuntimeWarning on every run."""
    proc, _ = cli_runs["good"]
    assert "RuntimeWarning" not in proc.stderr, proc.stderr[:400]


@pytest.mark.slow
@pytest.mark.parametrize("case", BAD_RUNS)
def test_cli_bad_arguments_exit_2_without_a_traceback(cli_runs, case):
    proc, out = cli_runs[case]
    assert "Traceback" not in proc.stderr, proc.stderr[-1500:]
    assert proc.returncode == 2, proc.stderr[-800:]
    assert "error" in proc.stderr and CLI_RUNS[case][1] in proc.stderr
    assert not out.exists()
    if case.startswith("device") and case != "device gpu":
        assert "use --device cpu or --device auto" in proc.stderr


def test_learning_rate_10_on_digits_is_reported_as_divergence(tmp_path) -> None:
    import subprocess
    import sys

    out = tmp_path / "m.safetensors"
    cmd = [sys.executable, "-m", "vae_core.train", "--dataset", "digits", "--epochs", "2", "--latent-dim", "2",
           "--lr", "10", "--out", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert proc.returncode == 2
    assert "learning rate 10 is most likely too high" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


def test_seeded_model_draws_the_same_weights_whatever_other_threads_do_to_the_global_generator() -> None:
    """Other visitors' threads seed and draw from torch's global generator (evaluate() does): the initial
    weights come from a generator of their own, drawn as nn.Linear draws them."""
    import threading

    from vae_core.train import seeded_model

    config = VAEConfig(image_shape=(8, 8), hidden_sizes=(16,), latent_dim=2)
    reference = seeded_model(config, 1).state_dict()
    stop = threading.Event()

    def meddle() -> None:
        while not stop.is_set():
            torch.manual_seed(12345)
            torch.rand(64)

    other = threading.Thread(target=meddle)
    other.start()
    try:
        models = [seeded_model(config, 1).state_dict() for _ in range(200)]
    finally:
        stop.set()
        other.join()
    assert all(torch.equal(m[k], reference[k]) for m in models for k in reference)
    assert not torch.equal(seeded_model(config, 2).state_dict()["to_mu.weight"], reference["to_mu.weight"])
    bound = 1 / 16**0.5  # nn.Linear's own ranges: ±1/sqrt(fan_in) for a 16-input layer's weights and bias
    assert reference["to_mu.weight"].abs().max() <= bound and reference["to_mu.bias"].abs().max() <= bound


def test_a_run_is_the_same_while_other_threads_use_torchs_generator(digits_train, digits_test):
    """Another visitor's page seeding or drawing from torch's global generator (evaluate() did both)
    while a model trains must not change what it learns: the noise has a generator of its own."""
    import threading

    config = VAEConfig(image_shape=(8, 8), hidden_sizes=(32,), latent_dim=2)
    settings = TrainConfig(epochs=2, seed=5)
    alone = seeded_model(config, 0)
    train(alone, digits_train, digits_test, settings)

    done = threading.Event()
    draws = []

    def neighbour() -> None:
        other = seeded_model(config, 1)
        while not done.is_set():
            torch.manual_seed(len(draws))
            draws.append(float(torch.randn(3).sum()))
            evaluate(other, digits_test.as_float()[:64])

    thread = threading.Thread(target=neighbour)
    thread.start()
    try:
        crowded = seeded_model(config, 0)
        train(crowded, digits_train, digits_test, settings)
    finally:
        done.set()
        thread.join()
    assert len(draws) > 10  # the neighbour really ran beside the training
    assert same_weights(weights(alone), weights(crowded))


def test_evaluate_gives_the_same_loss_from_any_global_generator_state(digits_test, small_model):
    data = digits_test.as_float()[:200]
    torch.manual_seed(0)
    first = evaluate(small_model, data)
    torch.manual_seed(99)
    state = torch.get_rng_state()
    assert evaluate(small_model, data) == first
    assert torch.equal(torch.get_rng_state(), state)  # and leaves the global generator alone
