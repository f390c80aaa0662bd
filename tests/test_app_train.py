"""The Train page, headless (AppTest): its form's checks, and starting, watching and controlling
real training jobs through its buttons."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import as_its_trainer, as_shown, wait_until
from cgan import jobs
from cgan.runs import Run
from cgan.training.cli import EXIT_STOPPED

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "app" / "views" / "train.py"
GOOD = dict(epochs=2, limit=500, batch_size=50, lr=0.001, seed=0)


@pytest.fixture
def root(tmp_path, monkeypatch, no_leftover_trainers) -> Path:
    monkeypatch.setenv("CGAN_CHECKPOINTS", str(tmp_path))
    monkeypatch.setenv("CGAN_MAX_JOBS", "1")
    return no_leftover_trainers(tmp_path)


def open_page() -> AppTest:
    page = AppTest.from_file(str(PAGE), default_timeout=60).run()
    assert not page.exception
    return page


def fill(page: AppTest, name: str, model: str = "cgan", **values) -> None:
    if page.radio(key="train_model").value != model:
        page.radio(key="train_model").set_value(model).run()
    for field, value in {**GOOD, **values}.items():
        if field == "lr":  # a text box: any text reaches the check, none is silently replaced
            page.text_input(key=f"train_{model}_lr").input(str(value))
        else:
            page.number_input(key=f"train_{model}_{field}").set_value(value)
    page.text_input(key="train_name").input(name)


def press(page: AppTest, key: str) -> AppTest:
    page.button(key=key).click().run()
    assert not page.exception
    return page


def elements(block):
    """Every element of the page in the order it is shown."""
    for child in block.children.values():
        yield child
        if getattr(child, "children", None):
            yield from elements(child)


def message_after(page: AppTest, label: str) -> str | None:
    """The error shown right below the field labelled `label`, if any."""
    shown = list(elements(page.main))
    for i, element in enumerate(shown):
        if getattr(element, "label", None) == label and i + 1 < len(shown):
            following = shown[i + 1]
            return as_shown(following.value) if following.type == "error" else None
    raise AssertionError(f"no field labelled {label!r}")


def banner(page: AppTest) -> str:
    """The line at the top of the page about the run this session started."""
    found = [as_shown(m.value) for m in page.markdown if m.value.startswith(("**Started ", "**Queued "))]
    return found[0] if found else ""


def badges(page: AppTest) -> list[str]:
    return [as_shown(m.value) for m in page.markdown if "-badge[" in m.value]


def progress(page: AppTest) -> list[str]:
    return [bar.proto.text for bar in page.get("progress")]


def watch(page: AppTest, until, timeout: float = 90) -> AppTest:
    """Rerun the page (AppTest does not fire the refresh timer) until `until(page)` holds."""
    def shown() -> bool:
        if until(page):
            return True
        page.run()
        assert not page.exception
        return False

    wait_until(shown, timeout, interval=0.5, message=lambda: f"the page; it shows {badges(page)} {progress(page)}")
    return page


BAD_INPUTS = [
    (dict(name="../escape"), "Run name", "Run name: 1-64 letters"),
    (dict(name="taken"), "Run name", "already exists"),
    (dict(epochs=0), "Epochs", "Epochs: must be a whole number from 1 to 100,000"),
    (dict(epochs=100_001), "Epochs", "Epochs: must be a whole number from 1 to 100,000"),
    (dict(limit=0), "Training images", "Training images: must be a whole number from 1 to 60,000"),
    (dict(limit=90000), "Training images", "Training images: must be a whole number from 1 to 60,000"),
    (dict(batch_size=0), "Batch size", "Batch size: must be a whole number from 1 to 500"),
    (dict(batch_size=501), "Batch size", "(the training images)"),
    (dict(lr=0.0), "Learning rate", "Learning rate: must be a number more than 0"),
    (dict(lr=2.0), "Learning rate", "Learning rate: must be a number more than 0"),
    (dict(seed=-3), "Seed", "Seed: must be a whole number from 0 to"),
    (dict(beta1=1.0), "Adam beta1", "Adam beta1: must be a number from 0 up to (not including) 1"),
    (dict(model="cdcgan", width=0.0), "Width", "Width: must be a number more than 0"),
    (dict(g_steps=0), "G steps per D step", "G steps per D step: must be a whole number from 1"),
    (dict(g_steps=11), "G steps per D step", "from 1 (the report) to 10"),
    (dict(model="cdcgan", width=9.0), "Width", "Width: must be a number more than 0"),
]


def test_each_bad_input_is_named_beside_its_field_and_starts_nothing(root):
    (root / "taken").mkdir()
    page = open_page()
    assert page.text_input(key="train_name").value == "live-1"  # a free name is offered
    for change, label, words in BAD_INPUTS:
        change = dict(change)
        name = change.pop("name", "fresh")
        model = change.pop("model", "cgan")
        fill(page, name, model, **{**({"width": 0.25} if model == "cdcgan" else {}), **change})
        press(page, "train_start")
        shown = message_after(page, label)
        assert shown and words in shown, (change, label, shown)
        assert len(page.error) == 1, [as_shown(e.value) for e in page.error]  # only that field complains
        assert sorted(p.name for p in root.iterdir()) == ["taken"]  # no run folder, no job record
    # Put right, the same form starts a job and the messages go.
    fill(page, "fresh", "cgan", g_steps=1)
    press(page, "train_start")
    assert not page.error
    assert jobs.get_job("fresh", root).active


def test_start_watch_queue_a_second_and_delete_with_confirmation(root):
    page = open_page()
    fill(page, "lecture-demo")
    press(page, "train_start")
    assert banner(page).startswith("**Started lecture-demo**")
    assert badges(page) and "running" in badges(page)[0]
    assert page.text_input(key="train_name").value == "live-1"  # the next free name is offered

    # One job at a time: a second start (other settings) waits in the queue, with its place,
    # and can be cancelled there.
    fill(page, "second", seed=7)
    press(page, "train_start")
    assert banner(page).startswith("**Queued second**")
    assert any(p.startswith("Queued, place 1: starts ") for p in progress(page)), progress(page)
    assert Run(root / "second").state() == "queued" and not (root / "second" / "config.json").exists()
    press(page, "train_cancel_queued_second")
    assert not (root / "second").exists()
    assert any("Cancelled second" in as_shown(t.value) for t in page.toast)

    page = watch(page, lambda p: any("finished" in b for b in badges(p)))
    assert progress(page) == ["Epoch 2 of 2 · trained in " + progress(page)[0].split("trained in ")[1]]
    assert Run(root / "lecture-demo").epochs() == [1, 2]
    assert "D loss" in " ".join(m.value for m in page.markdown)
    assert len(page.get("plotly_chart")) == 1
    assert "[  2/2] ptime:" in page.code[0].value  # the tail of the trainer's log

    press(page, "train_delete_lecture-demo")
    assert (root / "lecture-demo").exists()  # only asked, not done
    assert "This cannot be undone" in page.warning[0].value
    press(page, "train_cancel_lecture-demo")
    assert (root / "lecture-demo").exists()
    assert not [w for w in page.warning if "cannot be undone" in w.value]  # the dialog closed
    press(page, "train_delete_lecture-demo")
    press(page, "train_confirm_lecture-demo")
    assert not (root / "lecture-demo").exists()
    assert jobs.list_jobs(root) == []
    assert any("Deleted lecture-demo" in as_shown(t.value) for t in page.toast)


def test_stop_then_resume_from_the_page(root):
    page = open_page()
    fill(page, "long", epochs=300, limit=1000, batch_size=100)
    press(page, "train_start")
    page = watch(page, lambda p: not progress(p)[0].startswith("Epoch 0"))
    assert progress(page)[0].startswith("Epoch ") and "left" in progress(page)[0]  # with an ETA
    assert not [b for b in page.button if b.key == "train_delete_long"]  # no delete while running

    press(page, "train_stop_long")
    assert "stopping" in badges(page)[0]
    page = watch(page, lambda p: "stopped" in badges(p)[0])
    run = Run(root / "long")
    epochs = run.epochs()
    assert run.status()["state"] == "stopped" and 1 <= epochs[-1] < 300
    assert int(run.load_resume_state()["epoch"]) == epochs[-1]  # the last epoch is complete

    press(page, "train_resume_long")
    assert "running" in badges(page)[0]
    job = jobs.get_job("long", root)
    assert job.active and "--resume" in Path(f"/proc/{job.pid}/cmdline").read_text().split("\0")


def start_at_a_terminal(root: Path, name: str) -> subprocess.Popen:
    """A trainer started by hand, as a person would at a terminal (no app involved)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen(
        [sys.executable, "-m", "cgan.train", "--out", str(root / name), "--epochs", "300",
         "--limit", "1000", "--batch-size", "100", "--device", "cpu"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=root,
    )


def wait_for_epoch(run: Run, timeout: float = 120) -> None:
    wait_until(lambda: run.status_path.exists() and run.epochs(), timeout, message="an epoch")


def test_a_run_started_at_a_terminal_is_listed_and_stopped_here(root):
    process = start_at_a_terminal(root, "cli-run")
    try:
        wait_for_epoch(Run(root / "cli-run"))
        page = open_page()
        assert any("running" in b for b in badges(page)), badges(page)
        assert any(as_shown(h.value).startswith("#### cli-run") for h in page.markdown)
        press(page, "train_stop_cli-run")
        assert "stopping" in badges(page)[0]
        assert process.wait(timeout=120) == EXIT_STOPPED
        page = watch(page, lambda p: "stopped" in badges(p)[0])
        run = Run(root / "cli-run")
        assert run.state() == "stopped" and run.status()["state"] == "stopped"
        assert [b.key for b in page.button if b.key == "train_resume_cli-run"]
    finally:
        process.kill()
        process.wait()


def test_a_killed_trainer_has_one_answer_everywhere(root):
    """kill -9: the run's state and the Train page both say interrupted."""
    process = start_at_a_terminal(root, "doomed")
    run = Run(root / "doomed")
    try:
        wait_for_epoch(run)
    finally:
        process.kill()  # SIGKILL: the trainer cannot write how it ended
        process.wait()
    assert run.status()["state"] == "running"
    assert run.state() == "interrupted"
    page = open_page()
    assert "interrupted" in badges(page)[0]
    assert any("Resume continues" in w.value for w in page.warning)


def test_old_job_records_are_ignored(root):
    old = root / ".jobs"
    old.mkdir()
    (old / "lock").write_text("")
    (old / "gone.json").write_text('{"name": "gone", "pid": 1}')
    assert jobs.list_jobs(root) == []
    page = open_page()
    assert not badges(page)
    assert any("No training" in i.value for i in page.info)


# ---------------------------------------------------------------------------------------------
# One press, one job, one message; nothing silently replaced; damaged runs stay in their place


def test_a_double_press_starts_one_job_with_one_message(root, monkeypatch):
    monkeypatch.setenv("CGAN_MAX_JOBS", "4")  # the limit would hide a second job: lift it
    page = open_page()
    fill(page, "twice")
    page.button(key="train_start").click()
    page.button(key="train_start").click().run()  # a true double click: two presses, one run
    assert not page.exception
    time.sleep(1.5)
    press(page, "train_start")  # pressed again 1.5 s later: the name field now offers live-1
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == ["twice"]
    assert [job.name for job in jobs.list_jobs(root)] == ["twice"]
    assert banner(page).startswith("**Started twice**")
    assert not page.error, [as_shown(e.value) for e in page.error]  # no "already exists", no limit message
    assert not page.success and not page.toast


def test_a_learning_rate_that_is_not_a_finite_number_is_refused_beside_its_field(root):
    page = open_page()
    for text in ("1e400", "-1e400", "nan", "inf", "0.001x", ""):
        fill(page, "never", lr=text)
        press(page, "train_start")
        shown = message_after(page, "Learning rate")
        assert shown and shown.startswith("Learning rate: must be a number more than 0"), (text, shown)
        assert page.text_input(key="train_cgan_lr").value == text  # what was typed stays
        assert not [p for p in root.iterdir() if not p.name.startswith(".")]


def test_a_started_run_is_followed_and_measures_its_quality(root):
    page = open_page()
    fill(page, "followed", limit=500, batch_size=50, epochs=2)
    press(page, "train_start")
    # The confirmation comes first on the page, before the form.
    shown = list(elements(page.main))
    banner_at = next(i for i, e in enumerate(shown) if getattr(e, "value", "") == banner(page))
    form_at = next(i for i, e in enumerate(shown) if getattr(e, "label", None) == "Epochs")
    assert banner_at < form_at
    status = Run(root / "followed").status()
    arguments = status["arguments"]
    every = int(arguments[arguments.index("--metrics-every") + 1])
    # 500 CGAN images: an epoch costs 0.015 s, a full measurement 1.3 s: even the smallest (100
    # samples of each digit, 0.13 s) fits only after the last epoch.
    assert every == 44 and arguments[arguments.index("--metrics-samples") + 1] == "100"
    page = watch(page, lambda p: p.session_state["run"] == "followed" if "run" in p.session_state else False)
    page = watch(page, lambda p: any("finished" in b for b in badges(p)))
    run = Run(root / "followed")
    assert run.config()["metrics_every"] == every
    assert run.history()[-1].metrics is not None, run.log_path.read_text()[-500:]
    assert run.history()[-1].metrics["samples_per_digit"] == 100
    assert ("Quality (accuracy, Fréchet distance) is measured on 100 samples of each digit after "
            "the last epoch") in " ".join(c.value for c in page.caption)


def test_a_short_form_measures_quality_while_it_trains(root):
    """A short run (10 epochs of 10,000 images): quality at epochs 3, 6, 9 and after the last, each
    written with its epoch, so the Quality curves grow while the job runs."""
    page = open_page()
    page.text_input(key="train_name").input("default-form")
    page.number_input(key="train_cgan_epochs").set_value(10)
    page.number_input(key="train_cgan_limit").set_value(10_000)
    page.number_input(key="train_cgan_batch_size").set_value(150)
    page.text_input(key="train_cgan_lr").input("0.001")
    press(page, "train_start")
    page = watch(page, lambda p: any("finished" in b for b in badges(p)), timeout=180)
    run = Run(root / "default-form")
    assert run.config()["limit"] == 10_000 and run.config()["epochs"] == 10
    measured = {r.epoch: r.metrics for r in run.history() if r.metrics}
    assert sorted(measured) == [3, 6, 9, 10], run.log_path.read_text()[-500:]
    assert {m["samples_per_digit"] for m in measured.values()} == {100}
    assert ("Quality (accuracy, Fréchet distance) is measured on 100 samples of each digit every 3 "
            "epochs and after the last") in " ".join(c.value for c in page.caption)


def test_a_failed_job_shows_its_reason_in_one_line(root):
    run = Run(root / "broken")
    run.path.mkdir()
    run.log_path.write_text(
        "+ cgan: 500 images, 10 iterations/epoch\nTraceback (most recent call last):\n"
        '  File "/home/x/cgan/train.py", line 12, in <module>\n    main()\n    ^^^^^^\n'
        "RuntimeError: the machine ran out of memory\n"
    )
    run.write_status("starting", pid=2**22 + 5, pid_started="1", arguments=["--out", str(run.path)],
                     device="cpu", launched_at=time.time())
    page = open_page()
    assert "failed" in badges(page)[0]
    assert [as_shown(e.value) for e in page.error] == ["RuntimeError: the machine ran out of memory"]
    log = page.code[0].value
    assert "RuntimeError: the machine ran out of memory" in log
    assert "File " not in log and "/home/x" not in log and "Traceback" not in log


def test_a_damaged_run_never_breaks_the_page_for_the_others(root, cgan_run):
    import shutil

    good = Run(shutil.copytree(cgan_run.path, root / "good"))
    bad = Run(shutil.copytree(cgan_run.path, root / "bad"))
    bad.history_path.write_bytes(bytes(range(256)) * 12)
    odd = Run(root / "odd")
    odd.path.mkdir()
    odd.config_path.write_text('{"model": "cgan", "limit": "many", "epochs": [1]}')
    odd.status_path.write_text("[1, 2")
    page = open_page()
    names = [as_shown(m.value).split()[1] for m in page.markdown if m.value.startswith("#### ")]
    assert sorted(names) == ["bad", "good", "odd"]
    assert any("history.jsonl" in as_shown(e.value) and "damaged" in as_shown(e.value) for e in page.error)
    assert good.epochs() == [1, 2, 3, 4]
    assert f"Epoch 4 of {good.config()['epochs']}" in " ".join(progress(page))


# ---------------------------------------------------------------------------------------------
# The form is made from the schema (cgan.config); the page in Chinese


def widget_of(page: AppTest, key: str):
    for kind in ("number_input", "text_input", "checkbox"):
        found = [w for w in page.get(kind) if w.key == key]
        if found:
            return found[0]
    raise AssertionError(f"no field {key}")


@pytest.mark.parametrize("model", ["cgan", "cdcgan"])
def test_the_form_offers_each_options_label_default_and_bounds_from_the_schema(root, model):
    from cgan.config import TrainConfig, option_named

    page = open_page()
    if model != "cgan":
        page.radio(key="train_model").set_value(model).run()
    family = TrainConfig.for_model(model)
    shown = {"cgan": ["epochs", "lr", "beta1", "limit", "seed", "batch_size", "g_steps", "ema"],
             "cdcgan": ["epochs", "lr", "beta1", "limit", "seed", "batch_size", "width", "ema"]}[model]
    fields = {w.key.removeprefix(f"train_{model}_"): w for kind in ("number_input", "text_input", "checkbox")
              for w in page.get(kind) if w.key and w.key.startswith(f"train_{model}_")}
    assert sorted(fields) == sorted(shown)
    for name in shown:
        option, widget = option_named(name), fields[name]
        help_text = widget.help
        assert option.help[1:] in help_text, (name, help_text)  # the option's own one line
        if name == "ema":
            assert widget.label == "Keep a weight average of G (EMA 0.999)"
            continue
        assert widget.label == option.label
        low, high = option.low, option.high_for(family)
        number = (lambda v: f"{v:,}") if option.kind is int else (lambda v: f"{v:g}")
        for bound in (number(low), number(high)):
            assert re.search(rf"(?<![\d.,]){re.escape(bound)}(?![\d])", help_text), (name, bound, help_text)
        if option.per_model:
            assert f"The report: {getattr(family, name):g}." in help_text, (name, help_text)
    # The first values: the CGAN's are the lecture's run, the cDCGAN's a quick run of its recipe.
    values = {name: fields[name].value for name in shown}
    assert values["lr"] == ("0.003" if model == "cgan" else f"{family.lr:g}")
    assert values["batch_size"] == (64 if model == "cgan" else family.batch_size)
    assert values["limit"] == (30_000 if model == "cgan" else 10_000) and values["ema"] is False


def test_a_bound_changed_in_the_schema_changes_the_form_and_its_check(root, monkeypatch):
    """One declaration: a narrower bound of an option reaches the form's help and its check."""
    import dataclasses

    from cgan import config

    narrower = dataclasses.replace(config.option_named("epochs"), high=50)
    monkeypatch.setattr(config, "OPTIONS", tuple(narrower if o.name == "epochs" else o for o in config.OPTIONS))
    monkeypatch.setitem(config._BY_NAME, "epochs", narrower)
    page = open_page()
    assert "from 1 to 50." in widget_of(page, "train_cgan_epochs").help
    fill(page, "too-long", epochs=51)
    press(page, "train_start")
    assert message_after(page, "Epochs") == "Epochs: must be a whole number from 1 to 50."
    assert not [p for p in root.iterdir() if not p.name.startswith(".")]


def chinese_page_words(page: AppTest) -> list[str]:
    """The texts with English words the page shows beyond names (tests/test_i18n.py's reading), Streamlit's
    badge markup and the trainer's log (which stays English) aside."""
    from tests.test_i18n import english_words, shown_texts

    left = []
    for text in shown_texts(page):
        if text in {c.value for c in page.code} or text == "plaintext":
            continue
        text = re.sub(r":[a-z]+-badge\[", "[", text)
        words = english_words(text, {p.name for p in Path(os.environ["CGAN_CHECKPOINTS"]).iterdir()})
        if words:
            left.append(f"{text[:100]!r} -> {words}")
    return left


def test_the_page_in_chinese_speaks_chinese_in_its_form_checks_and_jobs(root):
    (root / "taken").mkdir()
    page = AppTest.from_file(str(PAGE), default_timeout=60)
    page.session_state["lang"] = "zh"
    page.run()
    assert not page.exception
    assert page.title[0].value == "训练"
    assert widget_of(page, "train_cgan_epochs").label == "训练轮次"
    assert "1 到 100,000 之间的整数" in widget_of(page, "train_cgan_epochs").help
    assert not chinese_page_words(page), chinese_page_words(page)
    # Problems from the schema and from the job, in Chinese beside their fields.
    fill(page, "taken", lr="fast")
    press(page, "train_start")
    assert message_after(page, "学习率") == "学习率：必须是大于 0、不超过 1 的数（例如 0.001）。"
    fill(page, "taken", epochs=0)
    press(page, "train_start")
    assert message_after(page, "训练轮次") == "训练轮次：必须是 1 到 100,000 之间的整数。"
    assert message_after(page, "运行名称") == "已有名为 taken 的运行：请换一个名称。"
    assert not chinese_page_words(page), chinese_page_words(page)
    # A job that waits for the one slot, in the banner and the job list.
    fill(page, "queued-one")
    with as_its_trainer(Run(root / "busy")):
        press(page, "train_start")
        shown = [as_shown(m.value) for m in page.markdown]
        assert any(m.startswith("**queued-one 已排队**") for m in shown), shown
        assert any(p.startswith("排队中，第 1 位") for p in progress(page)), progress(page)
        assert not chinese_page_words(page), chinese_page_words(page)


def test_the_page_in_chinese_says_the_run_name_rule_and_the_jobs_refusals_in_chinese(root, monkeypatch, tiny_run):
    """The library's one-line errors (cgan.runs' name rule, cgan.jobs' refusals) shown in the
    reader's language: beside the name, under Start and in the toasts; only names stay as they are."""
    monkeypatch.setenv("CGAN_MAX_JOBS_PER_SESSION", "1")
    page = AppTest.from_file(str(PAGE), default_timeout=60)
    page.session_state["lang"] = "zh"
    page.run()
    assert not page.exception
    fill(page, "../escape")
    press(page, "train_start")
    assert message_after(page, "运行名称") == (
        "运行名称：1 到 64 个字符，只能用字母、数字、“.”、“_”或“-”，并以字母或数字开头。")
    assert not chinese_page_words(page), chinese_page_words(page)
    paused = Run(shutil.copytree(tiny_run.path, root / "paused"))
    paused.write_status("stopped")
    with as_its_trainer(Run(root / "busy")):  # running, its pid not recorded yet: starting
        page.run()
        # Stop on a trainer that has not said its pid yet: refused, in a toast.
        press(page, "train_stop_busy")
        toasts = [as_shown(t.value) for t in page.toast]
        assert toasts == ["busy 正在启动：请稍后再按一次“停止”。"], toasts
        # Resume while the one training slot is taken.
        press(page, "train_resume_paused")
        toasts = [as_shown(t.value) for t in page.toast]
        assert toasts == ["已有 1 个训练任务正在进行（busy），最多只能同时进行 1 个：请停止其中一个，或等它训练完。"], \
            toasts
        # This session's one job waits in the queue; a second start is refused under Start.
        fill(page, "queued-one")
        press(page, "train_start")
        fill(page, "one-more", seed=5)
        press(page, "train_start")
        errors = [as_shown(e.value) for e in page.error]
        assert errors == ["你已有 1 个任务在训练或排队（queued-one），最多只能有 1 个：请先取消或停止其中一个。"], \
            errors
        assert not (root / "one-more").exists()
        assert not chinese_page_words(page), chinese_page_words(page)
