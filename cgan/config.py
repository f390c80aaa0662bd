"""A training request, declared once: every option's type, default, bounds, help and form label.

The command line (`add_arguments`, `TrainConfig.explicit`), the validation (`problems`), the job's
argument list (`arguments`), the Train page's form (`OPTIONS`, `option`) and a run's config.json
(`to_json`, `from_json`) are all made from the fields of `TrainConfig` below. A new option is one
more field here, plus its use in the trainer.

config.json carries `"format": 2`. Format 1 (runs written before the field existed) holds the
options it knew; the ones it lacks take their defaults. Format 2 holds every option.

Messages are English; each `Problem` also keeps its template and values, so an interface can say
it in the reader's language: ``_(problem.template).format(**problem.values)``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any

from cgan.limits import MAX_SEED, MIN_QUALITY_SAMPLES, QUALITY_SAMPLES, TRAIN_IMAGES
from cgan.models import MAX_WIDTH, MODELS, get_model
from cgan.keep import parse_keep
from cgan.messages import N_, Problem

FORMAT = 2  # the config.json format this version writes
MAX_EPOCHS = 100_000
MAX_D_LR_SCALE = 100.0
MAX_G_STEPS = 10


WHOLE = N_("must be a whole number from {low} to {high}")
ABOVE_ZERO = N_("must be a number more than {low} and at most {high}")
UP_TO = N_("must be a number from {low} up to (not including) {high}")


@dataclass(frozen=True)
class Option:
    """One training option: what the CLI, the form, the check and config.json know about it."""

    name: str
    kind: type  # int, float or str
    label: str  # the form's label, and the name messages give the field
    help: str  # one line for --help and the form
    low: float | None = None
    high: float | None = None  # for batch_size: the training images the config uses
    low_open: bool = False  # a real number must be more than `low`, not equal to it
    high_open: bool = False  # ... less than `high`
    message: str | None = None  # the problem's template, when the kind's own does not say enough
    per_model: bool = False  # the default is the model family's (cgan.models TrainDefaults)
    optional: bool = False  # None is allowed (and means "all")

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def high_for(self, config: TrainConfig) -> float | None:
        if self.name == "batch_size":
            return config.limit if _whole(config.limit, 1, TRAIN_IMAGES) else TRAIN_IMAGES
        return self.high

    def problem(self, value: Any, config: TrainConfig) -> Problem | None:
        if value is None and self.optional:
            return None
        high = self.high_for(config)
        if self.kind is int:
            if _whole(value, self.low, high):
                return None
            return Problem(self.message or WHOLE, low=f"{self.low:,}", high=f"{high:,}")
        if self.kind is float:
            if _real(value) and (value > self.low if self.low_open else value >= self.low) and (
                    value < high if self.high_open else value <= high):
                return None
            template = self.message or (UP_TO if self.high_open else ABOVE_ZERO)
            return Problem(template, low=f"{self.low:g}", high=f"{high:g}")
        return None  # text options are checked where their meaning lives (model, keep)


def option(default: Any, label: str, help: str, **bounds) -> Any:
    """A TrainConfig field: its default and the rest of its declaration (see Option)."""
    return dataclasses.field(default=default, metadata=dict(label=label, help=help, **bounds))


@dataclass(frozen=True)
class TrainConfig:
    model: str = option("cgan", N_("Model"), "model: " + ", ".join(sorted(MODELS)) + " (default cgan)")
    epochs: int = option(200, N_("Epochs"), "epochs", low=1, high=MAX_EPOCHS, per_model=True)
    limit: int | None = option(
        None, N_("Training images"), "train on the first N images only (quick runs)", low=1,
        high=TRAIN_IMAGES, optional=True,
        message=N_("must be a whole number from {low} to {high} (or left out for all)"))
    batch_size: int = option(
        150, N_("Batch size"), "batch size", low=1, per_model=True,
        message=N_("must be a whole number from {low} to {high} (the training images)"))
    lr: float = option(1e-3, N_("Learning rate"), "Adam learning rate", low=0, high=1, low_open=True,
                       per_model=True)
    beta1: float = option(0.5, N_("Adam beta1"), "Adam beta1", low=0, high=1, high_open=True, per_model=True)
    beta2: float = option(0.999, N_("Adam beta2"), "Adam beta2", low=0, high=1, high_open=True, per_model=True)
    seed: int = option(0, N_("Seed"), "seed for weights, noise and the fixed grid", low=0, high=MAX_SEED)
    width: float = option(
        1.0, N_("Width"), "cdcgan channel width factor (1.0 = 256/128 channels)", low=0, high=MAX_WIDTH,
        low_open=True,
        message=N_("must be a number more than {low} and at most {high} (1 = the report's size)"))
    keep: str = option("all", N_("Weights kept"),
                       "which epochs keep generator weights: all or e.g. 1-10,every5,75")
    metrics_every: int = option(
        0, N_("Quality every"), "measure quality every K epochs (0 = never)", low=0, high=MAX_EPOCHS,
        message=N_("must be a whole number from {low} (never) to {high}"))
    metrics_samples: int = option(
        QUALITY_SAMPLES, N_("Quality samples per digit"),
        "samples of each digit per quality measurement (fewer measure faster and noisier)",
        low=MIN_QUALITY_SAMPLES, high=QUALITY_SAMPLES,
        message=N_("must be a whole number from {low} to {high} (samples of each digit)"))
    ema: float = option(
        0.0, N_("Weight average"),
        "keep an average of the generator's weights with this decay per iteration, e.g. 0.999 "
        "(0: off, the report's recipe)", low=0, high=1, high_open=True,
        message=N_("must be a number from {low} (off) up to (not including) {high}, e.g. 0.999"))
    d_lr_scale: float = option(
        1.0, N_("D learning rate scale"), "the discriminator's learning rate as a multiple of --lr "
        "(1: the same)", low=0, high=MAX_D_LR_SCALE, low_open=True,
        message=N_("must be a number more than {low} and at most {high} (1 = the same as G)"))
    g_steps: int = option(
        1, N_("G steps per D step"), "generator steps per discriminator step (1: the report's)",
        low=1, high=MAX_G_STEPS, message=N_("must be a whole number from {low} (the report) to {high}"))

    @classmethod
    def for_model(cls, model: str, **overrides) -> TrainConfig:
        """The model family's defaults (the report's recipe for it) with `overrides` (None: keep)."""
        family = get_model(model).defaults
        base: dict[str, Any] = {"model": model}
        base.update({o.name: getattr(family, o.name) for o in OPTIONS if o.per_model})
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)

    @classmethod
    def from_json(cls, data: dict) -> TrainConfig:
        """The options a config.json holds (its other keys describe the run, not the request).
        ValueError, one line, for a format this version cannot read."""
        fmt = data.get("format", 1)
        if not _whole(fmt, 1, FORMAT):
            raise ValueError(f"config format {fmt!r}: this version reads formats 1 to {FORMAT}")
        if fmt >= 2:
            missing = [o.name for o in OPTIONS if o.name not in data]
            if missing:
                raise ValueError(f"config format {fmt} lacks {', '.join(missing)}")
        return cls(**{o.name: data[o.name] for o in OPTIONS if o.name in data})

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, **dataclasses.asdict(self)}

    @staticmethod
    def explicit(args) -> dict[str, Any]:
        """The options a parsed command line gave (`add_arguments`): field -> value."""
        return {o.name: getattr(args, o.name) for o in OPTIONS if getattr(args, o.name, None) is not None}

    def arguments(self) -> list[str]:
        """Command-line flags that ask for this configuration: the model, then every option that
        differs from the model's defaults (--device and --out are the launcher's to add)."""
        defaults = TrainConfig.for_model(self.model)
        args = ["--model", self.model]
        for o in OPTIONS[1:]:
            value = getattr(self, o.name)
            if value != getattr(defaults, o.name) and value is not None:
                args += [o.flag, repr(float(value)) if o.kind is float else str(value)]
        return args

    def problems(self) -> dict[str, Problem]:
        """What is wrong with this configuration: field name -> one line (no field name in it,
        so a form can show it beside the field and a CLI can prefix its flag); {} when valid.
        Any value of any type gets a message, never an exception (configs come from JSON too)."""
        problems: dict[str, Problem] = {}
        for o in OPTIONS:
            found = o.problem(getattr(self, o.name), self) or self._rule(o.name)
            if found is not None:
                problems[o.name] = found
        return problems

    def _rule(self, name: str) -> Problem | None:
        """What an option's bounds cannot say: a known model, a width the model has, a keep policy."""
        if name == "model" and (not isinstance(self.model, str) or self.model not in MODELS):
            return Problem(N_("unknown model {model}: choose one of {models}"),
                           model=repr(self.model), models=", ".join(sorted(MODELS)))
        if name == "width" and self.model == "cgan" and self.width != 1.0:
            return Problem(N_("applies to the cdcgan only (the cgan is the report's fixed size)"))
        if name == "keep" and not isinstance(self.keep, str):
            return Problem(N_("must be text: all, last, N, A-B or everyK (e.g. 1-10,every5,75)"))
        if name == "keep":
            try:
                parse_keep(self.keep)
            except ValueError as exc:
                return Problem("{reason}", reason=str(exc))
        return None


def _option(field: dataclasses.Field) -> Option:
    kind = {"str": str, "int": int, "float": float, "int | None": int}[field.type]
    return Option(name=field.name, kind=kind, **field.metadata)


OPTIONS: tuple[Option, ...] = tuple(_option(f) for f in dataclasses.fields(TrainConfig))
_BY_NAME = {o.name: o for o in OPTIONS}


def option_named(name: str) -> Option:
    """The declaration of the option `name` (KeyError for a name that is none)."""
    return _BY_NAME[name]


def add_arguments(parser) -> None:
    """One flag per option; each defaults to None, so `TrainConfig.explicit` sees what was typed."""
    for o in OPTIONS:
        if o.name == "model":
            parser.add_argument(o.flag, choices=sorted(MODELS), default=None, help=o.help)
            continue
        if o.per_model:
            values = {name: getattr(family.defaults, o.name) for name, family in sorted(MODELS.items())}
            given = ", ".join(f"{name} {value:g}" for name, value in values.items())
            if len(set(values.values())) == 1:
                given = f"{next(iter(values.values())):g}"
            help_text = f"{o.help} ({given})"
        else:
            default = dataclasses.fields(TrainConfig)[OPTIONS.index(o)].default
            help_text = o.help if default is None or "(" in o.help else f"{o.help} (default {default})"
        parser.add_argument(o.flag, type=o.kind, default=None, help=help_text)


def _whole(value, low, high) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and low <= value <= high


def _real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
