"""Property tests over every command line's arguments (Hypothesis).

The rule for any input: exit 0, or exactly one line on stderr with the agreed status (2: the
request is wrong, 1: something failed), never a traceback, and never a changed byte, file or
folder in an existing run. Each CLI's main() is called in this process (fast, SystemExit caught,
stderr captured); a few cases go through a real `python -m` process for the real exit status.

Valid requests are kept small (a handful of samples, one epoch on 150 images, 20 images per
digit) so the suite's time stays bounded; those that would run for minutes (a full classifier
training) are drawn only with an out-of-range value.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cgan import jobs, metrics, sampling, train
from cgan.limits import MAX_SEED
from cgan.keep import parse_keep
from cgan.runs import Run, RunError
from tests.fuzz_support import (
    CONTROL_NAMES, DEEP_JSON, DEVICES, HUGE_RANGES, NON_FINITE, assert_clean_outcome, call_main, fingerprint,
    link_to, make_fifo, run_module,
)

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

FUZZ_FAST = settings(FUZZ, max_examples=200)  # in-process and mostly refused at once: ~20 ms each

# Text a user (or a script gone wrong) might type in place of a value.
WILD = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "-", "--", "1e400", "nan", "inf", "-inf", "0x10", "1_000", "١٢",
                     "9" * 40, "-" + "9" * 40, "3,", "all", "none", "\x00", "é", "../..", "~"]),
)


def not_a_positive_int(text: str) -> bool:
    try:
        return int(text) <= 0
    except ValueError:
        return True


def ints(low: int, high: int, extremes=(0, -1, 2**31, 2**63, 2**70, -(2**70))):
    """A whole number in [low, high], an extreme, or wild text, as argv text."""
    return st.one_of(st.integers(low, high).map(str), st.sampled_from(extremes).map(str), WILD)


class Scratch:
    """A fresh folder per example, holding the kinds of --out a user gets wrong."""

    counter = itertools.count()

    def __init__(self, root: Path):
        self.path = root / f"case-{next(self.counter)}"
        self.path.mkdir(parents=True)
        (self.path / "x.png").mkdir()  # a folder with a file's name
        (self.path / "file.txt").write_text("user data")  # a file, to write under or over
        (self.path / "kept.png").write_bytes(b"the user's earlier picture")
        (self.path / "kept.npz").write_bytes(b"the user's earlier arrays")
        os.mkfifo(self.path / "pipe.png")  # a FIFO where the picture would go
        (self.path / "zero.png").symlink_to("/dev/zero")


@pytest.fixture(scope="module")
def lab(tmp_path_factory, cgan_run) -> dict:
    """A private copy of a small finished run (the run that must never change) and its neighbours:
    a copy to resume or evaluate (allowed to change only when that command succeeds)."""
    root = tmp_path_factory.mktemp("fuzz")
    run = root / "runs" / "finished"
    shutil.copytree(cgan_run.path, run)
    (root / "runs" / "no-config").mkdir()
    (root / "runs" / "a-file").write_text("not a run")
    # Runs with special files where their files should be, links, and a name with control characters.
    specials = {
        "fifo-history": lambda r: make_fifo(r / "history.jsonl"),
        "zero-config": lambda r: link_to(r / "config.json", "/dev/zero"),
        "fifo-weights": lambda r: make_fifo(r / "weights" / "generator_0004.pt"),
        "weights-linked-out": lambda r: link_to(r / "weights", run / "weights"),
        "deep-history": lambda r: (r / "history.jsonl").write_text(DEEP_JSON + "\n"),
        "infinite-width": lambda r: (r / "config.json").write_text(
            (r / "config.json").read_text().replace('"width": 1.0', '"width": Infinity')),
        "name" + CONTROL_NAMES[0] + CONTROL_NAMES[2]: lambda r: None,
    }
    for name, damage in specials.items():
        shutil.copytree(cgan_run.path, root / "runs" / name)
        damage(root / "runs" / name)
    return {"root": root, "run": run, "run_print": fingerprint(run), "specials": sorted(specials)}


def scratch_paths(lab: dict, scratch: Scratch) -> st.SearchStrategy[str]:
    folder, run = scratch.path, lab["run"]
    return st.one_of(
        st.sampled_from([
            folder / "new.png", folder / "new.npz", folder / "deeper" / "new.png",
            folder / "x.png", folder / "file.txt" / "x.png", folder / "kept.png", folder / "kept.npz",
            folder / ("n" * 300 + ".png"), folder / "new.jpg", folder / "noext", folder,
            run / "grids" / "epoch_0001.png", run / "grids" / "epoch_0099.png", run / "samples.npz",
            run, run / "config.json", Path("/proc/new.png"), Path("/sys/new.png"),
            folder / "pipe.png", folder / "zero.png", folder / "into-run" / "epoch_0001.png",
            folder / "into-run" / "new.png", folder / "linked.png", *(folder / f"{n}.png" for n in CONTROL_NAMES),
        ]).map(str),
        WILD.map(lambda text: str(folder / text)),
    )


def run_paths(lab: dict, finished: bool = True) -> st.SearchStrategy[str]:
    """--run values: the finished run (unless `finished` is False), runs with special files,
    links or control characters in their name, and paths that are no run."""
    runs = lab["root"] / "runs"
    return st.one_of(
        st.sampled_from([lab["run"]] * finished + [runs / "missing", runs / "no-config", runs / "a-file", runs,
                         lab["run"] / "grids", *(runs / name for name in lab["specials"])]).map(str),
        WILD,
    )


def assert_run_untouched(lab: dict, context: str) -> None:
    assert fingerprint(lab["run"]) == lab["run_print"], f"the run changed: {context}"


def options(pairs: dict[str, st.SearchStrategy], most: int = 3) -> st.SearchStrategy[list[str]]:
    """One to `most` of the options, each with a drawn value (flags: value None), in any order,
    sometimes with an unknown option or a stray word. Appended to a valid request they override
    its values (argparse keeps the last), so each draw changes a working command in a few places
    and a bad value is not hidden behind another one that is refused first."""
    def one(name):
        strategy = pairs[name]
        return st.just([name]) if strategy is None else strategy.map(lambda value: [name, value])

    chosen = st.lists(st.sampled_from(sorted(pairs)), unique=True, min_size=1, max_size=most)
    extra = st.lists(st.sampled_from([["--bogus"], ["stray"], ["--n"], ["-h"]]), max_size=1)
    return st.tuples(chosen.flatmap(lambda names: st.tuples(*[one(n) for n in names])), extra).flatmap(
        lambda parts: st.permutations([*parts[0], *parts[1]])
    ).map(lambda groups: [token for group in groups for token in group])


# ---------------------------------------------------------------------------------------------
# cgan.sample


@FUZZ_FAST
@given(data=st.data())
def test_sample_any_arguments(lab, data):
    scratch = Scratch(lab["root"] / "sample")
    (scratch.path / "into-run").symlink_to(lab["run"] / "grids")  # a folder link into the run
    (scratch.path / "linked.png").symlink_to(lab["run"] / "grids" / "epoch_0001.png")
    valid = ["--run", str(lab["run"]), "--out", str(scratch.path / "new.png"), "--digit", "3", "--n", "2",
             "--scale", "1"]
    argv = valid + data.draw(options({
        "--run": run_paths(lab),
        "--out": scratch_paths(lab, scratch),
        "--epoch": ints(-3, 6),
        "--digit": st.one_of(st.sampled_from(["all", "3", "3,5", "0,9", "10", "-1", "3,,4"]), WILD),
        "--n": ints(-2, 12, extremes=(0, 100_001, 2**70, 100_000)),
        "--seed": ints(-3, 3, extremes=(MAX_SEED, MAX_SEED + 1, 2**63, 2**70, -(2**70))),
        "--scale": ints(-1, 40, extremes=(0, 33, 2**70)),
        "--force": None,
    }), label="argv")
    before = fingerprint(scratch.path)
    outcome = call_main(sampling.main, argv)
    event(f"exit {outcome.code}")
    assert_clean_outcome(outcome, context=f"cgan.sample {argv}")
    assert_run_untouched(lab, f"cgan.sample {argv}")
    if outcome.code != 0:  # a refused request leaves the user's files as they were
        assert fingerprint(scratch.path) == before, f"cgan.sample {argv} changed files and failed"


# ---------------------------------------------------------------------------------------------
# cgan.train: always tiny (1 epoch on 150 images, no quality measure) unless the draw overrides it


@FUZZ
@given(data=st.data())
def test_train_any_arguments(lab, data):
    scratch = Scratch(lab["root"] / "train")
    resume_copy = scratch.path / "resumable"
    shutil.copytree(lab["run"], resume_copy)
    out = data.draw(st.one_of(
        st.sampled_from([scratch.path / "new-run", resume_copy, lab["run"], scratch.path / "file.txt",
                         scratch.path / "file.txt" / "sub", scratch.path / ("d" * 300),
                         scratch.path / "x.png", scratch.path / "pipe.png", scratch.path / "zero.png",
                         *(scratch.path / name for name in CONTROL_NAMES),
                         *(lab["root"] / "runs" / name for name in lab["specials"])]).map(str),
        WILD.map(lambda text: str(scratch.path / text)),
    ), label="--out")
    base = ["--out", out, "--epochs", "1", "--limit", "150", "--metrics-every", "0", "--device", "cpu"]
    extra = data.draw(options({
        "--model": st.one_of(st.sampled_from(["cgan", "cdcgan", "gan", "CGAN"]), WILD),
        "--epochs": ints(-2, 5, extremes=(0, 10**7, 2**70)),
        "--batch-size": ints(-2, 200, extremes=(0, 10**9, 2**70)),
        "--lr": st.one_of(st.sampled_from(["1e-3", "0", "-1", "1e400", "nan", "inf", "1e-30", "10"]), WILD),
        "--beta1": st.one_of(st.sampled_from(["0.5", "1", "1.5", "-0.1", "nan"]), WILD),
        "--beta2": st.one_of(st.sampled_from(["0.999", "1", "2", "nan"]), WILD),
        "--seed": ints(-3, 3, extremes=(MAX_SEED, MAX_SEED + 1, 2**63, 2**70)),
        "--width": st.one_of(st.sampled_from(["0.125", "0", "-1", "100", "nan", "inf", "1e-9"]), WILD),
        "--limit": ints(-2, 200, extremes=(0, 60_001, 2**70)),
        "--keep": st.one_of(st.sampled_from(["all", "1-10,every5,75", "every0", "0", "5-1", *HUGE_RANGES]),
                            WILD),
        "--metrics-every": ints(-2, 2, extremes=(-1, 2**70)),
        "--device": st.one_of(st.sampled_from(["cpu", "meta", "cpu:7", "cuda", "cuda:99", "mps", "auto"]), WILD),
        "--resume": None,
        "--data-dir": st.one_of(st.sampled_from(["/nonexistent", str(scratch.path / "file.txt"),
                                                 str(scratch.path)]), WILD),
    }), label="options")
    argv = base + extra
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        outcome = call_main(train.main, argv)
    finally:  # the trainer installs its stop flag on SIGINT/SIGTERM; give pytest its own back
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    event(f"exit {outcome.code}")
    assert_clean_outcome(outcome, context=f"cgan.train {argv}")
    assert_run_untouched(lab, f"cgan.train {argv}")


# ---------------------------------------------------------------------------------------------
# cgan.metrics


@FUZZ
@given(data=st.data())
def test_metrics_any_arguments(lab, data):
    scratch = Scratch(lab["root"] / "metrics")
    evaluable = scratch.path / "evaluable"
    shutil.copytree(lab["run"], evaluable)
    command = data.draw(st.sampled_from(["evaluate", "floor", "test-accuracy", "train-classifier",
                                         "bogus", ""]), label="command")
    if command == "evaluate":
        # Measuring a run stores figures in it, so the one run that must not change is not drawn.
        where = data.draw(st.one_of(st.just(str(evaluable)), run_paths(lab, finished=False)), label="run")
        argv = ["evaluate", where, "--per-digit", "20", "--device", "cpu"] + data.draw(options({
            "--epochs": st.one_of(st.sampled_from(["all-saved", "1", "1,2", "1-4", "4-1", "0", "-1", "99",
                                                   "1-10000000000", "1,,2", "all"]), WILD),
            "--per-digit": ints(-1, 20, extremes=(0, 1, 2, 100_001, 2**70)),
            "--seed": ints(-3, 3, extremes=(MAX_SEED, MAX_SEED + 1, 2**70)),
            "--device": st.one_of(st.sampled_from(["cpu", "meta", "cpu:7", "cuda", "cuda:9"]), WILD),
            "--missing": None,
            "--averaged": None,
        }), label="options")
    elif command == "floor":
        argv = ["floor"] + data.draw(options({
            "--per-digit": ints(-1, 20, extremes=(0, 1, 5422, 2**70)),
            "--seed": ints(-3, 3, extremes=(MAX_SEED, MAX_SEED + 1, 2**70)),
        }), label="options")
    elif command == "test-accuracy":
        argv = ["test-accuracy"] + data.draw(options({
            "--classifier": st.one_of(st.sampled_from([
                str(scratch.path / "missing.pt"), str(scratch.path / "file.txt"), str(scratch.path),
                str(lab["run"] / "weights" / "generator_0001.pt"), str(lab["run"] / "config.json"),
            ]), WILD),
        }), label="options")
    elif command == "train-classifier":  # a valid one trains for minutes: only refusals are drawn
        bad_epochs = st.one_of(st.sampled_from(["0", "-1", str(2**70), "100001"]),
                               WILD.filter(not_a_positive_int))
        argv = ["train-classifier", "--out", str(scratch.path / "c.pt"), "--epochs",
                data.draw(bad_epochs, label="--epochs")] + data.draw(options({
                    "--seed": ints(-3, 3, extremes=(MAX_SEED + 1, 2**70)),
                    "--out": scratch_paths(lab, scratch),
                }), label="options")
    else:
        argv = ([command] if command else []) + data.draw(st.lists(WILD, max_size=3), label="words")
    outcome = call_main(metrics.main, argv)
    event(f"exit {outcome.code}")
    assert_clean_outcome(outcome, context=f"cgan.metrics {argv}")
    assert_run_untouched(lab, f"cgan.metrics {argv}")


# ---------------------------------------------------------------------------------------------
# A few through real processes: the exit status a shell sees, and no traceback on the way out


@pytest.mark.parametrize("module,argv,code,fragment", [
    ("cgan.sample", ["--seed", str(2**70)], 2, "--seed"),
    ("cgan.sample", ["--epoch", "0"], 2, "--epoch"),
    ("cgan.train", ["--device", "meta"], 2, "--device"),
    ("cgan.metrics", ["floor", "--per-digit", "10", "--seed", "-1"], 2, "--seed"),
    ("cgan.metrics", ["evaluate", "RUN", "--epochs", "1-10000000000", "--device", "cpu"], 2, "--epochs"),
])
def test_bad_input_through_a_real_process(lab, tmp_path, module, argv, code, fragment):
    argv = [str(lab["run"]) if a == "RUN" else a for a in argv]
    if module == "cgan.sample":
        argv = ["--run", str(lab["run"]), "--out", str(tmp_path / "x.png"), *argv]
    if module == "cgan.train":
        argv = ["--out", str(tmp_path / "new-run"), "--epochs", "1", "--limit", "150", *argv]
    outcome = run_module(module, argv, cwd=tmp_path)
    assert_clean_outcome(outcome, allowed=(code,), context=f"{module} {argv}")
    assert fragment in outcome.stderr
    assert_run_untouched(lab, f"{module} {argv}")


# ---------------------------------------------------------------------------------------------
# What a run's files may hold, and what a job control may be given, straight into the library


KEEP_TOKENS = st.one_of(
    st.sampled_from(["all", "last", "every5", "every1", "every0", "0", "-3", "5-1", "1,,2", "everyx", *HUGE_RANGES]),
    st.integers(1, 10**30).map(str),
    st.tuples(st.integers(-2, 10**20), st.integers(-2, 10**20)).map(lambda pair: f"{pair[0]}-{pair[1]}"),
    st.integers(-1, 10**12).map(lambda step: f"every{step}"),
    WILD,
)


def reference_keeps(spec: str, epoch: int, final: int) -> bool:
    """What a keep spec means for one epoch, read token by token (no range is spelled out)."""
    spec = spec.strip().lower()
    if spec in ("", "all") or epoch == final:
        return True
    for token in (t.strip() for t in spec.split(",")):
        if token.startswith("every") and int(token[5:]) and epoch % int(token[5:]) == 0:
            return True
        if token != "last" and not token.startswith("every"):
            low, _, high = token.partition("-")
            if int(low) <= epoch <= int(high or low):
                return True
    return False


@FUZZ_FAST
@given(tokens=st.lists(KEEP_TOKENS, min_size=1, max_size=5), epochs=st.lists(st.integers(1, 10**12), max_size=8))
def test_keep_specs_are_held_lazily_and_mean_what_they_say(tokens, epochs):
    import tracemalloc

    spec = ",".join(tokens)
    tracemalloc.start()
    try:
        policy = parse_keep(spec)
    except ValueError as exc:
        assert "\n" not in str(exc) and "use all, last, N, A-B or everyK" in str(exc)
        event("refused")
        return
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < 100_000, f"{spec!r} held {peak:,} bytes"
    event("accepted")
    final = 10**13
    for epoch in epochs + [1, 2, 10**10]:
        assert policy.keeps(epoch, final) == reference_keeps(spec, epoch, final), (spec, epoch)


# (No subnormal floats: the trainer, run earlier in this process, flushes them to zero.)
NUMBERS = st.one_of(st.integers(-(2**70), 2**70).map(str),
                    st.floats(allow_nan=True, allow_subnormal=False).map(json.dumps),
                    st.sampled_from(NON_FINITE), st.sampled_from(['"7"', "true", "null", "[]", "{}"]))


def json_values(depth: int = 3) -> st.SearchStrategy[str]:
    leaves = st.one_of(NUMBERS, st.text(max_size=5).map(json.dumps))
    return st.recursive(leaves, lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda items: "[" + ", ".join(items) + "]"),
        st.dictionaries(st.sampled_from(["a", "accuracy", "averaged", "diversity"]), inner, max_size=3).map(
            lambda d: "{" + ", ".join(f'"{k}": {v}' for k, v in d.items()) + "}"),
    ), max_leaves=depth * 3)


def history_lines() -> st.SearchStrategy[str]:
    fields = st.fixed_dictionaries({}, optional={
        name: NUMBERS for name in ("epoch", "d_loss", "g_loss", "epoch_seconds", "wall_seconds", "finished_at")
    } | {"metrics": json_values()})
    objects = fields.map(lambda d: "{" + ", ".join(f'"{k}": {v}' for k, v in d.items()) + "}")
    good = st.integers(1, 4).map(lambda e: json.dumps({"epoch": e, "d_loss": 1.0, "g_loss": 1.0,
                                                       "epoch_seconds": 0.5, "wall_seconds": 0.5,
                                                       "finished_at": 1.7e9}))
    return st.one_of(objects, good, json_values(), st.just(DEEP_JSON),
                     st.integers(1, 2000).map(lambda n: "[" * n + "]" * n), st.text(max_size=20))


@FUZZ_FAST
@given(whole=st.integers(0, 3), lines=st.lists(history_lines(), max_size=4),
       status=st.one_of(json_values(), st.just(DEEP_JSON)))
def test_any_history_and_status_read_as_whole_epochs_and_a_known_state(tmp_path_factory, whole, lines, status):
    # `whole` good records first, so the damage also lands after complete epochs.
    lines = [json.dumps({"epoch": e, "d_loss": 1.0, "g_loss": 1.0, "epoch_seconds": 0.5, "wall_seconds": 0.5,
                         "finished_at": 1.7e9}) for e in range(1, whole + 1)] + lines
    folder = tmp_path_factory.mktemp("files") / "run"
    folder.mkdir()
    (folder / "config.json").write_text('{"model": "cgan", "epochs": 4}')
    (folder / "history.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "status.json").write_text(status)
    run = Run(folder)
    records = run.history()
    assert [r.epoch for r in records] == list(range(1, len(records) + 1))
    for record in records:
        for seconds in (record.epoch_seconds, record.wall_seconds, record.finished_at):
            assert seconds >= 0 and seconds < float("inf")
    event(f"{len(records)} records")
    assert run.state() in ("running", "finished", "stopped", "failed", "queued", "interrupted")
    job = jobs.Job.read(run)
    assert 0 <= job.epochs_total < 2**63
    eta = job.eta_seconds()
    assert eta is None or 0 <= eta < float("inf")
    try:
        run.update_metrics(1, {"accuracy": 0.5})
    except RunError as exc:
        assert "\n" not in str(exc)


JOB_NAMES = st.one_of(st.text(max_size=12), st.sampled_from([*CONTROL_NAMES, "ok\n", "../x", "a/b", ".", "..",
                                                             ".hidden", "x" * 300, "\x00", "my run"]))


@FUZZ_FAST
@given(name=JOB_NAMES)
def test_job_controls_given_any_name_answer_in_one_line_and_make_nothing(tmp_path_factory, name):
    root = tmp_path_factory.mktemp("jobs")
    calls = {
        # An invalid request (0 epochs) is refused whatever the name: nothing may start.
        "start": lambda: jobs.start(jobs.JobRequest(name=name, epochs=0), root=root),
        "stop": lambda: jobs.stop(name, root),
        "resume": lambda: jobs.resume(name, root),
        "delete": lambda: jobs.delete(name, root),
        "cancel": lambda: jobs.cancel(name, root),
    }
    for verb, call in calls.items():
        try:
            call()
        except jobs.JobError as exc:
            assert str(exc) and "\n" not in str(exc) and "\r" not in str(exc), (verb, name, str(exc))
        else:
            raise AssertionError(f"{verb} {name!r} did something in an empty folder")
    assert [p.name for p in root.iterdir() if p.name != jobs.LOCK_NAME] == []
    for device in DEVICES:  # never a folder named after a device either
        assert not (root / Path(device).name).exists()
