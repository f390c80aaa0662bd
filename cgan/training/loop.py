"""A training run: the epochs of a Trainer written into a run folder (cgan.runs), safe to stop.

    state = train(config, Run(path), torch.device("cpu"))           # a new run: 'finished'
    state = train(config, Run(path), device, resume=True)           # on from its last whole epoch

After every epoch the run folder gets the fixed 10x10 grid, the generator weights, the resume
state and the epoch's record (written by EpochWriter while the next epoch trains), and the
report's line is printed:

    [  1/200] ptime: 1.63 | d_loss: 0.998 | g_loss: 1.624

A StopFlag installed for SIGINT/SIGTERM stops the run after the current epoch is written.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time

import torch

from cgan.config import TrainConfig
from cgan.data import load_mnist, to_unit_range
from cgan.history import EpochRecord
from cgan.keep import parse_keep
from cgan.messages import RunError
from cgan.models import count_parameters
from cgan.processes import process_start_time
from cgan.runs import Run
from cgan.training.trainer import Trainer, configure_torch


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
            run.create({**run.config(), "epochs": config.epochs})  # as written (its format too)
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


def load_training_set(config: TrainConfig, data_dir: str | None):
    mnist = load_mnist(data_dir)
    images, labels = mnist.train_images, mnist.train_labels
    if config.limit:
        images, labels = images[: config.limit], labels[: config.limit]
    return to_unit_range(images), torch.as_tensor(labels), mnist.source


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


def stored_config(run: Run) -> TrainConfig:
    """The configuration a run was trained with, or RunError naming what is damaged in it."""
    try:
        config = TrainConfig.from_json(run.config())
    except ValueError as exc:
        raise RunError(f"{run.config_path}: {exc}") from None
    for field, message in config.problems().items():
        raise RunError(f"{run.config_path}: damaged: {field} {getattr(config, field)!r}: {message}")
    return config


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
