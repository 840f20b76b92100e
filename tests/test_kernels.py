"""vae_core/kernels.c: the same numbers as torch's calls, and a build that falls back instead of failing.

tests/test_backprop.py runs every gradient test through both paths; these tests check the kernels on
their own, at the edges (extreme and non-finite logits, the clamp's bounds), and the build."""

from __future__ import annotations

import logging
import math
import tempfile

import pytest
import torch
import torch.nn.functional as F

from vae_core import VAE, VAEConfig, kernels
from vae_core.backprop import FlatStep
from vae_core.model import LOGVAR_RANGE

DTYPES = [torch.bfloat16, torch.float32]


@pytest.fixture
def k(monkeypatch):
    monkeypatch.delenv("LATENT_LAB_KERNELS", raising=False)
    if kernels._compiler() is None:
        pytest.skip("no C compiler on this machine")
    built = kernels.load()
    assert built is not None
    return built


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """load() builds anew into an empty cache folder (and forgets that build afterwards)."""
    monkeypatch.delenv("LATENT_LAB_KERNELS", raising=False)
    monkeypatch.setenv("LATENT_LAB_KERNEL_DIR", str(tmp_path / "kernels"))
    kernels._load.cache_clear()
    yield tmp_path / "kernels"
    kernels._load.cache_clear()


def logits_and_images(dtype: torch.dtype, n: int = 5000) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    logits = torch.cat(
        [torch.randn(n, generator=gen) * 6, torch.tensor([0.0, 1e-8, -1e-8, 40.0, -40.0, 88.0, -88.0, 200.0, -200.0])]
    )
    x = torch.rand(len(logits), generator=gen)
    x[:100] = (x[:100] > 0.5).float()  # binarised pixels too
    return logits.to(dtype), x


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_is_torchs_loss_and_gradient(k, dtype):
    logits, x = logits_and_images(dtype)
    grad = torch.empty_like(logits)
    loss = k.bce(logits, x, grad)
    exact = logits.double()
    want = F.binary_cross_entropy_with_logits(exact, x.double(), reduction="sum").item()
    assert loss == pytest.approx(want, rel=1e-6)
    want_grad = (torch.sigmoid(exact) - x.double()).to(dtype)  # rounded once, to the multiplies' dtype
    ulp = 2**-8 if dtype == torch.bfloat16 else 2**-23
    assert torch.allclose(grad.double(), want_grad.double(), rtol=ulp, atol=1e-7)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_logit_makes_the_loss_non_finite(k, bad):
    logits, x = logits_and_images(torch.float32, n=100)
    logits[7] = bad
    x[7] = 0.5
    assert not math.isfinite(k.bce(logits, x, torch.empty_like(logits)))


def torch_head(head: torch.Tensor, eps: torch.Tensor, dz: torch.Tensor, beta: float):
    """The latent head by torch's calls, in float64: KL, z and d/d[mu | raw logvar]."""
    zd = eps.shape[1]
    mu, raw = head[:, :zd].double(), head[:, zd:].double()
    logvar = raw.clamp(*LOGVAR_RANGE)
    var, noise = logvar.exp(), (0.5 * logvar).exp() * eps.double()
    kl = 0.5 * (mu**2 + var - logvar - 1).sum().item()
    inside = (raw > LOGVAR_RANGE[0]) & (raw < LOGVAR_RANGE[1])  # clamp's autograd: no gradient at a bound
    dlogvar = torch.where(inside, 0.5 * beta * (var - 1) + 0.5 * dz.double() * noise, 0.0)
    return kl, mu + noise, torch.cat([dz.double() + beta * mu, dlogvar], 1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("beta", [1.0, 4.0, 0.0])
def test_the_latent_head_is_torchs_clamp_included(k, dtype, beta):
    gen = torch.Generator().manual_seed(1)
    b, zd = 64, 5
    head = torch.randn(b, 2 * zd, generator=gen) * 3
    head[:, zd:] *= 4  # many raw log-variances beyond the clamp's range
    head[0, zd], head[1, zd + 1] = LOGVAR_RANGE  # and two exactly at its bounds
    head = head.to(dtype)
    eps, dz = torch.randn(b, zd, generator=gen), torch.randn(b, zd, generator=gen).to(dtype)
    saved, z, dhead = torch.empty(4, b, zd), torch.empty(b, zd, dtype=dtype), torch.empty(b, 2 * zd, dtype=dtype)
    kl = k.head_forward(head, eps, saved, z, *LOGVAR_RANGE)
    k.head_backward(dz, saved, dhead, beta, *LOGVAR_RANGE)
    want_kl, want_z, want_dhead = torch_head(head, eps, dz, beta)
    rtol = 2**-8 if dtype == torch.bfloat16 else 1e-5
    assert kl == pytest.approx(want_kl, rel=1e-5)
    assert torch.allclose(z.double(), want_z, rtol=rtol, atol=1e-6)
    assert torch.allclose(dhead.double(), want_dhead, rtol=rtol, atol=1e-6)
    assert dhead[0, zd] == 0 and dhead[1, zd + 1] == 0


def test_wrong_arguments_are_refused_before_c_sees_them(k):
    logits = torch.zeros(4, 6)
    with pytest.raises(ValueError, match="contiguous"):
        k.bce(logits.t(), torch.zeros(6, 4), torch.zeros(6, 4))
    with pytest.raises(ValueError, match="same size"):
        k.bce(logits, torch.zeros(4, 5), torch.zeros(4, 6))
    with pytest.raises(TypeError, match="float64"):
        k.bce(logits.double(), torch.zeros(4, 6), torch.zeros(4, 6, dtype=torch.float64))
    with pytest.raises(ValueError, match="shapes"):
        k.head_forward(torch.zeros(4, 6), torch.zeros(4, 2), torch.zeros(4, 4, 2), torch.zeros(4, 2), -1.0, 1.0)


def test_training_with_and_without_kernels_reaches_the_same_loss(monkeypatch, k):
    """The whole step: 30 Adam steps each way from the same weights, noise and batches."""
    config = VAEConfig(image_shape=(8, 8), hidden_sizes=(32,), latent_dim=3)
    torch.manual_seed(0)
    a, b = VAE(config), VAE(config)
    b.load_state_dict(a.state_dict())
    x = torch.rand(30, 64, 64, generator=torch.Generator().manual_seed(2))
    fast, slow = FlatStep(a, lr=1e-2, kernels=True), FlatStep(b, lr=1e-2, kernels=False)
    assert fast.kernels is not None and slow.kernels is None
    for batch in x:
        torch.manual_seed(3)
        got = fast.step(batch)
        torch.manual_seed(3)
        want = slow.step(batch)
        assert torch.allclose(got, want, rtol=1e-4)
    assert torch.allclose(fast.flat, slow.flat, atol=1e-4)


def test_a_build_is_cached_per_source_and_cpu(fresh, monkeypatch):
    assert kernels.load() is not None
    built = sorted(fresh.glob("kernels-*.so"))
    assert len(built) == 1
    stamp = built[0].stat().st_mtime_ns
    kernels._load.cache_clear()
    real_run = kernels.subprocess.run

    def no_compiling(args, **kwargs):
        assert "-shared" not in args, "the cached library should have been loaded, not rebuilt"
        return real_run(args, **kwargs)

    monkeypatch.setattr(kernels.subprocess, "run", no_compiling)
    assert kernels.load() is not None and built[0].stat().st_mtime_ns == stamp
    kernels._load.cache_clear()
    monkeypatch.setattr(kernels.subprocess, "run", real_run)
    monkeypatch.setattr(kernels, "_cpu_id", lambda: "another CPU")
    assert kernels.load() is not None and len(list(fresh.glob("kernels-*.so"))) == 2


def test_no_home_folder_builds_in_the_temporary_folder(fresh, monkeypatch):
    def no_home():
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.delenv("LATENT_LAB_KERNEL_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(kernels.Path, "home", staticmethod(no_home))
    assert kernels.cache_dir().is_relative_to(tempfile.gettempdir())
    assert kernels.load() is not None


def test_without_a_compiler_training_uses_torchs_calls(fresh, monkeypatch):
    monkeypatch.setattr(kernels.shutil, "which", lambda name: None)
    assert kernels.load() is None
    step = FlatStep(VAE(VAEConfig(image_shape=(8, 8), hidden_sizes=(16,), latent_dim=2)), lr=1e-2)
    assert step.kernels is None and step.step(torch.rand(8, 64)) is not None


def test_a_compiler_that_fails_is_reported_once_and_training_goes_on(fresh, monkeypatch, tmp_path, caplog):
    broken = tmp_path / "cc"
    broken.write_text("#!/bin/sh\necho 'cc: fatal error: no space left' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setenv("CC", str(broken))
    with caplog.at_level(logging.WARNING, logger="vae_core.kernels"):
        assert kernels.load() is None
        assert kernels.load() is None
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and "no space left" in messages[0] and "torch's calls" in messages[0]


def test_a_read_only_cache_folder_builds_for_the_process(fresh, monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("LATENT_LAB_KERNEL_DIR", str(blocker / "kernels"))  # cannot be made
    assert kernels.load() is not None


def test_latent_lab_kernels_0_turns_them_off(monkeypatch):
    monkeypatch.setenv("LATENT_LAB_KERNELS", "0")
    assert kernels.load() is None
    assert FlatStep(VAE(VAEConfig(image_shape=(8, 8), hidden_sizes=(16,), latent_dim=2)), lr=1e-2).kernels is None


def test_adam_bf16_is_torchs_fused_adam_and_writes_the_weights_bfloat16_copy(k):
    if not k.threaded:
        pytest.skip("adam_bf16 is used only on torch's OpenMP threads")
    gen = torch.Generator().manual_seed(4)
    n = 200_003  # over the threading threshold, and not a multiple of any vector width
    p = torch.randn(n, generator=gen)
    ours = {"p": p.clone(), "m": torch.zeros(n), "v": torch.zeros(n), "w": torch.empty(n, dtype=torch.bfloat16)}
    ref = {"p": p.clone(), "m": torch.zeros(n), "v": torch.zeros(n), "step": torch.zeros(())}
    for step in range(1, 8):
        g = (torch.randn(n, generator=gen) * 10 ** torch.randint(-6, 2, (n,), generator=gen)).bfloat16()
        g[:1000] = 0  # pixels no image lights: their moments only decay
        lr = 1e-3 * step
        k.adam_bf16(ours["p"], g, ours["m"], ours["v"], ours["w"], step, lr, 0.9, 0.999, 1e-8)
        ref["step"] += 1
        torch._fused_adam_(
            [ref["p"]], [g.float()], [ref["m"]], [ref["v"]], [], [ref["step"]],
            lr=lr, beta1=0.9, beta2=0.999, weight_decay=0.0, eps=1e-8, amsgrad=False, maximize=False,
        )  # fmt: skip
        for name, atol in (("p", 1e-7), ("m", 1e-12), ("v", 1e-12)):  # p: a float32 ulp near 1
            assert torch.allclose(ours[name], ref[name], rtol=1e-5, atol=atol), (step, name)
        assert torch.equal(ours["w"], ours["p"].bfloat16())  # torch's own rounding of the new weights


def test_bf16_training_with_and_without_kernels_reaches_the_same_weights(k):
    """bfloat16 steps: kernels.c's loss, head and Adam (which keeps the bfloat16 weights itself) against
    torch's calls and fused Adam, 30 steps from the same weights, noise and batches."""
    config = VAEConfig(image_shape=(8, 8), hidden_sizes=(32,), latent_dim=3)
    torch.manual_seed(0)
    a, b = VAE(config), VAE(config)
    b.load_state_dict(a.state_dict())
    x = torch.rand(30, 64, 64, generator=torch.Generator().manual_seed(2))
    gens = [torch.Generator().manual_seed(3) for _ in range(2)]
    fast = FlatStep(a, lr=1e-2, fused=True, precision="bf16", kernels=True, generator=gens[0])
    slow = FlatStep(b, lr=1e-2, fused=True, precision="bf16", kernels=False, generator=gens[1])
    assert fast._adam_c == k.threaded and not slow._adam_c
    for batch in x:
        got, want = fast.step(batch), slow.step(batch)
        assert torch.allclose(got, want, rtol=2e-3, atol=0.01)  # KL can be near 0
        if fast._adam_c:
            assert torch.equal(fast.mm_flat, fast.flat.bfloat16())  # the copy the next step multiplies
    assert (fast.flat - slow.flat).abs().max() < 2e-3  # bfloat16 rounding apart, 30 steps on


def test_without_openmp_the_build_still_gives_the_loss_kernels(fresh, monkeypatch, tmp_path):
    """A compiler that refuses -fopenmp: the kernels are built without it, and Adam stays torch's."""
    compiler = kernels._compiler()
    if compiler is None:
        pytest.skip("no C compiler on this machine")
    wrapper = tmp_path / "cc"
    wrapper.write_text(f'#!/bin/sh\ncase "$*" in *-fopenmp*) exit 1;; esac\nexec {compiler} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("CC", str(wrapper))
    monkeypatch.setattr(kernels, "_torch_uses_gomp", lambda: True)
    built = kernels.load()
    assert built is not None and not built.threaded
    step = FlatStep(
        VAE(VAEConfig(image_shape=(8, 8), hidden_sizes=(16,), latent_dim=2)), lr=1e-2, fused=True, precision="bf16"
    )
    assert step.kernels is built and not step._adam_c
    assert step.step(torch.rand(8, 64)) is not None


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_adam_bf16_writes_nothing_when_a_gradient_is_not_finite(k, bad):
    gen = torch.Generator().manual_seed(5)
    n = 100_000
    p, m, v = torch.randn(n, generator=gen), torch.rand(n, generator=gen), torch.rand(n, generator=gen)
    w, g = p.bfloat16(), torch.randn(n, generator=gen).bfloat16()
    g[n - 3] = bad  # in the last thread's share
    before = [t.clone() for t in (p, m, v, w)]
    assert k.adam_bf16(p, g, m, v, w, 3, 1e-3, 0.9, 0.999, 1e-8) is False
    assert all(torch.equal(a, b) for a, b in zip((p, m, v, w), before, strict=True))
    g[n - 3] = 1.0
    assert k.adam_bf16(p, g, m, v, w, 3, 1e-3, 0.9, 0.999, 1e-8) is True and not torch.equal(p, before[0])


def test_a_step_with_an_infinite_gradient_and_a_finite_loss_changes_nothing(k, monkeypatch):
    """The loss can stay finite while a gradient overflows: step() returns None, the weights, Adam's
    state and step count stay, and the next step multiplies the same bfloat16 weights."""
    config = VAEConfig(image_shape=(8, 8), hidden_sizes=(32,), latent_dim=3)
    step = FlatStep(VAE(config), lr=1e-2, fused=True, precision="bf16")
    x = torch.rand(4, 16, 64, generator=torch.Generator().manual_seed(6))
    assert step.step(x[0]) is not None
    state = step.optimizer.state[step.flat]
    before = [t.clone() for t in (step.flat, step.mm_flat, state["exp_avg"], state["exp_avg_sq"], state["step"])]
    real = FlatStep._encoder_backward

    def overflow(self, *args):
        real(self, *args)
        self.mm_grad[5] = float("inf")  # one weight gradient, after the loss was computed

    monkeypatch.setattr(FlatStep, "_encoder_backward", overflow)
    assert step.step(x[1]) is None
    after = (step.flat, step.mm_flat, state["exp_avg"], state["exp_avg_sq"], state["step"])
    assert all(torch.equal(a, b) for a, b in zip(after, before, strict=True))
    monkeypatch.undo()
    assert step.step(x[2]) is not None and not torch.equal(step.flat, before[0])


def test_the_bfloat16_copy_follows_the_weights_whatever_is_called(k):
    """step(), forward_backward() and update() in any order, with kernels.c and with torch's calls side
    by side: the weights stay together (so update() after step() applies that step's gradient again
    with either Adam), and whenever step() would skip casting the weights, the copy it would multiply
    is the current weights'."""
    config = VAEConfig(image_shape=(8, 8), hidden_sizes=(32,), latent_dim=3)
    x = torch.rand(8, 16, 64, generator=torch.Generator().manual_seed(7))
    torch.manual_seed(0)
    models = [VAE(config), VAE(config)]
    models[1].load_state_dict(models[0].state_dict())
    steps = [
        FlatStep(m, lr=1e-2, fused=True, precision="bf16", kernels=kern, generator=torch.Generator().manual_seed(1))
        for m, kern in zip(models, (True, False), strict=True)
    ]
    assert steps[0]._adam_c == k.threaded
    for i, call in enumerate(["step", "update", "step", "forward_backward", "update", "step", "update", "step"]):
        for step in steps:
            before = step.flat.clone()
            getattr(step, call)(*([] if call == "update" else [x[i]]))
            assert call != "update" or not torch.equal(step.flat, before)
            if step._weights_cast:
                assert torch.equal(step.mm_flat, step.flat.bfloat16()), (i, call)
        assert (steps[0].flat - steps[1].flat).abs().max() < 2e-3, (i, call)


def test_a_model_big_enough_for_threads_trains_like_torchs_calls(k):
    """Over 65,536 parameters adam_bf16 splits its loops over the threads: 101,634 here."""
    config = VAEConfig(image_shape=(28, 28), hidden_sizes=(64,), latent_dim=2)
    torch.manual_seed(0)
    a, b = VAE(config), VAE(config)
    b.load_state_dict(a.state_dict())
    assert a.n_parameters() > 65536
    x = torch.rand(10, 32, 784, generator=torch.Generator().manual_seed(8))
    gens = [torch.Generator().manual_seed(9) for _ in range(2)]
    fast = FlatStep(a, lr=1e-3, fused=True, precision="bf16", kernels=True, generator=gens[0])
    slow = FlatStep(b, lr=1e-3, fused=True, precision="bf16", kernels=False, generator=gens[1])
    for batch in x:
        assert torch.allclose(fast.step(batch), slow.step(batch), rtol=2e-3, atol=0.01)
    assert (fast.flat - slow.flat).abs().max() < 2e-3
