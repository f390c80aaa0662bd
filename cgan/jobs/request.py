"""What to train: a new run's name, the device, and its training configuration (cgan.config).

A request's check is the configuration's own (TrainConfig.problems), each problem labelled with
its option's form label, plus what only a job adds: a free, safe run name and a device this
backend has. Its trainer arguments are the configuration's own flags plus --device and --out.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cgan.config import TrainConfig, option_named
from cgan.messages import N_, Problem
from cgan.files import checkpoints_root
from cgan.jobs.plan import quality_plan
from cgan.jobs.settings import available_devices
from cgan.runs import RUN_NAME_RULE, check_run_name

SENTENCE = N_("{label}: {problem}.")  # how a labelled problem reads


class JobProblem(str):
    """What is wrong with one field of a request, as one English sentence (it is a str):
    "{label}: {problem}." (SENTENCE), or the problem alone when it is a whole sentence (label
    None). An interface says it in its reader's language from `label` and `problem` (a
    cgan.messages.Problem: its template and values)."""

    label: str | None
    problem: Problem

    def __new__(cls, problem: Problem, label: str | None = None) -> JobProblem:
        text = SENTENCE.format(label=label, problem=problem) if label else str(problem)
        made = super().__new__(cls, text)
        made.label, made.problem = label, problem
        return made


@dataclass(frozen=True, init=False)
class JobRequest:
    """A new run as asked for: its folder `name`, what to train (`config`) and on which `device`."""

    name: str
    config: TrainConfig
    device: str

    def __init__(self, name: str, config: TrainConfig | None = None, device: str = "cpu", **options: Any):
        """`config`, or the model family's defaults (TrainConfig.for_model; model="cgan" unless
        given), with `options` (TrainConfig's fields) changed. So both
        ``JobRequest("demo", TrainConfig.for_model("cdcgan", epochs=3), "cuda")`` and
        ``JobRequest("demo", epochs=2, limit=500)`` ask for a run. Nothing is checked here:
        `problems()` says what is wrong."""
        if config is None:
            config = _defaults_with(options)
        elif options:
            config = dataclasses.replace(config, **options)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "config", config)
        object.__setattr__(self, "device", device)

    def with_quality_plan(self) -> JobRequest:
        """This request measuring its quality as a run started from the app does (plan.quality_plan)."""
        plan = quality_plan(self.config)
        return dataclasses.replace(self, metrics_every=plan.every, metrics_samples=plan.per_digit)

    def problems(self, root: str | Path | None = None, devices: list[str] | None = None) -> dict[str, JobProblem]:
        """Field -> what is wrong with it (one sentence each, the run name's first, then the
        configuration's in the order of its options, then the device's); {} when it can start.
        `root`: the checkpoints folder (default cgan.files.checkpoints_root()); `devices`: those a
        job may ask for (default the backend's)."""
        problems: dict[str, JobProblem] = {}
        try:
            check_run_name(self.name)
        except ValueError:
            problems["name"] = JobProblem(Problem(RUN_NAME_RULE), N_("Run name"))
        else:
            if (Path(root if root is not None else checkpoints_root()) / self.name).exists():
                problems["name"] = taken(self.name)
        for name, problem in self.config.problems().items():
            problems[name] = JobProblem(problem, option_named(name).label)
        if self.device not in (devices or available_devices()):
            problems["device"] = JobProblem(
                Problem(N_("{device} is not available here"), device=str(self.device)), N_("Device"))
        return problems

    def arguments(self, path: Path) -> list[str]:
        """The trainer's command-line arguments (after ``python -m cgan.train``)."""
        return [*self.config.arguments(), "--device", self.device, "--out", str(path)]


def taken(name: str) -> JobProblem:
    """The problem of a name another run has."""
    return JobProblem(Problem(N_("A run named {name} already exists: choose another name."), name=name))


def _defaults_with(options: dict[str, Any]) -> TrainConfig:
    """The model family's defaults with `options` (None: keep the default); for a model that
    is none, the general defaults, so that `problems()` can name it."""
    options = dict(options)
    model = options.pop("model", "cgan")
    try:
        return TrainConfig.for_model(model, **options)
    except (ValueError, TypeError, KeyError):  # an unknown (or unhashable) model name
        return TrainConfig(model=model, **{k: v for k, v in options.items() if v is not None})
