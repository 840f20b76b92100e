"""One training step of the MLP VAE with its gradients written out by hand instead of autograd.

Why: on a 2-core CPU a step of the 784-400-20 model is about 4 ms of matrix multiplies, and autograd,
the fused log-sigmoid loss (not vectorised on the CPU) and per-tensor Adam added about 3 ms more.
This step computes the same loss and the same gradients (tests/test_backprop.py checks them
against autograd) with one matrix multiply per weight and gradient, keeps every parameter and
gradient in one flat buffer so that Adam is one fused call, and writes the weight gradients straight
into that buffer. The optimiser is unchanged: `torch.optim.Adam` over the flat buffer is the same
update as over the separate tensors, because Adam is elementwise.

The math, for a batch x (B, D), logits l, z = mu + sigma * eps (Kingma & Welling 2014, section 2.4):
  reconstruction = sum softplus(l) - x l           d/dl = sigmoid(l) - x
  KL = -1/2 sum (1 + logvar - mu^2 - sigma^2)      d/dmu = mu, d/dlogvar = (sigma^2 - 1) / 2
  dz/dmu = 1, dz/dlogvar = eps sigma / 2; logvar is clamped, so its gradient is zero outside the clamp.

Precision "bf16" runs the linear layers in bfloat16, about twice the float32 rate on a CPU with
native bfloat16 (AVX512-BF16 or AMX; without it, bfloat16 is emulated and many times slower). This
is the usual mixed precision: the weights and Adam's state stay float32, and so do the loss, the
reparameterisation and their gradients, computed from the bfloat16 layers' outputs (logits, mu,
log-variance); the multiplies, bias adds and ReLUs (and their backward) run in bfloat16, with the
weights cast to bfloat16 each step and the weight gradients cast back to float32 for Adam.
tests/test_backprop.py checks the gradients against float32 autograd within bfloat16's rounding,
and the benchmark compares the test loss it reaches with the classic recipe's.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import kernels as _kernels
from .losses import LossTerms
from .model import LOGVAR_RANGE, VAE

__all__ = ["FlatStep", "PRECISIONS"]

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}  # name -> dtype of the matrix multiplies


def _linears(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def softplus_sum(logits: torch.Tensor, probs: torch.Tensor | None = None) -> torch.Tensor:
    """sum(log(1 + e^l)) = sum(relu(l)) + sum(log(1 + e^-|l|)), both without softplus or log1p, which
    are not vectorised on the CPU (about 4x slower on a 128 x 784 batch):
    - log(1 + e^-|l|) = -log(sigmoid(|l|)), and sigmoid(|l|) = max(p, 1 - p) with p = sigmoid(l), the
      probabilities the gradient needs anyway (pass them as `probs`);
    - those numbers lie in [1/2, 1], so a product of 64 of them is at least 2^-64 (no underflow), and
      the log of each product costs one log per 64 pixels instead of one per pixel.
    Rounding 1 - p in float32 costs accuracy: about 2e-4 nats per 784-pixel image, against a loss of
    about 100 (tests/test_backprop.py bounds it)."""
    p = logits.sigmoid() if probs is None else probs
    near = torch.maximum(p, 1 - p).reshape(-1)
    whole = near.numel() // 64 * 64
    log_products = near[:whole].view(-1, 64).prod(1).log_().sum()
    if whole < near.numel():
        log_products += near[whole:].prod().log()
    return torch.relu(logits).sum() - log_products


def _relu_backward(grad: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """grad where the ReLU output `out` is positive, else 0: autograd's own kernel, one pass."""
    return torch.ops.aten.threshold_backward(grad, out, 0.0)


class FlatStep:
    """Owns the model's parameters as views of one flat tensor and an Adam over it.

    step(x) with x (B, D) flat images updates the model in place and returns [recon, kl, total]
    summed over the batch, or None (weights untouched) when the loss or a gradient is not finite.
    release() gives every parameter its own storage again (safetensors refuses shared memory).
    precision: "fp32", or "bf16" for bfloat16 matrix multiplies (see the module's docstring).
    kernels: compute the loss and the latent head with vae_core/kernels.c where it can be compiled
    (None or True: where it can; False: always torch's calls, which compute the same).
    generator: where the noise eps comes from (None: torch's global generator).
    """

    def __init__(
        self,
        model: VAE,
        lr: float,
        fused: bool | None = None,
        precision: str = "fp32",
        kernels: bool | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        self.generator = generator
        if precision not in PRECISIONS:  # before the parameters move into the flat buffer
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        self.model = model
        self.encoder, self.decoder = _linears(model.encoder), _linears(model.decoder)
        self.vae = model.config.kind == "vae"
        self.beta = model.beta
        self.z_dim = model.config.latent_dim
        # The two heads sit side by side, so (mu, logvar) is one matrix multiply, and its
        # gradient lands in both heads' slots at once.
        head = [model.to_mu.weight, model.to_logvar.weight, model.to_mu.bias, model.to_logvar.bias]
        order = [p for lin in self.encoder for p in (lin.weight, lin.bias)] + head
        order += [p for lin in self.decoder for p in (lin.weight, lin.bias)]
        self.flat = self._flatten(order)
        self.grad = torch.zeros_like(self.flat)
        self.flat.grad = self.grad
        self._grads = {id(p): self._view(self.grad, p) for p in order}
        self.dtype = PRECISIONS[precision]
        on_cpu = self.flat.device.type == "cpu"
        self.kernels = _kernels.load() if kernels is not False and on_cpu else None
        # What the multiplies read and write: the float32 buffers themselves, or bfloat16 copies that
        # step() refreshes from them (weights) and copies back into them (gradients).
        low = self.dtype != self.flat.dtype
        self.mm_flat = torch.empty_like(self.flat, dtype=self.dtype) if low else self.flat
        self.mm_grad = torch.zeros_like(self.grad, dtype=self.dtype) if low else self.grad
        self._w = {id(p): self._view(self.mm_flat, p) for p in order}
        self._g = {id(p): self._view(self.mm_grad, p) for p in order}
        hw, hb = model.to_mu.weight, model.to_mu.bias
        rows = 2 * self.z_dim if self.vae else self.z_dim
        self.head_w = self._span(self.mm_flat, hw, rows * hw.shape[1]).view(rows, -1)  # (2Z or Z, H)
        self.head_b = self._span(self.mm_flat, hb, rows)
        self.head_gw = self._span(self.mm_grad, hw, rows * hw.shape[1]).view(rows, -1)
        self.head_gb = self._span(self.mm_grad, hb, rows)
        # Per layer: (weight, bias, weight gradient, bias gradient) as the multiplies use them.
        self._enc = [self._layer(lin) for lin in self.encoder]
        self._dec = [self._layer(lin) for lin in self.decoder]
        # With the fused kernel, update() calls it directly on this one buffer: Optimizer.step's
        # bookkeeping for many parameters costs ~0.1 ms a step, 4% of one. Same kernel, same state
        # (kept in the optimiser's own state, as Adam keeps it), same result: a test checks.
        self.optimizer = torch.optim.Adam([self.flat], lr=lr, fused=fused)
        self._direct = bool(fused) and hasattr(torch, "_fused_adam_")
        # In bfloat16 with kernels.c on torch's threads, step()'s update is adam_bf16: it reads the
        # bfloat16 gradient and writes the bfloat16 weights, so neither cast is a pass of its own.
        self._adam_c = self._direct and low and self.kernels is not None and self.kernels.threaded
        self._weights_cast = False  # mm_flat holds the bfloat16 copy of flat that adam_bf16 wrote
        if self._direct:
            self.optimizer.state[self.flat].update(
                step=torch.zeros((), dtype=torch.float32, device=self.flat.device),
                exp_avg=torch.zeros_like(self.flat),
                exp_avg_sq=torch.zeros_like(self.flat),
            )

    def _flatten(self, order: list[nn.Parameter]) -> torch.Tensor:
        flat = torch.cat([p.detach().reshape(-1) for p in order])
        self._offsets, offset = {}, 0
        for p in order:
            self._offsets[id(p)] = offset
            p.data = flat[offset : offset + p.numel()].view_as(p)
            offset += p.numel()
        return flat

    def _layer(self, lin: nn.Linear) -> tuple[torch.Tensor, ...]:
        w, b = lin.weight, lin.bias
        return self._w[id(w)], self._w[id(b)], self._g[id(w)], self._g[id(b)]

    def _view(self, buffer: torch.Tensor, p: nn.Parameter) -> torch.Tensor:
        return self._span(buffer, p, p.numel()).view_as(p)

    def _span(self, buffer: torch.Tensor, p: nn.Parameter, n: int) -> torch.Tensor:
        return buffer[self._offsets[id(p)] : self._offsets[id(p)] + n]

    def release(self) -> None:
        for p in self.model.parameters():
            p.data = p.data.clone()

    def grad_of(self, p: nn.Parameter) -> torch.Tensor:
        """The gradient forward_backward wrote for one of the model's parameters (a view, p's shape)."""
        return self._grads[id(p)]

    @torch.no_grad()
    def step(self, x: torch.Tensor) -> torch.Tensor | None:
        """x: (B, D) in [0, 1]. One forward, one backward, one Adam update. Between calls, the weights
        change only through step() (it may keep their bfloat16 copy from its last update)."""
        terms = self._forward_backward(x, fresh=self._weights_cast)
        if self._adam_c:  # adam_bf16 checks the gradients itself, and updates only if all are finite
            if not (math.isfinite(float(terms.total)) and self._update_bf16()):
                return None
        else:
            # A sum is finite only if every gradient is (an overflow to inf would mean divergence anyway).
            if not math.isfinite(float(terms.total + self.mm_grad.sum())):  # bf16 has float32's range
                return None
            self.update()
        return torch.stack([terms.reconstruction, terms.kl, terms.total])

    def _adam_group(self) -> tuple[dict, dict]:
        """The optimiser's one group and the flat buffer's state, for the direct updates, which cover
        plain Adam only (FlatStep never sets anything else)."""
        group, state = self.optimizer.param_groups[0], self.optimizer.state[self.flat]
        if group["amsgrad"] or group["maximize"] or group["decoupled_weight_decay"]:
            raise ValueError("the direct Adam update covers plain Adam only")
        return group, state

    def _update_bf16(self) -> bool:
        """update() by kernels.c's adam_bf16, from mm_grad; also writes mm_flat. False (and nothing
        written) if a gradient is not finite."""
        group, state = self._adam_group()
        if group["weight_decay"]:
            raise ValueError("adam_bf16 has no weight decay")  # FlatStep never sets it
        moments = state["exp_avg"], state["exp_avg_sq"]
        beta1, beta2 = group["betas"]
        step = int(state["step"]) + 1
        args = (self.flat, self.mm_grad, *moments, self.mm_flat, step, group["lr"], beta1, beta2, group["eps"])
        if not self.kernels.adam_bf16(*args):
            return False
        state["step"] += 1
        self._weights_cast = True
        return True

    def update(self) -> None:
        """One Adam update of the flat buffer from the last gradient computed (with kernels.c's Adam:
        none if a gradient is not finite)."""
        if self._adam_c:  # reads the bfloat16 gradient, which every forward_backward writes
            self._update_bf16()
            return
        self._weights_cast = False  # flat changes here, its bfloat16 copy does not
        if not self._direct:
            self.optimizer.step()
            return
        group, state = self._adam_group()
        beta1, beta2 = group["betas"]
        state["step"] += 1
        torch._fused_adam_(
            [self.flat],
            [self.grad],
            [state["exp_avg"]],
            [state["exp_avg_sq"]],
            [],
            [state["step"]],
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            amsgrad=False,
            maximize=False,
        )

    @torch.no_grad()
    def forward_backward(self, x: torch.Tensor) -> LossTerms:
        """x: (B, D) in [0, 1]. The loss terms (summed over the batch); fills every gradient."""
        self._weights_cast = False  # the weights may have changed since step()'s last update
        return self._forward_backward(x, fresh=False, cast_grad=True)

    def _forward_backward(self, x: torch.Tensor, fresh: bool, cast_grad: bool = False) -> LossTerms:
        """fresh: mm_flat already holds flat's bfloat16 copy. The float32 gradient is written when
        cast_grad is set or the update reads it (not kernels.c's, which reads the bfloat16 one)."""
        low = self.mm_flat is not self.flat
        if low and not fresh:
            self.mm_flat.copy_(self.flat)
        enc_in, h = self._encode(x.to(self.dtype))
        if self.kernels is not None:
            terms = self._compiled(x.contiguous().float(), enc_in, h)
        else:
            terms = self._torch_calls(x, enc_in, h)
        if low and (cast_grad or not self._adam_c):
            self.grad.copy_(self.mm_grad)
        return terms

    def _compiled(self, x: torch.Tensor, enc_in: list[torch.Tensor], h: torch.Tensor) -> LossTerms:
        """The loss and the latent head by vae_core/kernels.c, in three passes: the head's forward
        (clamp, sigma, z, KL), the reconstruction loss with its gradient, the head's backward. The same
        arithmetic as _torch_calls (tests/test_kernels.py compares them) and the same random draws."""
        k, b, zd = self.kernels, len(x), self.z_dim
        head = torch.addmm(self.head_b, h, self.head_w.t())  # (B, 2Z): [mu | raw logvar]
        kl = 0.0
        if self.vae:
            eps = torch.randn((b, zd), generator=self.generator, device=x.device)
            saved = torch.empty((4, b, zd), device=x.device)
            z = torch.empty((b, zd), dtype=self.dtype, device=x.device)
            kl = k.head_forward(head, eps, saved, z, *LOGVAR_RANGE)
        else:
            z = head
        dec_in, logits = self._decode(z)
        dlogits = torch.empty_like(logits)
        recon = k.bce(logits, x, dlogits)
        dz = self._backward(self._dec, dlogits, dec_in, first=True)
        if self.vae:
            dhead = torch.empty((b, 2 * zd), dtype=self.dtype, device=x.device)
            k.head_backward(dz, saved, dhead, self.beta, *LOGVAR_RANGE)
        else:
            dhead = dz
        self._encoder_backward(dhead, h, enc_in)
        recon_t, kl_t, total_t = torch.tensor([recon, kl, recon + self.beta * kl], device=x.device).unbind()
        return LossTerms(recon_t, kl_t, total_t)

    def _torch_calls(self, x: torch.Tensor, enc_in: list[torch.Tensor], h: torch.Tensor) -> LossTerms:
        """The loss and the latent head by torch's own calls (no compiler, or kernels=False)."""
        head = torch.addmm(self.head_b, h, self.head_w.t()).float()  # (B, 2Z): [mu | raw logvar]
        mu = head[:, : self.z_dim]
        if self.vae:
            raw = head[:, self.z_dim :]
            logvar = raw.clamp(*LOGVAR_RANGE)
            std = logvar.mul(0.5).exp_()
            eps = torch.randn(mu.shape, generator=self.generator, device=mu.device)
            noise = std.mul_(eps)  # sigma * eps; std itself is not needed again
            z = torch.add(mu, noise, out=torch.empty_like(mu, dtype=self.dtype))
        else:
            z = mu.to(self.dtype)
        dec_in, logits = self._decode(z)
        logits = logits.float()
        probs = logits.sigmoid()
        if self.vae:
            var = logvar.exp()
            terms = self._loss(x, logits, probs, mu, logvar, var)
        else:
            terms = self._loss(x, logits, probs)
        dlogits = torch.sub(probs, x, out=torch.empty_like(probs, dtype=self.dtype))  # d/dl = sigmoid(l) - x
        dz = self._backward(self._dec, dlogits, dec_in, first=True)  # (B, Z), in the multiplies' dtype
        if self.vae:
            dhead = self._head_grad(dz, mu, raw, var, noise)
        else:
            dhead = dz
        self._encoder_backward(dhead, h, enc_in)
        return terms

    def _encode(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        inputs, h = [], x
        for w, b, _, _ in self._enc:
            inputs.append(h)
            h = torch.addmm(b, h, w.t()).relu_()
        return inputs, h

    def _decode(self, z: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        inputs, h = [], z
        last = len(self._dec) - 1
        for i, (w, b, _, _) in enumerate(self._dec):
            inputs.append(h)
            h = torch.addmm(b, h, w.t())
            if i < last:
                h = h.relu_()
        return inputs, h

    def _loss(self, x, logits, probs, mu=None, logvar=None, var=None) -> LossTerms:
        recon = softplus_sum(logits, probs) - torch.dot(x.reshape(-1), logits.reshape(-1))
        if mu is None:
            return LossTerms(recon, torch.zeros((), device=x.device), recon)
        var = logvar.exp() if var is None else var
        # KL = 1/2 sum(mu^2 + sigma^2 - logvar - 1), in three calls on the (B, Z) tensors
        kl = torch.addcmul(var - logvar, mu, mu).sum().sub_(mu.numel()).mul_(0.5)
        return LossTerms(recon, kl, recon + self.beta * kl)

    def _backward(self, layers: list[tuple], grad: torch.Tensor, inputs: list[torch.Tensor], first: bool):
        """Through Linear (+ ReLU before each but the first layer's input); returns d(first input)."""
        for i in range(len(layers) - 1, -1, -1):
            w, _, gw, gb = layers[i]
            a = inputs[i]
            torch.mm(grad.t(), a, out=gw)
            torch.sum(grad, 0, out=gb)
            if i == 0 and not first:
                return None
            grad = torch.mm(grad, w)
            if i > 0:
                grad = _relu_backward(grad, a)
        return grad

    def _head_grad(self, dz, mu, raw, var, noise) -> torch.Tensor:
        """d(total)/d[mu | raw logvar], (B, 2Z), in the multiplies' dtype:
        d/dmu = dz + beta mu; d/dlogvar = dz eps sigma / 2 + beta (sigma^2 - 1) / 2, zero where the
        clamp cut raw logvar, bounds included, as clamp's autograd does here (hardtanh_backward, one
        call; a test checks the bounds). Both halves are written straight into one new buffer."""
        dhead = torch.empty((len(mu), 2 * self.z_dim), dtype=self.dtype, device=mu.device)
        torch.add(dz, mu, alpha=self.beta, out=dhead[:, : self.z_dim])
        dlogvar = var.mul(0.5 * self.beta).sub_(0.5 * self.beta).addcmul_(dz, noise, value=0.5)
        torch.ops.aten.hardtanh_backward.grad_input(dlogvar, raw, *LOGVAR_RANGE, grad_input=dhead[:, self.z_dim :])
        return dhead

    def _encoder_backward(self, dhead: torch.Tensor, h: torch.Tensor, inputs: list[torch.Tensor]) -> None:
        torch.mm(dhead.t(), h, out=self.head_gw)
        torch.sum(dhead, 0, out=self.head_gb)
        grad = _relu_backward(torch.mm(dhead, self.head_w), h)
        self._backward(self._enc, grad, inputs, first=False)
