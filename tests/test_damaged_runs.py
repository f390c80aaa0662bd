"""A corpus of damaged runs, made here from a tiny real run, through every reader and writer.

Each damage (cut files, random bytes, JSON of the wrong types, non-finite numbers and nesting too
deep to parse, files replaced by folders, FIFOs, devices and links out of the run, folders by
files, stray temporary files, control characters in the run's name, read-only copies) goes
through `cgan.sample`, `cgan.metrics evaluate`, `cgan.train --resume`, `cgan.jobs list` and every
app page. The rule everywhere: exit 0, or
one line with exit 1 or 2 and no traceback; on the app's pages no exception box, every message one
line; a command that fails changes no byte of the run's finished data, and a reader changes
nothing at all.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import torch

from cgan import jobs, metrics, sampling, train
from tests.conftest import PAGES, ROOT
from tests.fuzz_support import (
    CONTROL_NAMES, DEEP_JSON, HUGE_RANGES, assert_clean_outcome, call_main, fingerprint, jsonl_record, link_to,
    make_fifo, read_only_mounts_work, run_module,
)

EPOCHS = 2  # the tiny run's epochs; epoch 2 is its newest


def noise_bytes(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def cut(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def to_folder(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
    path.mkdir()
    (path / "inside").write_text("x")


def to_file(path: Path) -> None:
    shutil.rmtree(path)
    path.write_bytes(b"a file where a folder was")


def edit_json(name: str, **changes):
    def damage(run: Path) -> None:
        data = json.loads((run / name).read_text())
        data.update(changes)
        (run / name).write_text(json.dumps(data))
    return damage


def write(name: str, data: bytes):
    return lambda run: (run / name).write_bytes(data)


def huge_grid(run: Path) -> None:
    buffer = io.BytesIO()
    Image.new("L", (1120, 1120), 0).save(buffer, format="PNG")
    (run / "grids" / f"epoch_{EPOCHS:04d}.png").write_bytes(buffer.getvalue())


def leftover_temporaries(run: Path) -> None:
    # What a trainer killed in the middle of its writes leaves behind.
    (run / ".status.json.abc123.tmp").write_bytes(b'{"state": "runn')
    (run / ".last.pt.def456.tmp").write_bytes(noise_bytes(500))
    (run / "grids" / ".epoch_0003.png.x1.tmp").write_bytes(b"\x89PNG")
    (run / "weights" / ".generator_0003.pt.x2.tmp").write_bytes(noise_bytes(300))


def raw_json(name: str, **changes: str):
    """Set top-level fields of a JSON file to raw JSON text (Infinity, 1e400, deep nesting)."""
    def damage(run: Path) -> None:
        data = json.loads((run / name).read_text())
        for key in changes:
            data.pop(key, None)
        text = json.dumps(data)[:-1]
        extra = ", ".join(f'"{key}": {value}' for key, value in changes.items())
        (run / name).write_text(f"{text}{', ' if len(data) else ''}{extra}}}")
    return damage


def history_line(line: str):
    """Keep the history's first record and put `line` after it."""
    def damage(run: Path) -> None:
        first = (run / "history.jsonl").read_text().splitlines()[0]
        (run / "history.jsonl").write_text(f"{first}\n{line}\n")
    return damage


def beyond_cap(name: str, size: int):
    def damage(run: Path) -> None:
        with open(run / name, "r+b") as f:
            f.truncate(size)  # sparse: no disk is used
    return damage


def edit_last(change):
    def damage(run: Path) -> None:
        state = torch.load(run / "last.pt", weights_only=True)
        state.update(change(state))
        torch.save(state, run / "last.pt")
    return damage


def link_out(name: str):
    """`name` (a folder of the run) becomes a link to a copy of it outside the run."""
    def damage(run: Path) -> None:
        outside = run.parent / f"{run.name}-outside"
        shutil.copytree(run / name, outside)
        link_to(run / name, outside)
    return damage


def renamed(suffix: str, then=None):
    """The run's folder gets `suffix` (control characters) in its name; `then` damages it more."""
    def damage(run: Path) -> Path:
        target = run.with_name(run.name + suffix)
        run.rename(target)
        if then is not None:
            then(target)
        return target
    return damage


GEN = f"weights/generator_{EPOCHS:04d}.pt"
GRID = f"grids/epoch_{EPOCHS:04d}.png"

DAMAGES = {
    "history random bytes": write("history.jsonl", noise_bytes(3000)),
    "history cut": lambda run: cut(run / "history.jsonl"),
    "history empty": write("history.jsonl", b""),
    "history a folder": lambda run: to_folder(run / "history.jsonl"),
    "history wrong types": write("history.jsonl", b'{"epoch": "two", "losses": null}\n[1, 2]\n"text"\nnull\n'),
    "history numbers out of range": write("history.jsonl", b'{"epoch": 1e400, "seconds": -1}\n'),
    "config cut": lambda run: cut(run / "config.json"),
    "config random bytes": write("config.json", noise_bytes(400, 1)),
    "config a list": write("config.json", b"[]"),
    "config a folder": lambda run: to_folder(run / "config.json"),
    "config other model": edit_json("config.json", model="cdcgan"),
    "config unknown model": edit_json("config.json", model="gan"),
    "config width text": edit_json("config.json", width="wide"),
    "config epochs text": edit_json("config.json", epochs="many"),
    "config seed huge": edit_json("config.json", seed=2**70),
    "status random bytes": write("status.json", noise_bytes(200, 2)),
    "status wrong types": write("status.json", b'{"state": 7, "pid": "x", "updated_at": "now"}'),
    "status a folder": lambda run: to_folder(run / "status.json"),
    "weights random bytes": write(GEN, noise_bytes(5000, 3)),
    "weights cut": lambda run: cut(run / GEN),
    "weights entry a folder": lambda run: to_folder(run / GEN),
    "weights a file": lambda run: to_file(run / "weights"),
    "last random bytes": write("last.pt", noise_bytes(5000, 4)),
    "last cut": lambda run: cut(run / "last.pt"),
    "last a folder": lambda run: to_folder(run / "last.pt"),
    "grid random bytes": write(GRID, noise_bytes(700, 5)),
    "grid cut": lambda run: cut(run / GRID),
    "grid 1120 pixels": huge_grid,
    "grids a file": lambda run: to_file(run / "grids"),
    "leftover temporary files": leftover_temporaries,
    # Non-finite numbers and nesting too deep to parse
    "history deeply nested line": history_line(DEEP_JSON),
    "history wall seconds Infinity": history_line(jsonl_record(2, wall_seconds="Infinity")),
    "history epoch seconds NaN": history_line(jsonl_record(2, epoch_seconds="NaN")),
    "history negative epoch": write("history.jsonl", (jsonl_record(-1) + "\n" + jsonl_record(0) + "\n").encode()),
    "history epoch 1e400": history_line(jsonl_record("1e400")),
    "history beyond its size cap": beyond_cap("history.jsonl", 300 << 20),
    "config width Infinity": raw_json("config.json", width="Infinity"),
    "config width 1e400": raw_json("config.json", width="1e400"),
    "config cdcgan width 1e6": raw_json("config.json", model='"cdcgan"', width="1e6"),
    "config epochs Infinity": raw_json("config.json", epochs="Infinity"),
    "config created NaN": raw_json("config.json", created_at="NaN"),
    "config keep a huge range": raw_json("config.json", keep=json.dumps(HUGE_RANGES[0])),
    "config deeply nested": raw_json("config.json", notes=DEEP_JSON),
    "status non-finite times": raw_json("status.json", updated_at="NaN", launched_at="Infinity", pid="1e400"),
    "status deeply nested": write("status.json", DEEP_JSON.encode()),
    "last record of another epoch": edit_last(lambda s: {"record": {**s["record"], "epoch": 7}}),
    "last epoch text": edit_last(lambda s: {"epoch": "2"}),
    "last rng a number": edit_last(lambda s: {"rng": 5}),
    # Special files where a run's files should be
    "history a FIFO": lambda run: make_fifo(run / "history.jsonl"),
    "config a FIFO": lambda run: make_fifo(run / "config.json"),
    "status a FIFO": lambda run: make_fifo(run / "status.json"),
    "weights entry a FIFO": lambda run: make_fifo(run / GEN),
    "grid a FIFO": lambda run: make_fifo(run / GRID),
    "train log a FIFO": lambda run: make_fifo(run / "train.log"),
    "trainer lock a FIFO": lambda run: make_fifo(run / ".trainer.lock"),
    "history linked to /dev/zero": lambda run: link_to(run / "history.jsonl", "/dev/zero"),
    "config linked to /dev/zero": lambda run: link_to(run / "config.json", "/dev/zero"),
    "status linked to /dev/urandom": lambda run: link_to(run / "status.json", "/dev/urandom"),
    "last linked to /dev/zero": lambda run: link_to(run / "last.pt", "/dev/zero"),
    "weights entry linked to /dev/zero": lambda run: link_to(run / GEN, "/dev/zero"),
    # Links out of the run
    "weights linked out of the run": link_out("weights"),
    "grids linked out of the run": link_out("grids"),
    # Control characters in the run's name
    "name with control characters": renamed(CONTROL_NAMES[0] + CONTROL_NAMES[2]),
    "name with control characters, last random bytes": renamed(
        CONTROL_NAMES[1] + CONTROL_NAMES[4], lambda run: (run / "last.pt").write_bytes(noise_bytes(5000, 6))),
}

# Files that record how a run is doing rather than what it produced: a trainer that refuses to
# resume may say so in them. Everything else is finished data.
BOOKKEEPING = ("status.json", "train.log")


def finished_data(run: Path) -> dict[str, str]:
    return {k: v for k, v in fingerprint(run).items()
            if k not in BOOKKEEPING and not Path(k).name.startswith(".")}


@pytest.fixture(scope="module")
def tiny(tiny_run) -> Path:
    """A real 2-epoch CGAN run on 150 images (the session's tiny_run): every file a finished run
    holds (and one a resume continues: its configuration is one the trainer accepts)."""
    assert tiny_run.epochs() == list(range(1, EPOCHS + 1))
    return tiny_run.path


def make_damaged(tiny: Path, target: Path, damage: str) -> Path:
    """A copy of the tiny run at `target` with `damage` done to it; its path (a damage may rename
    it). Made afresh for each use: FIFOs and device links cannot be copied."""
    shutil.copytree(tiny, target)
    result = DAMAGES[damage](target)
    return result if isinstance(result, Path) else target


@pytest.fixture(scope="module")
def corpus(tiny, tmp_path_factory) -> Path:
    """A checkpoints folder: the intact run and one copy per damage."""
    root = tmp_path_factory.mktemp("corpus")
    shutil.copytree(tiny, root / "intact")
    for name in DAMAGES:
        make_damaged(tiny, root / slug(name), name)
    return root


# Damages whose defect is in code outside these tests and takes down every page (the run list is
# read on each one): kept out of the shared app corpus so the other damages are still checked,
# and tested alone below, marked strict so the mark must go when the fix lands.
APP_KNOWN: dict[str, str] = {}  # damage -> why a page still breaks on it


@pytest.fixture(scope="module")
def app_corpus(tiny, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("app-corpus")
    shutil.copytree(tiny, root / "intact")
    for name in DAMAGES:
        if name not in APP_KNOWN:
            make_damaged(tiny, root / slug(name), name)
    return root


def slug(name: str) -> str:
    return name.replace(" ", "-").replace("/", "_").replace(",", "")


def in_checkpoints(root: Path, main):
    """`main` with $CGAN_CHECKPOINTS pointing at `root` while it runs."""
    def with_root(argv):
        before = os.environ.get("CGAN_CHECKPOINTS")
        os.environ["CGAN_CHECKPOINTS"] = str(root)
        try:
            return main(argv)
        finally:
            if before is None:
                os.environ.pop("CGAN_CHECKPOINTS", None)
            else:
                os.environ["CGAN_CHECKPOINTS"] = before
    return with_root


COMMANDS = ("sample", "sample epoch", "evaluate", "resume", "jobs list")


def commands(run: Path, out: Path) -> dict[str, tuple]:
    return {
        "jobs list": (in_checkpoints(run.parent, jobs.main), ["list"]),
        "sample": (sampling.main, ["--run", str(run), "--out", str(out / "s.npz"), "--digit", "3", "--n", "2"]),
        "sample epoch": (sampling.main, ["--run", str(run), "--epoch", str(EPOCHS), "--out", str(out / "e.png"),
                                         "--digit", "3", "--n", "2"]),
        "evaluate": (metrics.main, ["evaluate", str(run), "--per-digit", "20", "--device", "cpu"]),
        "resume": (train.main, ["--resume", "--out", str(run), "--epochs", str(EPOCHS + 1), "--device", "cpu"]),
    }


def run_in_process(main, argv):
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return call_main(main, argv)
    finally:  # the trainer installs its stop flag; give pytest its handlers back
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


# Defects in code outside these tests, open while this file was written: each is marked here,
# strict, so the mark must go when the fix lands.
KNOWN: dict[tuple[str, str], str] = {}  # (damage, command) -> why it still fails


def cases() -> list:
    found = []
    for command in COMMANDS:
        for damage in DAMAGES:
            reason = KNOWN.get((damage, command))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            found.append(pytest.param(damage, command, marks=marks, id=f"{command}-{damage}"))
    return found


def history_without_figures(text: str) -> list:
    """The history's records with their quality figures left out (what evaluate may add)."""
    records = []
    for line in text.splitlines():
        record = json.loads(line)
        record.pop("metrics", None)
        records.append(record)
    return records


@pytest.mark.parametrize("damage,command", cases())
def test_a_damaged_run_through_each_command(tiny, tmp_path, damage, command):
    run = make_damaged(tiny, tmp_path / slug(damage), damage)
    outside = tmp_path / f"{slug(damage)}-outside"
    outside_before = fingerprint(outside) if outside.exists() else None
    out = tmp_path / "out"
    out.mkdir()
    main, argv = commands(run, out)[command]
    everything, finished = fingerprint(run), finished_data(run)
    history = run / "history.jsonl"
    history_before = history.read_bytes() if history.is_file() and not history.is_symlink() else None
    outcome = run_in_process(main, argv)
    assert_clean_outcome(outcome, context=f"{command} on {damage}: {argv}")
    if outside_before is not None:  # a link out of the run: nothing writes through it
        assert fingerprint(outside) == outside_before, f"{command} wrote out of the run through a link"
    if command.startswith("sample") or command == "jobs list":
        assert fingerprint(run) == everything, f"{command} changed the run ({damage})"
    elif outcome.code != 0:
        after = finished_data(run)
        if command == "evaluate" and after.get("history.jsonl") != finished.get("history.jsonl"):
            # It may store the figures of the epochs it measured before it met the damage.
            before_records = history_without_figures(history_before.decode())
            assert history_without_figures(history.read_text()) == before_records, \
                f"evaluate rewrote the history ({damage})"
            after["history.jsonl"] = finished["history.jsonl"]
        assert after == finished, f"a failed {command} changed the run's data ({damage})"


@pytest.mark.parametrize("damage", [
    "intact", "history random bytes",
    "weights cut",
])
def test_a_read_only_run_through_each_command(corpus, tmp_path, damage):
    if not read_only_mounts_work(tmp_path):
        pytest.skip("this machine cannot mount a folder read-only for one process (unshare -rm)")
    run = tmp_path / slug(damage)
    shutil.copytree(corpus / slug(damage), run)
    out = tmp_path / "out"
    out.mkdir()
    module = {sampling.main: "cgan.sample", metrics.main: "cgan.metrics", train.main: "cgan.train"}
    before = fingerprint(run)
    for command, (main, argv) in commands(run, out).items():
        if main not in module:
            continue  # cgan.jobs list reads a checkpoints folder, not one run
        outcome = run_module(module[main], argv, cwd=tmp_path, read_only=(run,))
        assert_clean_outcome(outcome, context=f"{command} on a read-only {damage} run")
        if damage == "intact" and command.startswith("sample"):
            assert outcome.code == 0, outcome.stderr  # reading needs no write access
    assert fingerprint(run) == before


# ---------------------------------------------------------------------------------------------
# The app: every page, with the checkpoints folder pointed at the corpus

APP_TIMEOUT = 90


def open_app(monkeypatch, corpus: Path):
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("CGAN_CHECKPOINTS", str(corpus))
    return AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=APP_TIMEOUT).run()


def page_trouble(at) -> list[str]:
    """What breaks the rule on the page now: an exception box, a message of several lines."""
    found = [f"exception: {e.value}" for e in at.exception]
    for element in (*at.error, *at.warning):
        text = str(element.value)
        if "\n" in text.strip() or "Traceback" in text:
            found.append(f"message of several lines: {text[:300]}")
    return found


def runs_in(root: Path) -> dict[str, str]:
    """Fingerprint of every run under `root`, leaving out the app's own files there (.jobs.lock)."""
    return {k: v for k, v in fingerprint(root).items() if k != "." and not k.startswith(".")}


def names_a_damaged_run(message: str) -> bool:
    """Pages that show several runs at once (real vs models) may report a damaged one by name
    (shown as text: Markdown's escapes removed)."""
    message = message.replace("\\", "")
    return any(slug(damage) in message for damage in DAMAGES)


def offered_as(damage: str, listed: list[str]) -> str | None:
    """The run picker's option for a damaged run (a renamed one's name holds control characters)."""
    name = slug(damage)
    if name in listed:
        return name
    renamed = [o for o in listed if o.startswith(name) and o != name and not o[len(name):].startswith("-")]
    return renamed[0] if renamed else None


def test_damaged_neighbours_leave_the_intact_run_whole(monkeypatch, app_corpus):
    corpus = app_corpus
    before = runs_in(corpus)
    at = open_app(monkeypatch, corpus)
    at.sidebar.selectbox(key="run").set_value("intact").run()
    for page in PAGES:
        at.switch_page(f"views/{page}.py").run()
        assert not page_trouble(at), (page, page_trouble(at))
        about_intact = [e.value for e in at.error if not names_a_damaged_run(e.value)]
        assert not about_intact, (page, about_intact)  # nothing is wrong with this run
    assert runs_in(corpus) == before


@pytest.mark.parametrize("page", PAGES)
def test_each_page_on_each_damaged_run(monkeypatch, app_corpus, page):
    corpus = app_corpus
    before = runs_in(corpus)
    at = open_app(monkeypatch, corpus)
    at.switch_page(f"views/{page}.py").run()
    listed = at.sidebar.selectbox(key="run").options
    problems, shown = {}, []
    for damage in DAMAGES:
        option = offered_as(damage, listed)
        if damage in APP_KNOWN or option is None:
            continue  # not offered as a run (e.g. its config is unreadable): nothing to break
        shown.append(damage)
        at.sidebar.selectbox(key="run").set_value(option).run()
        if page_trouble(at):
            problems[damage] = page_trouble(at)
    assert not problems, problems
    print(f"{page}: {len(shown)} damaged runs offered and shown: {shown}")
    assert len(shown) >= len(DAMAGES) - 8, f"only {len(shown)} damaged runs were offered: {listed}"
    # And back on the intact run, the page is whole again.
    at.sidebar.selectbox(key="run").set_value("intact").run()
    assert not page_trouble(at), page_trouble(at)
    assert not [e.value for e in at.error if not names_a_damaged_run(e.value)]
    assert runs_in(corpus) == before, "a page changed a run"


def test_the_corpus_is_what_it_claims(corpus, tiny):
    # Guards against a damage that silently did nothing.
    intact = fingerprint(tiny)
    names = {path.name for path in corpus.iterdir()}
    for damage in DAMAGES:
        if slug(damage) in names:
            assert fingerprint(corpus / slug(damage)) != intact, damage
        else:  # renamed: a folder whose name starts with the damage's and holds control characters
            (renamed_to,) = [n for n in names if n.startswith(slug(damage))
                             and not n[len(slug(damage)):].startswith("-")]
            assert any(ord(c) < 32 or c == "\u2028" for c in renamed_to), renamed_to
    assert (corpus / slug("history a FIFO") / "history.jsonl").is_fifo()
    assert os.path.realpath(corpus / slug("config linked to /dev/zero") / "config.json") == "/dev/zero"
    deep = (corpus / slug("history deeply nested line") / "history.jsonl").read_text().splitlines()[1]
    assert deep.count("[") == 100_000
    assert np.frombuffer((corpus / "history-random-bytes" / "history.jsonl").read_bytes()[:200],
                         np.uint8).max() > 127  # not UTF-8 text
