"""The Train page's form: its fields made from the training schema (cgan.config), the recipes that
fill it (cgan.presets), and Start, which checks the request and launches it (cgan.jobs).

Each field is an option of cgan.config.TrainConfig: its label, help, bounds, default and check
come from the option's declaration; FIELDS only says which options the form shows, in which
order and with which control. A run started here measures its quality as it trains
(cgan.jobs.quality_plan).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import streamlit as st

from app import access, common, i18n
from app.i18n import N_, _, catalog, language
from app.text import code, plain
from app.views.train_jobs import SCROLL_KEY, STARTED_KEY, measure_text, refusal, session_id
from cgan import jobs
from cgan.config import Option, TrainConfig, option_named
from cgan.data import MNIST_INSTALL_HINT, mnist_status
from cgan.limits import TRAIN_IMAGES
from cgan.messages import Problem
from cgan.presets import LECTURE, REPORT, choices, preset
from cgan.runs import checkpoints_root

MODEL_KEY = "train_model"
NAME_KEY = "train_name"
DEVICE_KEY = "train_device"
ERRORS_KEY = "train_errors"  # {field: message} from the last press of Start
LAST_PRESS_KEY = "train_last_press"  # (time, settings) of the last Start that started a job
PRESET_KEY = "train_preset"  # the recipe last picked to fill the form
REPEAT_SECONDS = 4.0  # a second press with the same settings this soon is the same press
MODEL_LABELS = {"cgan": N_("CGAN (the report's MLP)"), "cdcgan": N_("cDCGAN (convolutional)")}
# The cDCGAN's first values: a short run (its epochs cost about ten of the CGAN's).
QUICK_EPOCHS = 10
QUICK_IMAGES = 10_000
EMA_DECAY = 0.999  # the weight average the form's checkbox asks for


@dataclass(frozen=True)
class Field:
    """How the form shows one option of cgan.config (its label, help and bounds are the option's)."""

    name: str
    step: float = 1
    text: bool = False  # a text box: any text reaches the check (a number box blanks 1e400)
    model: str | None = None  # shown for this model only (the other keeps the model's default)
    switch: float | None = None  # a checkbox that asks for this value (unticked: the default)
    switch_label: str = ""  # the checkbox's label, with {value}

    @property
    def option(self) -> Option:
        return option_named(self.name)


# The options the form shows, in order: four to a row, then the checkboxes beside the run name.
FIELDS = (
    Field("epochs"),
    Field("lr", text=True),
    Field("beta1", step=0.05),
    Field("limit", step=1000),
    Field("seed"),
    Field("batch_size"),
    Field("width", step=0.125, model="cdcgan"),
    Field("g_steps", model="cgan"),
    Field("ema", switch=EMA_DECAY, switch_label=N_("Keep a weight average of G (EMA {value})")),
)


def labels_now():
    """_() fixed to the session's language now: for a widget's format_func, which a test
    harness may also call outside the page's run (AppTest reads a radio's value that way)."""
    found = catalog(language())
    return (lambda text: found.singular.get(text, text)) if found is not None else (lambda text: text)


def shown(model: str) -> list[Field]:
    return [field for field in FIELDS if field.model in (None, model)]


def field_key(model: str, name: str) -> str:
    """Each model keeps its own form values, so switching model brings back its defaults."""
    return f"train_{model}_{name}"


def suggest_name() -> str:
    taken = {path.name for path in checkpoints_root().iterdir()} if checkpoints_root().is_dir() else set()
    number = 1
    while f"live-{number}" in taken:
        number += 1
    return f"live-{number}"


# ---------------------------------------------------------------------------------------------
# Values: a TrainConfig into the form and back


def form_value(field: Field, config: TrainConfig):
    value = getattr(config, field.name)
    if field.switch is not None:
        return bool(value)
    return f"{value:g}" if field.text else value


def first_config(model: str) -> TrainConfig:
    """The form's first values for `model`: the CGAN's are the lecture's run (digits within a
    minute); the cDCGAN's are the report's numerics over a quick run."""
    if model == LECTURE.overrides["model"]:
        return LECTURE.config()
    return TrainConfig.for_model(model, epochs=QUICK_EPOCHS, limit=QUICK_IMAGES)


def number(text) -> float | None:
    try:
        value = float(str(text).strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def said(problem: Problem) -> str:
    """A problem from cgan.config in the session's language (its values shown as written)."""
    return i18n.said(problem, plain)


def beside(label: str | None, problem: Problem) -> str:
    """The line shown under a field: "Label: problem." (or the problem alone, a whole sentence)."""
    return i18n.said(jobs.JobProblem(problem, label), plain)


def form_config(model: str) -> tuple[TrainConfig | None, dict[str, str]]:
    """The configuration the form describes, or the fields that hold no number at all."""
    values, missing = {}, {}
    family = TrainConfig.for_model(model)
    for field in shown(model):
        option, raw = field.option, st.session_state.get(field_key(model, field.name))
        if field.switch is not None:
            values[field.name] = field.switch if raw else type(field.switch)(0)
        elif field.text:
            values[field.name] = number(raw)
            if values[field.name] is None:
                found = option.problem(math.nan, family)
                missing[field.name] = beside(option.label, Problem(
                    N_("{problem} (e.g. {value})"), problem=said(found), value=f"{getattr(family, field.name):g}"))
        elif raw is not None or option.optional:
            values[field.name] = raw
        elif option.kind is int:
            missing[field.name] = beside(option.label, Problem(N_("a whole number is needed")))
        else:
            missing[field.name] = beside(option.label, Problem(N_("a number is needed (the report: {value})"),
                                                               value=f"{getattr(family, field.name):g}"))
    if missing:
        return None, missing
    return dataclasses.replace(family, **values), {}


def problems(request: jobs.JobRequest) -> dict[str, str]:
    """Field -> the line shown under it, in the session's language: the schema's checks, then
    what only a job adds (a free run name, a device this machine has)."""
    return {name: beside(problem.label, problem.problem) for name, problem in request.problems().items()}


# ---------------------------------------------------------------------------------------------
# Start


def is_repeat(settings) -> bool:
    """A second press with the same settings moments after one that started a job: a double
    click, or a press before the page showed the first. It is the same press: one job."""
    last = st.session_state.get(LAST_PRESS_KEY)
    return bool(last) and time.time() - last[0] < REPEAT_SECONDS and last[1] == settings


def start_from_form() -> None:
    """The Start button: check, then launch; every problem goes beside its field."""
    if not access.is_lecturer():  # the button is disabled for a visitor; a forged press does nothing
        return
    state = st.session_state
    config, found = form_config(state[MODEL_KEY])
    if config is not None:
        # A run started here measures its quality as it trains (cgan.jobs.quality_plan).
        request = jobs.JobRequest((state.get(NAME_KEY) or "").strip(), config, state.get(DEVICE_KEY) or "cpu")
        request = request.with_quality_plan()
        settings = (request.config, request.device)
        if is_repeat(settings):
            return  # already started: the banner at the top says so, once
        found = problems(request)
        if not found:
            try:
                job = jobs.start(request, session=session_id())
            except jobs.JobError as exc:  # refused when it came to it: a name taken meanwhile, no slot
                found = {exc.field or "start": refusal(exc)}
            else:
                state[LAST_PRESS_KEY] = (time.time(), settings)
                state[STARTED_KEY] = job.name
                state[common.RUN_KEY] = job.name  # every page follows it from now on
                state[SCROLL_KEY] = True
                state[NAME_KEY] = suggest_name()
    state[ERRORS_KEY] = found


def field_error(name: str) -> None:
    message = st.session_state.get(ERRORS_KEY, {}).get(name)
    if message:
        st.error(message, icon=":material/error:")


# ---------------------------------------------------------------------------------------------
# Recipes


def fill_form(name: str) -> None:
    """Fill the form with a recipe's settings (the seed and run name stay)."""
    config = preset(name).config()
    st.session_state[MODEL_KEY] = config.model
    for field in shown(config.model):
        if field.name != "seed":
            st.session_state[field_key(config.model, field.name)] = form_value(field, config)
    st.session_state.pop(ERRORS_KEY, None)


def apply_preset() -> None:
    """Picking a recipe fills the form with its settings."""
    name = st.session_state.get(PRESET_KEY)
    if name:
        fill_form(name)


def use_report_recipe() -> None:
    st.session_state[PRESET_KEY] = REPORT.name
    fill_form(REPORT.name)


def what_the_class_sees(model: str) -> str:
    """One sentence under Start: what the run the form describes will show, and when."""
    config, _missing = form_config(model)
    lecture = LECTURE.config()
    same = ("model", "epochs", "lr", "limit", "batch_size")
    if config is not None and all(getattr(config, name) == getattr(lecture, name) for name in same):
        return _(LECTURE.promise)
    return ""


def quality_caption(model: str) -> str:
    """How often the run the form describes (as last submitted) will measure its quality."""
    config, _missing = form_config(model)
    if config is None or {"epochs", "limit", "width"} & set(config.problems()):
        return ""
    plan = jobs.quality_plan(config)
    images = config.limit or TRAIN_IMAGES
    return _("{measured} (for {images} images: at most a fifth of the training time).").format(
        measured=measure_text(plan.every, config.epochs, plan.per_digit), images=f"{images:,}")


def preset_picker() -> None:
    options, say = {item.name: item for item in choices()}, labels_now()
    # Folded until asked for: the form and its Start button stay on a projector's first screen.
    with st.expander(_("Start from a recipe: the report's, or a failure on purpose"), icon=":material/science:"):
        st.radio(
            _("Recipe"), list(options), key=PRESET_KEY, index=None,
            format_func=lambda name: say(options[name].title),
            captions=[_(item.description) for item in options.values()],
            on_change=apply_preset,
            help=_("Fills the form below with the recipe's settings; change any field before you start."),
        )


# ---------------------------------------------------------------------------------------------
# The form


def bounds(option: Option, config: TrainConfig) -> str:
    """The values an option takes, from its declaration."""
    low, high = option.low, option.high_for(config)
    if option.kind is int:
        text = _("A whole number from {low} to {high}.").format(low=f"{low:,}", high=f"{high:,}")
        return text + (" " + _("Empty: all.") if option.optional else "")
    if option.low_open:
        return _("A number more than {low}, at most {high}.").format(low=f"{low:g}", high=f"{high:g}")
    if option.high_open:
        return _("A number from {low} up to (not including) {high}.").format(low=f"{low:g}", high=f"{high:g}")
    return _("A number from {low} to {high}.").format(low=f"{low:g}", high=f"{high:g}")


def field_help(field: Field, family: TrainConfig) -> str:
    """The option's help, what the report uses, and its bounds."""
    option = field.option
    text = _(option.help)
    lines = [text[:1].upper() + text[1:]]
    if option.per_model:
        lines.append(_("The report: {value}.").format(value=form_value(Field(field.name, text=True), family)))
    if field.switch is None:
        lines.append(bounds(option, family))
    return "\n\n".join(lines)


def show_field(field: Field, model: str, family: TrainConfig) -> None:
    option, key = field.option, field_key(model, field.name)
    label, help_text = _(option.label), field_help(field, family)
    if field.switch is not None:
        st.checkbox(_(field.switch_label).format(value=f"{field.switch:g}"), key=key, help=help_text)
    elif field.text:
        st.text_input(label, key=key, help=help_text)
    elif option.kind is int:
        if option.optional:  # empty: the option's None ("all")
            st.number_input(label, value=None, step=int(field.step), key=key, help=help_text,
                            placeholder=_("all {images}").format(images=f"{TRAIN_IMAGES:,}"))
        else:
            st.number_input(label, step=int(field.step), key=key, help=help_text)
    else:
        st.number_input(label, step=field.step, format="%g", key=key, help=help_text)
    field_error(field.name)


def start_form(devices: list[str]) -> None:
    lecturer = access.is_lecturer()
    if NAME_KEY not in st.session_state:
        st.session_state[NAME_KEY] = suggest_name()
    if st.session_state.get(DEVICE_KEY) not in devices:
        st.session_state[DEVICE_KEY] = "cuda" if "cuda" in devices else devices[0]
    models, recipes = st.columns([1, 2])  # one row: the form stays high on the screen
    with models:
        say = labels_now()
        model = st.radio(_("Model"), list(MODEL_LABELS), key=MODEL_KEY, format_func=lambda m: say(MODEL_LABELS[m]))
    with recipes:
        preset_picker()
    family = TrainConfig.for_model(model)
    # First values through the session state, not value=: a recipe can then fill the fields
    # without Streamlit's warning about a widget given both.
    first = first_config(model)
    for field in shown(model):
        st.session_state.setdefault(field_key(model, field.name), form_value(field, first))
    boxes = [field for field in shown(model) if field.switch is None]
    switches = [field for field in shown(model) if field.switch is not None]
    with st.form("train_form", enter_to_submit=False):
        # Four to a row: every label on one line and the Start button on a projector's first
        # screen (the banner at the top then shows a started run without scrolling).
        slots = [column for _row in range(math.ceil((len(boxes) + 1) / 4)) for column in st.columns(4)]
        for field, slot in zip(boxes, slots, strict=False):
            with slot:
                show_field(field, model, family)
        with slots[len(boxes)]:
            st.selectbox(_("Device"), devices, key=DEVICE_KEY, format_func=str.upper)
            field_error("device")
        name, average = st.columns(2, vertical_alignment="bottom")
        with name:
            st.text_input(_("Run name"), key=NAME_KEY, max_chars=64,
                          help=_("The run's folder under {folder}.").format(folder=code(checkpoints_root())))
            field_error("name")
        with average:
            for field in switches:
                show_field(field, model, family)
        with st.container(horizontal=True, vertical_alignment="center"):  # Start stays on screen
            st.form_submit_button(_("Start training"), type="primary", icon=":material/play_arrow:",
                                  key="train_start", on_click=start_from_form, disabled=not lecturer)
            st.form_submit_button(_("The report's recipe"), icon=":material/menu_book:", key="train_report",
                                  on_click=use_report_recipe,
                                  help=_("Fills the form with the report's settings: all 60,000 images, "
                                         "200 epochs. Start then trains it."))
        if not lecturer:
            access.held_back()
        promise = what_the_class_sees(model)
        st.caption(f"**{promise}** {quality_caption(model)}" if promise else quality_caption(model))
        field_error("capacity")
        field_error("start")
    missing = mnist_status()
    if missing:  # the trainer would try the internet; say so before anyone presses Start
        st.warning(_("MNIST is not on this machine, so a run can only start with internet access (the "
                     "trainer then downloads it). Offline: {command}. ({reason})").format(
                         command=f"`{MNIST_INSTALL_HINT}`", reason=plain(missing)),
                   icon=":material/cloud_off:")
