"""How many CPU threads the trainer uses, decided from measurements rather than a fixed default.

On a quiet 2-core machine the trainer is fastest with both cores; beside a busy process (the app
server, a browser) two threads wait on each other at every operation and an epoch can cost three
times the single-thread time. So the trainer measures: `ThreadTuner.run_epoch` times short blocks
of real training iterations (they train for real: nothing is wasted) at each candidate thread
count, interleaved and repeated, keeps the fastest, and measures again every few epochs, or at
once when a block of iterations runs `DRIFT` times slower or faster than what the choice was made
on (a lecture is not steady).

`thread_count_free_arithmetic()` asks MKL for matrix products whose bits do not depend on the
thread count, so that the choice never changes a training run.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import torch

from cgan.threads import cpu_cores

# What torch starts with: every core, or OMP_NUM_THREADS when the user pinned it (then no tuning).
STARTING_THREADS = torch.get_num_threads()
DRIFT = 1.3  # a block this much slower (or faster) than expected triggers a new measurement
RECHECK_EPOCHS = 5  # and a new measurement every this many epochs regardless
ROUNDS = 3  # interleaved measurement rounds per candidate (the median is kept)


class ThreadTuner:
    """Chooses torch's intra-op thread count for a loop of equal iterations."""

    def __init__(self, candidates: list[int] | None = None, log: Callable[[str], None] | None = None,
                 once: bool = False):
        cores = cpu_cores()
        self.candidates = sorted(set(candidates or {1, cores}))
        self.threads = max(self.candidates)
        self.expected: float | None = None  # seconds per iteration at the chosen count
        self.per_iteration: dict[int, float] = {}  # the last measurement, per candidate
        self.epochs_since_check = 0
        self.checks = 0
        self.log = log
        # once: choose in the first epoch only, then keep that count (for arithmetic that
        # depends on the thread count: every later epoch runs at one known count).
        self.once = once
        self.epochs = 0

    def run_epoch(self, iterations: int, step: Callable[[int], None]) -> None:
        """step(i) for i in 0..iterations-1, choosing the thread count on the way."""
        # Small blocks: under contention every block measured at the slow count costs time,
        # and the check must catch a change well before the epoch ends.
        block = max(2, min(8, iterations // 32))
        due = self.expected is None or self.epochs_since_check >= RECHECK_EPOCHS
        if self.once and self.epochs > 0:
            due = False
        self.epochs += 1
        i = 0
        while i < iterations:
            if due and len(self.candidates) > 1 and iterations - i >= block * len(self.candidates) * ROUNDS:
                i = self._measure(step, i, block)
                due = False
                continue
            torch.set_num_threads(self.threads)
            n = min(block * 4, iterations - i)
            start = time.perf_counter()
            for _ in range(n):
                step(i)
                i += 1
            seconds = (time.perf_counter() - start) / n
            drifted = self.expected is not None and not (self.expected / DRIFT <= seconds <= self.expected * DRIFT)
            if drifted and not self.once:
                due = True  # conditions changed: measure again with the next iterations
        self.epochs_since_check += 1

    def _measure(self, step: Callable[[int], None], i: int, block: int) -> int:
        times: dict[int, list[float]] = {n: [] for n in self.candidates}
        for round_ in range(ROUNDS):
            order = self.candidates if round_ % 2 == 0 else self.candidates[::-1]
            for n in order:
                torch.set_num_threads(n)
                start = time.perf_counter()
                for _ in range(block):
                    step(i)
                    i += 1
                times[n].append((time.perf_counter() - start) / block)
        self.per_iteration = {n: statistics.median(t) for n, t in times.items()}
        previous = self.threads
        self.threads = min(self.per_iteration, key=self.per_iteration.get)
        self.expected = self.per_iteration[self.threads]
        self.epochs_since_check = 0
        self.checks += 1
        torch.set_num_threads(self.threads)
        if self.log is not None and (self.threads != previous or self.checks == 1):
            figures = ", ".join(f"{n}: {t * 1e3:.2f} ms" for n, t in self.per_iteration.items())
            self.log(f"threads: {self.threads} (per iteration {figures})")
        return i


_strict_blas: bool | None = None


def thread_count_free_arithmetic() -> bool:
    """Ask MKL for results that do not depend on the thread count (its "strict CNR" mode: for
    gemm, the same bits on 1 or 2 threads), so that choosing threads never changes a training
    run. Must happen before the process's first matrix product; True if the mode is on."""
    global _strict_blas
    if _strict_blas is None:
        os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")  # inherited by child processes
        _strict_blas = _mkl_strict_mode()
    return _strict_blas


def _mkl_strict_mode() -> bool:
    import ctypes

    if "mkl" not in torch.__config__.show().lower():
        return False
    try:
        lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))
        cbwr_set = lib.mkl_serv_cbwr_set  # mkl_cbwr_set, as exported by torch's static MKL
    except (OSError, AttributeError):
        return False
    MKL_CBWR_AUTO, MKL_CBWR_STRICT = 2, 0x10000
    # 0: set now. A failure means MKL is already in use; then the environment variable above
    # decided at MKL's first call: test for the same bits on 1 and 2 threads.
    if cbwr_set(MKL_CBWR_AUTO | MKL_CBWR_STRICT) == 0:
        return True
    return _same_bits_on_one_and_two_threads()


def _same_bits_on_one_and_two_threads() -> bool:
    before = torch.get_num_threads()
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(300, 794, generator=generator), torch.randn(794, 128, generator=generator)
    try:
        torch.set_num_threads(1)
        one = a @ b
        torch.set_num_threads(2)
        two = a @ b
    finally:
        torch.set_num_threads(before)
    return torch.equal(one, two)
