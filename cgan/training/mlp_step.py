"""The report's CGAN iteration written out by hand for the CPU: the same arithmetic as autograd's,
in about 45 kernels instead of about 150, with no allocation per iteration.

Why: at batch 150 the two perceptrons are small (about 0.32 GFLOP per iteration), so on a CPU the
time goes to per-operation overhead (dispatch, autograd bookkeeping, thread-pool wake-ups,
allocating and freeing ~1 MB activations) as much as to the matrix products. Here every product
is one ``addmm``/``mm`` into a preallocated buffer, the one-hot labels are laid out beside the
inputs once per epoch (so the first layers stay single products over the concatenated input,
exactly as in the report), the backward pass is the chain rule written out, and only the
gradients the step needs are computed (no gradient for D's weights in the generator step, none
for the real images). The parameters, their gradients and the Adam optimizers are the usual
nn.Module / torch.optim objects, so state dicts, resume files and weights are unchanged.

Shapes (B = batch, H = hidden units, P = 784 pixels, Z = 100 noise, C = 10 classes):
  G: x = [z, onehot(y)] (B, Z+C) -> relu(x W1^T + b1) (B, H) -> tanh(. W2^T + b2) (B, P)
  D: x = [image, onehot(y)] (B, P+C) -> leaky_relu(x V1^T + c1, 0.2) (B, H) -> . V2^T + c2 (B, 1)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cgan.models import IMAGE_PIXELS, NOISE_DIM, NUM_CLASSES, MlpDiscriminator, MlpGenerator

LEAK = 0.2
aten = torch.ops.aten


def supports(generator, discriminator, device: torch.device) -> bool:
    return device.type == "cpu" and isinstance(generator, MlpGenerator) and isinstance(discriminator, MlpDiscriminator)


def with_one_hot(values: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(..., F) values and (...) labels -> (..., F + 10) with the one-hot labels appended."""
    out = values.new_zeros(*values.shape[:-1], values.shape[-1] + NUM_CLASSES)
    out[..., : values.shape[-1]] = values
    out[..., values.shape[-1] :].scatter_(-1, labels.unsqueeze(-1), 1.0)
    return out


class FusedAdamStep:
    """`optimizer.step()` for a fused Adam whose parameters all live on the CPU, minus the
    Python bookkeeping (about 0.5 ms a call here, as much as the update itself): the same
    kernel, torch._fused_adam_, on the optimizer's own state tensors, so its state_dict is
    unchanged. The first call goes through optimizer.step(), which creates that state."""

    def __init__(self, optimizer: torch.optim.Adam):
        self.optimizer = optimizer
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        self.tensors = None

    def _state_tensors(self):
        state = [self.optimizer.state.get(p) for p in self.params]
        if any(not s for s in state):
            return None
        return ([p.grad for p in self.params], [s["exp_avg"] for s in state],
                [s["exp_avg_sq"] for s in state], [s["step"] for s in state])

    def __call__(self) -> None:
        tensors = self.tensors
        # Loading a state_dict (resume) replaces the state tensors: look them up again then.
        if tensors is None or self.optimizer.state[self.params[0]]["exp_avg"] is not tensors[1][0]:
            self.tensors = tensors = self._state_tensors()
            if tensors is None:
                self.optimizer.step()
                return
        group = self.optimizer.param_groups[0]
        grads, exp_avgs, exp_avg_sqs, steps = tensors
        torch._foreach_add_(steps, 1)
        torch._fused_adam_(
            self.params, grads, exp_avgs, exp_avg_sqs, [], steps, amsgrad=False, lr=group["lr"],
            beta1=group["betas"][0], beta2=group["betas"][1], weight_decay=group["weight_decay"],
            eps=group["eps"], maximize=False, grad_scale=None, found_inf=None,
        )


class MlpStep:
    """One training iteration of the MLP CGAN (D step on real + fake, then G step)."""

    def __init__(self, generator: MlpGenerator, discriminator: MlpDiscriminator, opt_g, opt_d, batch: int):
        self.generator, self.discriminator = generator, discriminator
        for opt in (opt_g, opt_d):  # the direct call covers exactly this configuration
            (group,) = opt.param_groups
            assert group["fused"] and not group["amsgrad"] and not group["maximize"]
        self.opt_g, self.opt_d = FusedAdamStep(opt_g), FusedAdamStep(opt_d)
        hidden = generator.hidden.out_features
        b = batch
        new = lambda *shape: torch.zeros(*shape)  # noqa: E731
        # D's input for the joint pass: rows 0..B real [image, onehot], rows B..2B fake.
        self.d_in = new(2 * b, IMAGE_PIXELS + NUM_CLASSES)
        self.d_in_g = new(b, IMAGE_PIXELS + NUM_CLASSES)  # D's input in the generator step
        self.g_pre1, self.g_h1 = new(b, hidden), new(b, hidden)
        self.g_pre2 = new(b, IMAGE_PIXELS)
        self.d_pre1, self.d_h1, self.d_logit = new(2 * b, hidden), new(2 * b, hidden), new(2 * b, 1)
        self.d_grad_logit, self.d_grad_h1 = new(2 * b, 1), new(2 * b, hidden)
        self.u = new(2 * b, 1)
        # dLoss/dlogit for the D loss softplus(-l_real).mean() + softplus(l_fake).mean():
        # with u = sign * l, loss = sum(softplus(u)) / B and dLoss/dl = sigmoid(u) * sign / B.
        self.sign = torch.cat([-torch.ones(b, 1), torch.ones(b, 1)])
        self.sign_over_b = self.sign / b
        self.d_grad_pre1 = new(2 * b, hidden)
        self.g_grad_fake, self.g_grad_pre2 = new(b, IMAGE_PIXELS), new(b, IMAGE_PIXELS)
        self.g_grad_h1, self.g_grad_pre1 = new(b, hidden), new(b, hidden)
        # Gradients live in fixed buffers that the optimizers read as .grad.
        for module in (generator, discriminator):
            for p in module.parameters():
                p.grad = torch.zeros_like(p)
        self.batch = b

    # -- pieces ------------------------------------------------------------------------------
    def _generate(self, g_in: torch.Tensor, out: torch.Tensor) -> None:
        """out = G(z, y) for g_in = [z, onehot(y)]; keeps the activations for the backward."""
        g = self.generator
        torch.addmm(g.hidden.bias, g_in, g.hidden.weight.t(), out=self.g_pre1)
        torch.clamp_min(self.g_pre1, 0, out=self.g_h1)
        torch.addmm(g.out.bias, self.g_h1, g.out.weight.t(), out=self.g_pre2)
        torch.tanh(self.g_pre2, out=out)

    def _discriminate(self, d_in: torch.Tensor) -> torch.Tensor:
        """D's logits (rows, 1) for d_in = [image, onehot(y)]; keeps the activations."""
        d, rows = self.discriminator, len(d_in)
        pre1, h1, logit = self.d_pre1[:rows], self.d_h1[:rows], self.d_logit[:rows]
        torch.addmm(d.hidden.bias, d_in, d.hidden.weight.t(), out=pre1)
        aten.leaky_relu.out(pre1, LEAK, out=h1)
        torch.addmm(d.out.bias, h1, d.out.weight.t(), out=logit)
        return logit

    def _grad_d_hidden(self, grad_logit: torch.Tensor) -> torch.Tensor:
        """dLoss/d(D's hidden pre-activation) from dLoss/dlogit."""
        rows = len(grad_logit)
        grad_h1 = torch.mm(grad_logit, self.discriminator.out.weight, out=self.d_grad_h1[:rows])
        return aten.leaky_relu_backward.grad_input(
            grad_h1, self.d_pre1[:rows], LEAK, False, grad_input=self.d_grad_pre1[:rows]
        )

    # -- the iteration --------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(self, real_in: torch.Tensor, g_in_d: torch.Tensor, g_in_g: torch.Tensor, d_sum, g_sum) -> None:
        """real_in: (B, P+C) real images with their one-hot labels (may be d_in[:B] itself);
        g_in_d / g_in_g: (B, Z+C) noise with one-hot labels for the D step (the real batch's
        labels) and for the G step. Adds the two losses to d_sum and g_sum."""
        b, p = self.batch, IMAGE_PIXELS
        d = self.discriminator

        # Discriminator step: D(real) and D(G(z_d, y)) in one pass; gradients for D only.
        d_in = self.d_in
        if real_in.data_ptr() != d_in.data_ptr():
            d_in[:b].copy_(real_in)
        self._generate(g_in_d, d_in[b:, :p])
        d_in[b:, p:].copy_(d_in[:b, p:])
        logit = self._discriminate(d_in)
        # softplus(-l_real).mean() + softplus(l_fake).mean() = sum(softplus(sign * l)) / B
        u = torch.mul(logit, self.sign, out=self.u)
        d_sum.add_(F.softplus(u).sum(), alpha=1.0 / b)
        grad_logit = torch.sigmoid(u, out=self.d_grad_logit).mul_(self.sign_over_b)
        torch.mm(grad_logit.t(), self.d_h1, out=d.out.weight.grad)
        torch.sum(grad_logit, 0, out=d.out.bias.grad)
        grad_pre1 = self._grad_d_hidden(grad_logit)
        torch.mm(grad_pre1.t(), d_in, out=d.hidden.weight.grad)
        torch.sum(grad_pre1, 0, out=d.hidden.bias.grad)
        self.opt_d()
        self.generator_step(g_in_g, g_sum)

    @torch.no_grad()
    def generator_step(self, g_in_g: torch.Tensor, g_sum=None) -> None:
        """The generator's step alone: non-saturating softplus(-D(G(z_g, y_g))).mean(), gradients
        for G only; adds its loss to g_sum, when given."""
        b, p = self.batch, IMAGE_PIXELS
        d, g = self.discriminator, self.generator
        d_in_g = self.d_in_g
        fake = d_in_g[:, :p]
        self._generate(g_in_g, fake)
        d_in_g[:, p:].copy_(g_in_g[:, NOISE_DIM:])
        logit = self._discriminate(d_in_g)
        u = torch.neg(logit, out=self.u[:b])
        if g_sum is not None:
            g_sum.add_(F.softplus(u).sum(), alpha=1.0 / b)
        grad_logit = torch.sigmoid(u, out=self.d_grad_logit[:b]).mul_(-1.0 / b)
        grad_pre1 = self._grad_d_hidden(grad_logit)
        grad_fake = torch.mm(grad_pre1, d.hidden.weight[:, :p], out=self.g_grad_fake)
        grad_pre2 = aten.tanh_backward.grad_input(grad_fake, fake, grad_input=self.g_grad_pre2)
        torch.mm(grad_pre2.t(), self.g_h1, out=g.out.weight.grad)
        torch.sum(grad_pre2, 0, out=g.out.bias.grad)
        grad_h1 = torch.mm(grad_pre2, g.out.weight, out=self.g_grad_h1)
        grad_pre1 = aten.threshold_backward.grad_input(grad_h1, self.g_h1, 0, grad_input=self.g_grad_pre1)
        torch.mm(grad_pre1.t(), g_in_g, out=g.hidden.weight.grad)
        torch.sum(grad_pre1, 0, out=g.hidden.bias.grad)
        self.opt_g()
