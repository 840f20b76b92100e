"""vae_core/backprop.py: the hand-written step computes autograd's loss and gradients, and trains like
autograd with Adam."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vae_core import VAE, VAEConfig, kernels, vae_loss
from vae_core.backprop import FlatStep, softplus_sum
from vae_core.model import LOGVAR_RANGE
from vae_core.train import CosineSchedule

CONFIGS = {
    "classic": VAEConfig(image_shape=(8, 8), hidden_sizes=(32,), latent_dim=4),
    "two layers, beta 4": VAEConfig(image_shape=(8, 8), hidden_sizes=(32, 16), latent_dim=3, beta=4.0),
    "beta 0": VAEConfig(image_shape=(6, 5), hidden_sizes=(16,), latent_dim=2, beta=0.0),
    "autoencoder": VAEConfig(image_shape=(8, 8), hidden_sizes=(24, 12), latent_dim=2, kind="ae"),
}


@pytest.fixture(autouse=True, params=["kernels.c", "torch calls"])
def path(request, monkeypatch):
    """Every test here runs twice: the loss and latent head by vae_core/kernels.c, and by torch's calls."""
    if request.param == "torch calls":
        monkeypatch.setenv("LATENT_LAB_KERNELS", "0")
    else:
        monkeypatch.delenv("LATENT_LAB_KERNELS", raising=False)
        if kernels._compiler() is None:
            pytest.skip("no C compiler on this machine")
        assert kernels.load() is not None, "this machine has a C compiler: kernels.c must build"
    return request.param


def twins(config: VAEConfig, seed: int = 0) -> tuple[VAE, VAE]:
    torch.manual_seed(seed)
    a = VAE(config)
    b = VAE(config)
    b.load_state_dict(a.state_dict())
    return a, b


def batch(config: VAEConfig, n: int = 16, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, *config.image_shape, generator=gen)


def autograd_loss(model: VAE, x: torch.Tensor):
    mu, logvar = model.encode(x)
    logits = model.decode_logits(model.reparameterize(mu, logvar))
    return vae_loss(x, logits, mu, logvar, model.beta, include_kl=model.config.kind != "ae")


@pytest.mark.parametrize("name", list(CONFIGS))
def test_loss_and_every_gradient_match_autograd(name):
    config = CONFIGS[name]
    reference, model = twins(config)
    x = batch(config)
    torch.manual_seed(5)  # the same eps for both
    expected = autograd_loss(reference, x)
    expected.total.backward()
    step = FlatStep(model, lr=1e-3)
    torch.manual_seed(5)
    terms = step.forward_backward(x.flatten(1))
    for got, want in zip((terms.reconstruction, terms.kl, terms.total), expected.__dict__.values(), strict=True):
        assert got.item() == pytest.approx(want.item(), rel=1e-5, abs=1e-4)
    for (pname, p_ref), p in zip(reference.named_parameters(), model.parameters(), strict=True):
        want = p_ref.grad if p_ref.grad is not None else torch.zeros_like(p_ref)  # an ae's unused logvar head
        torch.testing.assert_close(step.grad_of(p), want, rtol=1e-4, atol=1e-4, msg=pname)


def logvar_gradients(set_head) -> tuple[FlatStep, VAE, VAE]:
    """(step, its model, the autograd twin) after one forward_backward and one autograd backward on
    the same batch and eps, with set_head(m) applied to both models first."""
    config = CONFIGS["classic"]
    reference, model = twins(config)
    with torch.no_grad():
        for m in (reference, model):
            set_head(m)
    x = batch(config)
    torch.manual_seed(3)
    autograd_loss(reference, x).total.backward()
    step = FlatStep(model, lr=1e-3)
    torch.manual_seed(3)
    step.forward_backward(x.flatten(1))
    return step, model, reference


def test_clamped_log_variances_get_no_gradient_like_autograd():
    def far_outside(m: VAE) -> None:  # far outside LOGVAR_RANGE for every image
        m.to_logvar.bias[:2] = torch.tensor([30.0, -30.0])

    step, model, reference = logvar_gradients(far_outside)
    assert step.grad_of(model.to_logvar.bias)[:2].abs().max() == 0
    torch.testing.assert_close(step.grad_of(model.to_logvar.weight), reference.to_logvar.weight.grad)


@pytest.mark.parametrize("bound", LOGVAR_RANGE)
def test_a_log_variance_exactly_at_a_bound_gets_autograds_gradient(bound: float):
    """bfloat16 rounding makes a raw log-variance land exactly on a bound now and then; there the step
    must do what clamp's autograd does (in this torch: no gradient at the bounds themselves). Just
    inside the bound, both give the same gradient, not zero."""
    inside = bound - 2.0**-10 if bound > 0 else bound + 2.0**-10
    for value in (bound, inside):

        def every_raw_logvar_is(m: VAE, value: float = value) -> None:
            m.to_logvar.weight.zero_()
            m.to_logvar.bias.fill_(value)

        step, model, reference = logvar_gradients(every_raw_logvar_is)
        torch.testing.assert_close(step.grad_of(model.to_logvar.bias), reference.to_logvar.bias.grad)
    assert reference.to_logvar.bias.grad.abs().min() > 0  # inside


@pytest.mark.parametrize("name", ["classic", "autoencoder"])
def test_twenty_steps_of_adam_end_where_autograd_and_adam_end(name):
    config = CONFIGS[name]
    reference, model = twins(config)
    optimizer = torch.optim.Adam(reference.parameters(), lr=1e-2)
    step = FlatStep(model, lr=1e-2)
    for i in range(20):
        x = batch(config, seed=i)
        torch.manual_seed(100 + i)
        optimizer.zero_grad()
        autograd_loss(reference, x).total.backward()
        optimizer.step()
        torch.manual_seed(100 + i)
        assert step.step(x.flatten(1)) is not None
    # Adam divides by sqrt(v): where a gradient is near zero, float rounding (the two compute the same
    # sums in different orders) moves a weight by a small part of one step (lr 1e-2); a wrong
    # gradient moves weights by whole steps.
    for (pname, p_ref), p in zip(reference.named_parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(p, p_ref, rtol=1e-4, atol=2e-4, msg=pname)


def test_parameters_share_one_buffer_until_released():
    model = VAE(CONFIGS["two layers, beta 4"])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    step = FlatStep(model, lr=1e-3)
    storages = {p.untyped_storage().data_ptr() for p in model.parameters()}
    assert storages == {step.flat.untyped_storage().data_ptr()}
    step.release()
    assert len({p.untyped_storage().data_ptr() for p in model.parameters()}) == len(list(model.parameters()))
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_a_non_finite_loss_skips_the_update():
    config = CONFIGS["classic"]
    model = VAE(config)
    step = FlatStep(model, lr=1e-2)
    before = step.flat.clone()
    x = batch(config).flatten(1)
    x[0, 0] = float("nan")
    assert step.step(x) is None
    assert torch.equal(step.flat, before)


def test_softplus_sum_is_torchs_softplus_even_at_extreme_logits():
    logits = torch.cat([torch.linspace(-120, 120, 2001), torch.tensor([0.0, 1e-8, -1e-8, 88.0, -88.0])])
    want = F.softplus(logits.double(), threshold=1000).sum()
    assert softplus_sum(logits).double().item() == pytest.approx(want.item(), rel=1e-6)


# --- bfloat16 multiplies --------------------------------------------------------------------------


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got - want).norm() / want.norm().clamp_min(1e-12)).item()


@pytest.mark.parametrize("name", list(CONFIGS))
def test_bf16_loss_and_gradients_are_autograds_within_bfloat16_rounding(name):
    """bfloat16 keeps 8 bits of mantissa (relative rounding 0.4% per number). A weight gradient sums
    rounded per-image terms, so where those terms mostly cancel (beta 0's first layer here: 18%) its
    own relative error grows; the whole gradient stays within 5%. A wrong gradient is off by ~100%.
    The float32 step must also differ from the bf16 one, or the multiplies never left float32."""
    config = CONFIGS[name]
    reference, model = twins(config)
    _, exact_model = twins(config)
    x = batch(config, n=64)
    torch.manual_seed(5)
    expected = autograd_loss(reference, x)
    expected.total.backward()
    step, exact = FlatStep(model, lr=1e-3, precision="bf16"), FlatStep(exact_model, lr=1e-3)
    assert step.mm_flat.dtype == torch.bfloat16 and step.flat.dtype == step.grad.dtype == torch.float32
    torch.manual_seed(5)
    terms = step.forward_backward(x.flatten(1))
    torch.manual_seed(5)
    exact.forward_backward(x.flatten(1))
    assert terms.total.item() == pytest.approx(expected.total.item(), rel=1e-2)
    assert relative_error(step.grad, exact.grad) < 5e-2
    for (pname, p_ref), p in zip(reference.named_parameters(), model.parameters(), strict=True):
        if p_ref.grad is None:  # an ae's unused logvar head
            assert step.grad_of(p).abs().max() == 0
        else:
            assert relative_error(step.grad_of(p), p_ref.grad) < 0.25, pname
    assert not torch.equal(step.grad, exact.grad)


def test_each_bf16_step_multiplies_the_current_weights():
    """After updates, a step's gradient is the one a new bf16 step computes from the weights as they
    are now: the bfloat16 copy is refreshed every step, not made once."""
    config = CONFIGS["two layers, beta 4"]
    model = VAE(config)
    step = FlatStep(model, lr=1e-2, precision="bf16")
    for i in range(5):
        assert step.step(batch(config, seed=i).flatten(1)) is not None
    fresh_model = VAE(config)
    fresh_model.load_state_dict(model.state_dict())
    fresh = FlatStep(fresh_model, lr=1e-2, precision="bf16")
    x = batch(config, seed=99).flatten(1)
    torch.manual_seed(7)
    step.forward_backward(x)
    torch.manual_seed(7)
    fresh.forward_backward(x)
    assert torch.equal(step.grad, fresh.grad)


def test_bf16_steps_update_the_float32_weights():
    config = CONFIGS["classic"]
    model = VAE(config)
    step = FlatStep(model, lr=1e-2, precision="bf16")
    before = step.flat.clone()
    for i in range(5):
        assert step.step(batch(config, seed=i).flatten(1)) is not None
    assert step.flat.dtype == torch.float32 and not torch.equal(step.flat, before)
    assert model.to_mu.weight.untyped_storage().data_ptr() == step.flat.untyped_storage().data_ptr()


def test_an_unknown_precision_is_refused_and_the_model_is_left_as_it_was():
    model = VAE(CONFIGS["classic"])
    with pytest.raises(ValueError, match="precision"):
        FlatStep(model, lr=1e-3, precision="fp16")
    storages = {p.untyped_storage().data_ptr() for p in model.parameters()}
    assert len(storages) == len(list(model.parameters()))  # not moved into a shared buffer


def test_softplus_sum_from_the_gradients_probabilities_is_accurate_per_image():
    """With `probs` given (as the step does), 1 - p is rounded in float32: within 1e-3 nats per image."""
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(128, 784, generator=gen) * 6 - 2  # like a trained decoder's: mostly background
    want = F.softplus(logits.double(), threshold=1000).sum().item()
    assert abs(softplus_sum(logits, logits.sigmoid()).item() - want) / 128 < 1e-3


def test_the_direct_fused_adam_update_is_torch_optims_fused_adam_schedule_included():
    """update() calls the fused kernel itself; torch.optim.Adam(fused=True).step() must give the same
    bits, step after step, with a learning-rate schedule changing the lr in between."""
    config = CONFIGS["two layers, beta 4"]
    a_model, b_model = twins(config)
    direct, reference = FlatStep(a_model, lr=1e-2, fused=True), FlatStep(b_model, lr=1e-2, fused=True)
    assert direct._direct
    reference._direct = False  # the optimiser's own step()
    schedules = [CosineSchedule(s.optimizer, 6) for s in (direct, reference)]
    start = direct.flat.clone()
    for i in range(6):
        for s in (direct, reference):
            torch.manual_seed(i)
            assert s.step(batch(config, seed=i).flatten(1)) is not None
        for schedule in schedules:
            schedule.step()
        assert torch.equal(direct.flat, reference.flat), i
    assert direct.optimizer.state[direct.flat]["step"].item() == 6  # Adam's own state, where Adam keeps it
    assert not torch.equal(direct.flat, start)
    assert direct.optimizer.param_groups[0]["lr"] < 1e-3  # the schedule did turn the lr down
