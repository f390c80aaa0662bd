"""cgan.config, the one declaration of a training request: flags that round-trip through the
trainer's command line, one-line problems with their templates, config.json formats 1 and 2, and a
run written in format 1 (before the format field) that resumes bit for bit."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cgan import config as schema
from cgan.config import FORMAT, OPTIONS, TrainConfig, add_arguments, option_named
from cgan.limits import MAX_SEED, MIN_QUALITY_SAMPLES, QUALITY_SAMPLES, TRAIN_IMAGES
from cgan.models import MAX_WIDTH
from cgan.runs import Run
from cgan.training.cli import build_parser, config_from_args
from tests.conftest import make_run
from tests.test_train import cli_env, losses, state_equal

# ---------------------------------------------------------------------------------------------
# Flags


def parsed(config: TrainConfig, tmp_path) -> TrainConfig:
    """What the trainer's own command line makes of `config.arguments()`."""
    parser = build_parser()
    args = parser.parse_args([*config.arguments(), "--out", str(tmp_path / "r"), "--device", "cpu"])
    return config_from_args(args, parser)[0]


def reals(low, high, low_open=False, high_open=False):
    # Above `low` by the least normal float rather than exclude_min: the trainer flushes subnormals
    # to zero, in its process and in this one once a test has trained here, and Hypothesis
    # refuses to exclude an end while it cannot represent the float next to it.
    low = low + sys.float_info.min if low_open else low
    return st.floats(low, high, exclude_max=high_open, allow_nan=False, allow_subnormal=False)


@st.composite
def valid_configs(draw) -> TrainConfig:
    model = draw(st.sampled_from(["cgan", "cdcgan"]))
    limit = draw(st.none() | st.integers(1, TRAIN_IMAGES))
    return TrainConfig(
        model=model,
        epochs=draw(st.integers(1, schema.MAX_EPOCHS)),
        batch_size=draw(st.integers(1, limit or TRAIN_IMAGES)),
        lr=draw(reals(0, 1, low_open=True)),
        beta1=draw(reals(0, 1, high_open=True)),
        beta2=draw(reals(0, 1, high_open=True)),
        seed=draw(st.integers(0, MAX_SEED)),
        width=1.0 if model == "cgan" else draw(reals(0, MAX_WIDTH, low_open=True)),
        limit=limit,
        keep=draw(st.sampled_from(["all", "last", "1-10,every5,75", "3"])),
        metrics_every=draw(st.integers(0, schema.MAX_EPOCHS)),
        metrics_samples=draw(st.integers(MIN_QUALITY_SAMPLES, QUALITY_SAMPLES)),
        ema=draw(reals(0, 1, high_open=True)),
        d_lr_scale=draw(reals(0, schema.MAX_D_LR_SCALE, low_open=True)),
        g_steps=draw(st.integers(1, schema.MAX_G_STEPS)),
    )


@settings(max_examples=80, deadline=None, derandomize=True)
@given(config=valid_configs())
def test_every_valid_config_round_trips_through_the_trainers_flags(config, tmp_path_factory):
    assert config.problems() == {}
    assert parsed(config, tmp_path_factory.mktemp("flags")) == config


def test_flags_name_only_what_differs_from_the_models_defaults(tmp_path):
    assert TrainConfig.for_model("cdcgan").arguments() == ["--model", "cdcgan"]
    config = TrainConfig.for_model("cgan", epochs=30, lr=0.003, limit=30_000, g_steps=2)
    assert config.arguments() == [
        "--model", "cgan", "--epochs", "30", "--limit", "30000", "--lr", "0.003", "--g-steps", "2"]
    assert parsed(config, tmp_path) == config
    # One flag per option, spelled from its name; each parses to the option's kind.
    assert [o.flag for o in OPTIONS] == ["--" + o.name.replace("_", "-") for o in OPTIONS]
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert TrainConfig.explicit(parser.parse_args([])) == {}
    given_ = TrainConfig.explicit(parser.parse_args(["--lr", "1e-2", "--limit", "500", "--keep", "last"]))
    assert given_ == {"lr": 0.01, "limit": 500, "keep": "last"}
    assert option_named("batch_size").flag == "--batch-size"
    with pytest.raises(KeyError):
        option_named("batch-size")


# ---------------------------------------------------------------------------------------------
# Problems


@pytest.mark.parametrize("field,value,message", [
    ("epochs", 0, "must be a whole number from 1 to 100,000"),
    ("epochs", True, "must be a whole number from 1 to 100,000"),
    ("lr", 0.0, "must be a number more than 0 and at most 1"),
    ("beta1", 1.0, "must be a number from 0 up to (not including) 1"),
    ("seed", -1, "must be a whole number from 0 to 2,147,483,647"),
    ("limit", 0, "must be a whole number from 1 to 60,000 (or left out for all)"),
    ("metrics_every", -1, "must be a whole number from 0 (never) to 100,000"),
    ("metrics_samples", 1, "must be a whole number from 100 to 1,000 (samples of each digit)"),
    ("ema", 1.0, "must be a number from 0 (off) up to (not including) 1, e.g. 0.999"),
    ("d_lr_scale", 0, "must be a number more than 0 and at most 100 (1 = the same as G)"),
    ("g_steps", 11, "must be a whole number from 1 (the report) to 10"),
    ("width", 0.5, "applies to the cdcgan only (the cgan is the report's fixed size)"),
    ("model", "gpt", "unknown model 'gpt': choose one of cdcgan, cgan"),
    ("keep", 5, "must be text: all, last, N, A-B or everyK (e.g. 1-10,every5,75)"),
    ("keep", "every0", "bad keep token 'every0': use all, last, N, A-B or everyK (e.g. 1-10,every5,75)"),
])
def test_each_problem_is_one_line_made_from_its_template(field, value, message):
    problems = TrainConfig(**{field: value}).problems()
    assert problems == {field: message}
    problem = problems[field]
    assert problem.template.format(**problem.values) == message  # what a translation formats


def test_the_batch_size_is_bounded_by_the_training_images():
    problems = TrainConfig(limit=100, batch_size=200).problems()
    assert problems == {"batch_size": "must be a whole number from 1 to 100 (the training images)"}
    assert TrainConfig(limit=100, batch_size=100).problems() == {}
    assert TrainConfig(batch_size=TRAIN_IMAGES + 1).problems()["batch_size"].values["high"] == "60,000"


def test_the_trainer_refuses_a_problem_with_its_flag_and_exit_2(tmp_path, capsys):
    from cgan.train import main

    with pytest.raises(SystemExit) as refused:
        main(["--g-steps", "11", "--out", str(tmp_path / "r"), "--device", "cpu"])
    assert refused.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["python -m cgan.train: error: --g-steps 11: must be a whole number from 1 (the report) to 10"]
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------------------------------------
# config.json


def test_format_2_holds_every_option_and_reads_back():
    config = TrainConfig.for_model("cdcgan", width=0.25, limit=1000, ema=0.99, keep="last")
    data = json.loads(json.dumps(config.to_json()))
    assert data["format"] == FORMAT == 2
    assert set(data) == {"format", *(o.name for o in OPTIONS)}
    assert TrainConfig.from_json(data) == config
    # The keys that describe the run rather than the request are not options.
    assert TrainConfig.from_json({**data, "train_images": 1000, "torch_version": "2.14"}) == config
    with pytest.raises(ValueError, match=r"^config format 2 lacks ema, g_steps$"):
        TrainConfig.from_json({k: v for k, v in data.items() if k not in ("ema", "g_steps")})


def test_format_1_takes_the_defaults_of_the_options_it_lacks():
    old = {"model": "cgan", "epochs": 200, "batch_size": 150, "lr": 0.001, "beta1": 0.5, "beta2": 0.999,
           "seed": 0, "width": 1.0, "limit": None, "keep": "all", "metrics_every": 1,
           "generator_parameters": 1, "train_images": 60000}
    config = TrainConfig.from_json(old)
    assert config == TrainConfig.for_model("cgan", metrics_every=1)
    assert (config.ema, config.d_lr_scale, config.g_steps, config.metrics_samples) == (0.0, 1.0, 1, QUALITY_SAMPLES)


@pytest.mark.parametrize("fmt", [3, 0, "2", 2.0, True, None, [2]])
def test_a_format_this_version_cannot_read_is_one_line(fmt):
    with pytest.raises(ValueError) as refused:
        TrainConfig.from_json({**TrainConfig().to_json(), "format": fmt})
    assert str(refused.value) == f"config format {fmt!r}: this version reads formats 1 to 2"


# ---------------------------------------------------------------------------------------------
# A run written before the format field resumes


NEWER_KEYS = ("format", "ema", "d_lr_scale", "g_steps", "metrics_samples")


def test_a_format_1_run_resumes_bit_for_bit(tmp_path):
    settings_ = dict(limit=300, batch_size=100, seed=3)
    whole = make_run(tmp_path / "whole", epochs=3, **settings_)
    old = make_run(tmp_path / "old", epochs=2, **settings_)
    written = json.loads(old.config_path.read_text())
    old.config_path.write_text(json.dumps({k: v for k, v in written.items() if k not in NEWER_KEYS}))

    def resume(*flags: str) -> subprocess.CompletedProcess:
        threads = str(torch.get_num_threads())
        return subprocess.run(
            [sys.executable, "-m", "cgan.train", "--out", str(old.path), "--resume", *flags, "--device", "cpu"],
            capture_output=True, text=True, timeout=180, cwd=tmp_path,
            env={**cli_env(), "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads},
        )

    # The options the file lacks are their defaults: asking for another value contradicts the run.
    refused = resume("--epochs", "3", "--ema", "0.5")
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.strip().splitlines()[-1].endswith("--resume: --ema 0.5 contradicts the run's 0.0")
    assert len(old.history()) == 2

    done = resume("--epochs", "3", "--ema", "0.0")
    assert done.returncode == 0, done.stderr
    assert losses(old) == losses(whole) and len(losses(old)) == 3
    a, b = whole.load_resume_state(), old.load_resume_state()
    for key in ("generator", "discriminator", "opt_g", "opt_d", "rng"):
        assert state_equal(a[key], b[key]), key
    # The file keeps the format it was written in, with the new epoch count.
    config = json.loads(old.config_path.read_text())
    assert "format" not in config and config["epochs"] == 3
    assert TrainConfig.from_json(config) == TrainConfig.from_json(whole.config())


def test_a_run_in_a_newer_format_is_refused_before_anything_is_written(tmp_path):
    from cgan.train import main

    run = make_run(tmp_path / "newer", epochs=1, limit=200, batch_size=100)
    run.config_path.write_text(json.dumps({**run.config(), "format": 3}))
    before = {p.name: p.read_bytes() for p in run.path.iterdir() if p.is_file()}
    assert main(["--out", str(run.path), "--resume", "--epochs", "2", "--device", "cpu"]) == 1
    after = {p.name: p.read_bytes() for p in Run(run.path).path.iterdir() if p.is_file()}
    assert {k: v for k, v in after.items() if k != "status.json"} == {
        k: v for k, v in before.items() if k != "status.json"}
