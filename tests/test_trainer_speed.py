"""The CPU fast path (cgan.training.mlp_step) does the report's arithmetic; the thread tuner
(cgan.training.threads) keeps the faster thread count, measures again when conditions change, and
never changes a run."""

from __future__ import annotations

import subprocess
import sys
import time

import torch

from cgan import threads
from cgan.config import TrainConfig
from cgan.data import load_mnist, to_unit_range
from cgan.training import threads as tuning
from cgan.training.trainer import Trainer, configure_torch
from tests.test_train import ROOT, cli_env


def small_trainer(fast: bool, images: int = 3000, seed: int = 0) -> Trainer:
    configure_torch()
    mnist = load_mnist()
    config = TrainConfig.for_model("cgan", limit=images, seed=seed)
    return Trainer(
        config, to_unit_range(mnist.train_images[:images]), torch.as_tensor(mnist.train_labels[:images]),
        torch.device("cpu"), fast=fast, tune_threads=False,
    )


def test_fast_path_matches_the_plain_autograd_reference():
    # The reference is the textbook iteration (one_hot + cat, autograd, optimizer.step()) on the
    # same pre-drawn permutation, noise and labels. The two differ only in the order float32
    # sums are taken (fused loss sums, hand-written chain rule), ~1e-7 relative per operation.
    # Measured over these 3 epochs (60 iterations): losses agree to 1e-6, weights to 1.5e-5.
    # The bounds below leave 10-50x room for other CPUs, while a wrong gradient term moves the
    # first epoch's losses by more than 1e-2.
    fast, reference = small_trainer(fast=True), small_trainer(fast=False)
    assert fast.step is not None and reference.step is None
    for epoch in range(3):
        fast_losses, reference_losses = fast.train_epoch(), reference.train_epoch()
        for a, b in zip(fast_losses, reference_losses, strict=True):
            assert abs(a - b) <= 1e-4 * abs(b), (epoch, fast_losses, reference_losses)
    for name in ("generator", "discriminator"):
        ours, theirs = getattr(fast, name).state_dict(), getattr(reference, name).state_dict()
        for key in ours:
            assert (ours[key] - theirs[key]).abs().max().item() < 5e-4, (name, key)
    # Optimizer states have the same layout, so resume files are interchangeable.
    assert fast.opt_g.state_dict()["param_groups"] == reference.opt_g.state_dict()["param_groups"]
    pairs = zip(fast.opt_d.state_dict()["state"].values(), reference.opt_d.state_dict()["state"].values(), strict=True)
    for a, b in pairs:
        assert a.keys() == b.keys() and float(a["step"]) == float(b["step"]) == 60


SAME_BITS = """
import torch
from cgan.data import load_mnist, to_unit_range
from cgan.config import TrainConfig
from cgan.training.threads import thread_count_free_arithmetic
from cgan.training.trainer import Trainer, configure_torch
configure_torch()
assert thread_count_free_arithmetic()
m = load_mnist()
config = TrainConfig.for_model("cgan", limit=1500)
results = []
for n in (1, 2):
    torch.set_num_threads(n)
    t = Trainer(config, to_unit_range(m.train_images[:1500]), torch.as_tensor(m.train_labels[:1500]),
                torch.device("cpu"), tune_threads=False)
    losses = [t.train_epoch() for _ in range(2)]
    results.append((losses, t.generator.state_dict()))
(a, wa), (b, wb) = results
assert a == b, (a, b)
assert all(torch.equal(wa[k], wb[k]) for k in wa)
print("same bits")
"""


def test_one_and_two_threads_train_the_same_bits():
    # A fresh process: the arithmetic mode must be set before its first matrix product.
    result = subprocess.run(
        [sys.executable, "-c", SAME_BITS], capture_output=True, text=True, timeout=300, cwd=ROOT, env=cli_env(),
    )
    assert result.returncode == 0 and "same bits" in result.stdout, result.stderr[-2000:]


class Workload:
    """Iterations whose cost depends on the thread count and on a 'contention' switch, like a
    small matrix product on two cores with and without a busy neighbour."""

    def __init__(self):
        self.contended = False
        self.done: list[int] = []
        self.threads_used: list[int] = []

    def __call__(self, i: int) -> None:
        n = torch.get_num_threads()
        cost = {1: 0.002, 2: 0.001} if not self.contended else {1: 0.0025, 2: 0.006}
        time.sleep(cost[n])
        self.done.append(i)
        self.threads_used.append(n)


def test_tuner_keeps_the_faster_count_and_falls_back_when_contended():
    before = torch.get_num_threads()
    try:
        tuner = tuning.ThreadTuner(candidates=[1, 2])
        work = Workload()
        tuner.run_epoch(400, work)
        assert work.done == list(range(400))  # every iteration ran once, in order
        assert tuner.threads == 2 and tuner.per_iteration[2] < tuner.per_iteration[1]
        assert torch.get_num_threads() == 2
        # A busy neighbour arrives mid-epoch: the tuner notices within a block and measures again.
        work = Workload()
        tuner.run_epoch(200, work)
        work.contended = True
        start = time.perf_counter()
        tuner.run_epoch(400, work)
        elapsed = time.perf_counter() - start
        assert tuner.threads == 1
        assert work.threads_used[-100:] == [1] * 100
        # The contended epoch cost less than 1.3x the single-thread time the tuner measured.
        assert elapsed < 1.3 * 400 * tuner.per_iteration[1], (elapsed, tuner.per_iteration)
        # Quiet again: the next measurement returns to two threads.
        work.contended = False
        for _ in range(tuning.RECHECK_EPOCHS + 1):
            tuner.run_epoch(200, work)
        assert tuner.threads == 2
    finally:
        torch.set_num_threads(before)


def test_for_interactive_uses_one_thread_beside_a_trainer(tmp_path):
    before = torch.get_num_threads()
    try:
        assert threads.for_interactive(trainer_running=True) == 1 == torch.get_num_threads()
        assert threads.for_interactive(trainer_running=False) == threads.cpu_cores() == torch.get_num_threads()
        assert threads.for_interactive(root=tmp_path) == threads.cpu_cores()  # no runs: no trainer
    finally:
        torch.set_num_threads(before)


def test_kept_epochs_keep_the_discriminator_too(tmp_path):
    from tests.conftest import make_run

    run = make_run(tmp_path / "kept", epochs=3, limit=300, batch_size=100, keep="1", seed=2)
    assert run.weight_epochs() == [1, 3]
    assert run.discriminator_epochs() == [1, 3]
    final = run.load_resume_state()["discriminator"]
    loaded = run.load_discriminator(3).state_dict()
    assert all(torch.equal(final[k], loaded[k]) for k in final)  # the epoch's own D, bit for bit
    images = torch.zeros(4, 1, 28, 28)
    assert run.load_discriminator(1)(images, torch.arange(4)).shape == (4,)


def test_weight_averaging_is_saved_and_resumes_bit_for_bit(tmp_path):
    from tests.conftest import make_run

    from cgan.training.loop import train

    settings = dict(limit=300, batch_size=100, seed=4, ema=0.9)
    whole = make_run(tmp_path / "whole", epochs=3, **settings)
    split = make_run(tmp_path / "split", epochs=2, **settings)
    config = TrainConfig.for_model("cgan", epochs=3, **settings)
    train(config, split, torch.device("cpu"), resume=True, log=lambda _: None)
    assert [whole.has_averaged(e) for e in (1, 2, 3)] == [True, True, True]
    for epoch in (1, 2, 3):
        a = torch.load(whole.averaged_weights_path(epoch), weights_only=True)
        b = torch.load(split.averaged_weights_path(epoch), weights_only=True)
        assert all(torch.equal(a[k], b[k]) for k in a), epoch
    raw, averaged = whole.load_generator(3).state_dict(), whole.load_generator(3, averaged=True).state_dict()
    assert raw.keys() == averaged.keys()
    assert not torch.equal(raw["out.weight"], averaged["out.weight"])
    # The average trails the weights: closer to epoch 2's weights than the raw epoch-3 weights are.
    before = whole.load_generator(2).state_dict()["out.weight"]
    assert (averaged["out.weight"] - before).norm() < (raw["out.weight"] - before).norm()
    assert TrainConfig.for_model("cgan").ema == 0.0  # off by default: the report's recipe
    assert list(TrainConfig(ema=1.0).problems()) == ["ema"]


def test_the_discriminator_can_step_at_a_multiple_of_the_learning_rate():
    configure_torch()
    mnist = load_mnist()
    images, labels = to_unit_range(mnist.train_images[:300]), torch.as_tensor(mnist.train_labels[:300])

    def trained(**overrides) -> Trainer:
        config = TrainConfig.for_model("cgan", limit=300, batch_size=100, seed=5, **overrides)
        trainer = Trainer(config, images, labels, torch.device("cpu"), tune_threads=False)
        trainer.train_epoch()
        return trainer

    report, same, slow_d = trained(), trained(d_lr_scale=1.0), trained(d_lr_scale=0.1)
    assert [g["lr"] for g in slow_d.opt_d.param_groups] == [1e-4]
    assert [g["lr"] for g in slow_d.opt_g.param_groups] == [1e-3]
    for name in ("generator", "discriminator"):  # x 1.0 is the report's recipe, bit for bit
        a, b = getattr(report, name).state_dict(), getattr(same, name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    d_report, d_slow = report.discriminator.state_dict(), slow_d.discriminator.state_dict()
    assert not torch.equal(d_report["out.weight"], d_slow["out.weight"])
    assert TrainConfig.for_model("cgan").d_lr_scale == 1.0
    assert TrainConfig.from_json({"model": "cgan"}).d_lr_scale == 1.0  # runs from before the option
    assert list(TrainConfig(d_lr_scale=0.0).problems()) == ["d_lr_scale"]
    result = subprocess.run(
        [sys.executable, "-m", "cgan.train", "--d-lr-scale", "-1", "--out", "/nonexistent/x"],
        cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2 and "--d-lr-scale" in result.stderr and "Traceback" not in result.stderr
