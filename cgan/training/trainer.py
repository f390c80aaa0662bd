"""The training iteration: both networks, both optimizers and one epoch's pre-drawn randomness.

Each iteration: one discriminator step (a real batch with its labels, then a generated batch with
the same labels; BCE on both) and one generator step (labels drawn uniformly from 0-9,
non-saturating BCE), or `g_steps` generator steps against the same discriminator.

Why it is fast: the training set lives on the device as one tensor; an epoch's randomness (the
permutation, every noise vector and generator label) is drawn up front into fixed buffers; a batch
is an index into them; losses are summed on the device and read once per epoch. Three ways run
the same iteration:
- on CUDA, the whole iteration (both steps and both Adam updates) is replayed as one CUDA graph;
- the MLP CGAN on a CPU runs it written out by hand (cgan.training.mlp_step);
- anything else, or a CUDA graph that cannot be captured, runs it eagerly through autograd.
On a CPU the thread count is measured (cgan.training.threads).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cgan.config import TrainConfig
from cgan.messages import RunError
from cgan.models import NOISE_DIM, get_model
from cgan.sampling import fixed_grid_inputs, generate
from cgan.threads import cpu_cores
from cgan.training import mlp_step, threads

WARMUP_ITERATIONS = 3  # eager iterations before CUDA graph capture (they train for real)

_configured = False


def configure_torch() -> None:
    """Process-wide torch switches, set once where a training process starts (main), or by the
    first training of a library caller. They change numerics, so every trainer sets the same."""
    global _configured
    if _configured:
        return
    _configured = True
    # Same bits whatever thread count the ThreadTuner picks (MKL strict CNR mode); must come
    # before the first matrix product.
    threads.thread_count_free_arithmetic()
    # Denormal floats appear as a GAN settles and are many times slower on CPUs.
    torch.set_flush_denormal(True)
    # TF32 matmuls and convolutions on Ampere and later GPUs (ignored elsewhere).
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    # cuDNN times its candidate algorithms at first use and keeps the fastest. With
    # deterministic=True the candidates are deterministic ones, so a process repeats itself; but
    # the timing may pick another algorithm in another process, so PyTorch's reproducibility
    # notes promise bit-for-bit results across processes only with benchmark=False. Here: a GPU
    # run is repeatable within its process; across a resume it agrees to rounding (unmeasured).
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.deterministic = True


class Trainer:
    """Both networks, both optimizers and one epoch's worth of pre-drawn randomness."""

    def __init__(
        self, config: TrainConfig, images, labels, device: torch.device, fast: bool = True,
        tune_threads: bool = True, log=None,
    ):
        self.config = config
        self.device = device
        family = get_model(config.model)
        torch.manual_seed(config.seed)  # initial weights depend on the seed only, not the device
        self.generator = family.generator(config.width).to(device)
        self.discriminator = family.discriminator(config.width).to(device)
        # Fused Adam: one kernel per update instead of a dozen passes over the parameters;
        # capturable keeps its step counter on the GPU so the update can live in a CUDA graph.
        adam = dict(
            lr=config.lr, betas=(config.beta1, config.beta2), fused=True,
            capturable=device.type == "cuda",
        )
        self.opt_g = torch.optim.Adam(self.generator.parameters(), **adam)
        # Only D's step size can differ from G's (failure presets); x 1.0 leaves the report's bits.
        self.opt_d = torch.optim.Adam(
            self.discriminator.parameters(), **{**adam, "lr": config.lr * config.d_lr_scale}
        )
        self.rng = torch.Generator(device=device).manual_seed(config.seed)
        # Weight averaging (--ema): after every iteration ema <- decay * ema + (1 - decay) * weights.
        self.ema = [p.detach().clone() for p in self.generator.parameters()] if config.ema else None
        # Without batch statistics in D, real and fake batches can share one (faster) pass.
        self.joint_pass = not any(
            isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in self.discriminator.modules()
        )

        b = config.batch_size
        self.n_batches = len(images) // b  # the report drops the last partial batch
        self.labels = labels.to(device)
        # The MLP CGAN on a CPU: the iteration written out by hand (mlp_step), reading
        # its real images from a table that carries each image's one-hot label beside it.
        self.step = None
        if fast and self.n_batches and mlp_step.supports(self.generator, self.discriminator, device):
            self.step = mlp_step.MlpStep(self.generator, self.discriminator, self.opt_g, self.opt_d, b)
            self.real_table = mlp_step.with_one_hot(images.reshape(len(images), -1), self.labels)
            self.images = self.real_table[:, : images[0].numel()]
            width = NOISE_DIM + self.real_table.shape[1] - self.images.shape[1]
            self.g_in_d = torch.zeros(self.n_batches, b, width)
            self.g_in_g = torch.zeros(self.n_batches, b, width)
        else:
            self.images = images.to(device)
        self.perm = torch.zeros(self.n_batches, b, dtype=torch.long, device=device)
        self.z_d = torch.zeros(self.n_batches, b, NOISE_DIM, device=device)
        self.z_g = torch.zeros(self.n_batches, b, NOISE_DIM, device=device)
        self.y_g = torch.zeros(self.n_batches, b, dtype=torch.long, device=device)
        self.d_sum = torch.zeros((), device=device)
        self.g_sum = torch.zeros((), device=device)
        self.step_index = torch.zeros(1, dtype=torch.long, device=device)
        self.graph = None
        # (Several generator steps per D step run eagerly: the captured graph is the report's step.)
        self.use_graph = device.type == "cuda" and self.n_batches > WARMUP_ITERATIONS and config.g_steps == 1
        # On a CPU the thread count is measured, not assumed (threads.ThreadTuner), and measured
        # again as the machine's load changes where that cannot change the arithmetic (the CGAN's matrix
        # products). A model whose sums depend on the thread count (the cDCGAN's convolutions)
        # chooses its count in the run's first epoch and keeps it, in its resume state too, so a
        # resumed run repeats an uninterrupted one bit for bit.
        self.tuner = None
        self.fixed_threads = None
        self.log = log
        if device.type == "cpu":
            free = family.thread_count_free and threads.thread_count_free_arithmetic()
            if not family.thread_count_free:
                self.fixed_threads = threads.STARTING_THREADS
                torch.set_num_threads(self.fixed_threads)
            if tune_threads and (free or not family.thread_count_free):
                tuner = threads.ThreadTuner(candidates=[1, threads.STARTING_THREADS], log=log, once=not free)
                self.tuner = tuner if len(tuner.candidates) > 1 else None
        self.grid_z, self.grid_labels = fixed_grid_inputs(config.seed)

    # -- one iteration ----------------------------------------------------------------------
    def extra_g_batches(self, i: int) -> list[int]:
        """Which of the epoch's generator draws the extra generator steps of iteration i use
        (--g-steps): the next ones in the plan, so the report's random stream stays as it is."""
        return [(i + k) % self.n_batches for k in range(1, self.config.g_steps)]

    def _iteration(self, x, y, z_d, z_g, y_g, extra_g=()) -> None:
        generator, discriminator = self.generator, self.discriminator
        # Discriminator: real batch with its labels, generated batch with the same labels.
        with torch.no_grad():
            fake = generator(z_d, y)
        if self.joint_pass:
            logits = discriminator(torch.cat([x, fake]), torch.cat([y, y]))
            real_logits, fake_logits = logits[: len(x)], logits[len(x) :]
        else:  # batch statistics must come from all-real and all-fake batches, as in DCGAN
            real_logits, fake_logits = discriminator(x, y), discriminator(fake, y)
        d_loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        # Generator: labels drawn from all ten digits; D's weights need no gradient here.
        discriminator.requires_grad_(False)
        g_loss = self._generator_step(z_g, y_g)
        for z, labels in extra_g:  # --g-steps: more generator steps against the same D
            self._generator_step(z, labels)
        discriminator.requires_grad_(True)
        self.d_sum.add_(d_loss.detach())
        self.g_sum.add_(g_loss.detach())
        self._average()

    def _generator_step(self, z, y) -> torch.Tensor:
        g_loss = F.softplus(-self.discriminator(self.generator(z, y), y)).mean()
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        return g_loss

    def _average(self) -> None:
        if self.ema is not None:
            torch._foreach_lerp_(self.ema, list(self.generator.parameters()), 1.0 - self.config.ema)

    def ema_state(self) -> dict | None:
        """The averaged generator as a state_dict (buffers, e.g. batch statistics, are the raw ones)."""
        if self.ema is None:
            return None
        names = [name for name, _ in self.generator.named_parameters()]
        averaged = dict(zip(names, self.ema, strict=True))
        return {k: averaged.get(k, v) for k, v in self.generator.state_dict().items()}

    def _eager_iteration(self, i: int) -> None:
        index = self.perm[i]
        extra = [(self.z_g[k], self.y_g[k]) for k in self.extra_g_batches(i)]
        self._iteration(self.images[index], self.labels[index], self.z_d[i], self.z_g[i], self.y_g[i], extra)

    def _fast_iteration(self, i: int) -> None:
        real_in = self.step.d_in[: self.config.batch_size]
        torch.index_select(self.real_table, 0, self.perm[i], out=real_in)
        self.step(real_in, self.g_in_d[i], self.g_in_g[i], self.d_sum, self.g_sum)
        for k in self.extra_g_batches(i):  # their losses are not reported: one G loss per step
            self.step.generator_step(self.g_in_g[k])
        self._average()

    def _graph_iteration(self) -> None:
        """The iteration with its batch number read from a device tensor, so it can be replayed."""
        i = self.step_index
        index = self.perm.index_select(0, i).view(-1)
        b = self.config.batch_size
        self._iteration(
            self.images.index_select(0, index),
            self.labels.index_select(0, index),
            self.z_d.index_select(0, i).view(b, NOISE_DIM),
            self.z_g.index_select(0, i).view(b, NOISE_DIM),
            self.y_g.index_select(0, i).view(b),
        )
        self.step_index.add_(1)

    def _capture(self) -> None:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(WARMUP_ITERATIONS):
                self._graph_iteration()
        torch.cuda.current_stream().wait_stream(stream)
        self.opt_d.zero_grad(set_to_none=True)
        self.opt_g.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._graph_iteration()
        self.graph = graph

    # -- one epoch ----------------------------------------------------------------------------
    def _draw_epoch_plan(self) -> None:
        n, b, rng, dev = self.n_batches, self.config.batch_size, self.rng, self.device
        self.perm.copy_(torch.randperm(len(self.images), generator=rng, device=dev)[: n * b].view(n, b))
        self.z_d.normal_(generator=rng)
        self.z_g.normal_(generator=rng)
        self.y_g.random_(0, 10, generator=rng)
        if self.step is not None:  # the same draws, laid out as the generator's inputs
            for g_in, z, y in ((self.g_in_d, self.z_d, self.labels[self.perm]), (self.g_in_g, self.z_g, self.y_g)):
                g_in.zero_()
                g_in[..., :NOISE_DIM].copy_(z)
                g_in[..., NOISE_DIM:].scatter_(-1, y.unsqueeze(-1), 1.0)

    def train_epoch(self) -> tuple[float, float]:
        self.generator.train()
        self.discriminator.train()
        self._draw_epoch_plan()
        self.d_sum.zero_()
        self.g_sum.zero_()
        self.step_index.zero_()
        done = 0
        if self.use_graph:
            try:
                if self.graph is None:
                    self._capture()
                    done = WARMUP_ITERATIONS
                for _ in range(done, self.n_batches):
                    self.graph.replay()
                done = self.n_batches
            except RuntimeError as exc:  # capture unsupported here: fall back, losing nothing
                print(f"CUDA graph unavailable ({str(exc).splitlines()[0][:80]}); running eagerly")
                self.use_graph, self.graph = False, None
                torch.cuda.synchronize()
                done = int(self.step_index.item())
        iteration = self._eager_iteration if self.step is None else self._fast_iteration
        if self.tuner is not None and done == 0:
            self.tuner.run_epoch(self.n_batches, iteration)
        else:
            for i in range(done, self.n_batches):
                iteration(i)
        n = self.n_batches
        return self.d_sum.item() / n, self.g_sum.item() / n

    def fixed_grid(self):
        self.generator.eval()
        images = generate(self.generator, self.grid_labels, self.grid_z)
        self.generator.train()
        return images

    # -- resume state ---------------------------------------------------------------------------
    def snapshot(self, epoch: int) -> dict:
        """state(epoch) with every tensor copied, so training may go on while it is written."""
        return _copy_tensors(self.state(epoch))

    def state(self, epoch: int) -> dict:
        return {
            "epoch": epoch,
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "rng": self.rng.get_state(),
            "device_type": self.device.type,
            **({"generator_ema": self.ema_state()} if self.ema is not None else {}),
            **({"threads": self.threads_kept()} if self.fixed_threads is not None else {}),
        }

    def threads_kept(self) -> int:
        """The thread count every epoch after the first trains at (models whose arithmetic
        depends on it)."""
        return self.tuner.threads if self.tuner is not None else self.fixed_threads

    def load_state(self, state: dict) -> None:
        if state.get("device_type", "cpu") != self.device.type:
            raise RunError(
                f"this run was trained on {state.get('device_type')}; resume it with "
                f"--device {state.get('device_type')}"
            )
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.rng.set_state(state["rng"].cpu())
        self._restore_threads(state.get("threads"))
        if self.ema is not None:
            averaged = state.get("generator_ema", state["generator"])
            names = [name for name, _ in self.generator.named_parameters()]
            for ema, name in zip(self.ema, names, strict=True):
                ema.copy_(averaged[name])


    def _restore_threads(self, stored) -> None:
        """Train on at the thread count the run was trained with (models whose arithmetic depends
        on it), measuring nothing, so the resumed epochs are bit for bit those of an
        uninterrupted run; a count above this machine's cores is not imposed (then the last bits
        may differ), nor one from a resume state that does not say."""
        if self.fixed_threads is None:
            return
        self.tuner = None  # the count was chosen in the run's first epoch
        if not isinstance(stored, int) or isinstance(stored, bool) or stored < 1:
            return
        if stored <= cpu_cores():
            self.fixed_threads = stored
            torch.set_num_threads(stored)
            if self.log is not None:
                self.log(f"threads: {stored}, as the run was trained with (same bits on resume)")
        elif self.log is not None:
            self.log(f"threads: {self.fixed_threads}; the run was trained with {stored}, more than this "
                     "machine's cores: its resumed epochs may differ in the last bits")


def _copy_tensors(value):
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: _copy_tensors(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_copy_tensors(v) for v in value)
    return value

