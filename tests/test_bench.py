"""vae_core/bench.py: the FLOP count by hand, the classic loss, targets, flags, and a quick run on real MNIST."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from vae_core import VAE, VAEConfig, bench, vae_loss

# 784-400-20 by hand: encoder 784x400, mu and logvar heads 400x20 each, decoder 20x400 and 400x784.
HAND_MULTIPLY_ADDS = 784 * 400 + 400 * 20 + 400 * 20 + 20 * 400 + 400 * 784
TRAIN_FLOPS = 2 * (3 * HAND_MULTIPLY_ADDS - 784 * 400)  # the first layer's input gradient is not needed
JSON_KEYS = {"machine", "quick", "loadavg_1min_end", "training", "matmul", "projections", "app", "targets"}


def test_model_flops_match_a_hand_count() -> None:
    """Training: forward, weight gradients, input gradients but the image's: the issue's 3.3 MFLOP."""
    model = VAE(VAEConfig())
    assert bench.model_flops_per_image(model, training=False) == 2 * HAND_MULTIPLY_ADDS == 1_302_400
    assert bench.model_flops_per_image(model) == TRAIN_FLOPS == 3_280_000


def test_step_matmuls_add_up_to_the_training_flops() -> None:
    model = VAE(VAEConfig())
    shapes = bench.step_matmul_shapes(model, batch=128)
    assert len(shapes) == 3 * 5 - 1  # forward, input and weight gradient for each Linear; no d(image)
    assert shapes[:2] == [(128, 784, 400), (400, 128, 784)]  # the first layer: forward, weight gradient
    assert sum(2 * m * k * n for m, k, n in shapes) == 128 * bench.model_flops_per_image(model)
    assert bench.matmul_gflops([(32, 64, 16)], seconds=0.01) > 0
    assert bench.matmul_gflops([(32, 64, 16)], seconds=0.01, dtype=torch.bfloat16) > 0


def test_classic_loss_is_the_projects_loss() -> None:
    torch.manual_seed(0)
    x = torch.rand(8, 1, 28, 28)
    logits, mu, logvar = torch.randn(8, 1, 28, 28), torch.randn(8, 20), torch.randn(8, 20)
    classic = bench.classic_loss(torch.sigmoid(logits), x, mu, logvar)
    assert torch.allclose(classic, vae_loss(x, logits, mu, logvar).total, rtol=1e-4)


def test_targets_say_which_hold() -> None:
    result = {"training": {"speedup": 4.0, "test_loss_minus_classic": 2.0}, "app": {"first_scatter_s": 1.0}}
    targets = bench.check_targets(result)
    assert targets["train_speedup_vs_classic"]["ok"]
    assert not targets["test_loss_minus_classic"]["ok"]
    assert targets["app_first_scatter_s"]["ok"]
    assert "tsne_s" not in targets  # not measured, not judged


def test_proc_readers() -> None:
    if not Path("/proc/self/status").is_file():
        pytest.skip("no /proc on this system")
    mem = bench.rss_mb(os.getpid())
    assert 0 < mem["VmRSS"] <= mem["VmHWM"]
    _, timing = bench._measured(sum, range(10**6))
    assert timing["s"] > 0 and 0.0 <= timing["others_cpu"] <= 1.0


@pytest.mark.parametrize("argv", [[], ["--data-dir", ".", "--epochs", "0"], ["--data-dir", "/no/such/dir"]])
def test_bad_flags_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.main(argv)
    assert exc.value.code == 2


def test_quick_run_ends_with_one_json_line(mnist_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    skips = ["--skip-app", "--skip-sklearn-tsne", "--skip-umap"]
    argv = ["--data-dir", str(mnist_dir), "--epochs", "1", "--quick", *skips]
    assert bench.main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert set(result) == JSON_KEYS
    assert result["training"]["n_train"] == bench.QUICK_TRAIN
    assert result["training"]["classic"]["test"]["loss"] > 0
    assert result["matmul"]["flops_per_train_image"] == TRAIN_FLOPS
    assert result["training"]["precision"] == result["matmul"]["precision"] == bench.training_precision()
    assert result["matmul"]["project_fraction_of_fp32_step_ceiling"] > 0
    assert result["projections"]["n_points"] == bench.QUICK_POINTS
    assert set(result["projections"]) >= {"pca", "tsne"}
    assert result["projections"]["tsne"]["params"]["perplexity"] > 0
    assert len(lines) > 5  # the human table comes first


def test_a_failing_subprocess_section_is_recorded_not_raised() -> None:
    def app_without_browser() -> dict:
        raise RuntimeError("chromium is missing")

    assert bench._keep_going(app_without_browser) == {"error": "RuntimeError: chromium is missing"}
    result = {"machine": bench.machine_info(), "loadavg_1min_end": 0.0, "app": {"error": "RuntimeError: x"}}
    result["targets"] = bench.check_targets(result)
    assert ("app", "RuntimeError: x") in bench.table_rows(result)
