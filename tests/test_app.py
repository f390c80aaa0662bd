"""The app's pages, run headless with Streamlit's AppTest on small runs made by the library.

Images are checked by their pixels: the PNG bytes a page sends are read back from the media
storage AppTest uses, scaled down again and compared with what cgan.runs and cgan.sampling give.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cgan.runs import Run
from cgan.sampling import generate, noise
from app.figures import header_height
from tests.conftest import ROOT

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

MAIN = str(ROOT / "app" / "main.py")
GRID_SCALE = 3  # app.figures.GRID_SCALE: the evolution grid's enlargement
TIMEOUT = 60


# ---------------------------------------------------------------------------------------------
# Fixtures


class Shown:
    """A picture a page showed: its caption and its pixels (grayscale)."""

    def __init__(self, caption: str, data: bytes) -> None:
        self.captions = [caption]
        self.data = data
        self.pixels = np.asarray(Image.open(io.BytesIO(data)).convert("L"))
        self.mode = Image.open(io.BytesIO(data)).mode


FIGURE = re.compile(r'<figure class="cgan-figure"[^>]*>(.*?)</figure>', re.S)
CAPTION = re.compile(r"<figcaption[^>]*>(.*?)</figcaption>", re.S)
DATA = re.compile(r'src="data:image/png;base64,([^"]+)"')


def images(at: AppTest) -> list[Shown]:
    """Every picture on the page, in order: the pages send PNG data inside their HTML."""
    found = []
    for element in at.get("html"):
        for figure in FIGURE.findall(element.proto.body):
            caption = CAPTION.search(figure)
            data = base64.b64decode(DATA.search(figure).group(1))
            found.append(Shown(html.unescape(caption.group(1)) if caption else "", data))
    return found


@pytest.fixture
def pixels():
    """pixels(picture) -> the uint8 array of a picture the app showed."""
    return lambda shown: shown.pixels


def app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT).run()
    if page:
        at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements) -> str:
    return " | ".join(str(e.value) for e in elements)


def no_failure(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, texts(at.error)


def first_tile(image: np.ndarray, columns: int) -> np.ndarray:
    """The first 28x28 digit of a mosaic made by common.fitted_mosaic (2-pixel white gaps)."""
    plain_width = columns * 28 + (columns - 1) * 2
    scale = image.shape[1] // plain_width
    assert image.shape[1] == plain_width * scale
    return image[::scale, ::scale][:28, :28]


def grid_part(image: np.ndarray, scale: int, numbers: bool = True) -> np.ndarray:
    """The 280x280 grid inside common.labelled_grid's picture (row labels on the left, column
    numbers above unless `numbers` is False)."""
    size, header = 280 * scale, header_height(scale) if numbers else 0
    return image[header : header + size, -size:][::scale, ::scale]


def library_samples(run: Run, epoch: int, digit: int, seed: int, n: int) -> np.ndarray:
    return generate(run.load_generator(epoch), [digit] * n, noise(seed, n))


# ---------------------------------------------------------------------------------------------
# Configuration


def test_streamlit_config_file_is_the_one_streamlit_reads():
    link = ROOT / ".streamlit" / "config.toml"
    assert link.is_symlink(), ".streamlit/config.toml must link to streamlit_config.toml"
    assert Path(link.readlink()).as_posix() == "../streamlit_config.toml"  # relative: clones work
    settings = tomllib.loads((ROOT / "streamlit_config.toml").read_text())
    assert settings["server"]["address"] == "127.0.0.1"
    assert settings["server"]["fileWatcherType"] == "none"
    assert settings["browser"]["gatherUsageStats"] is False
    assert settings["client"]["showErrorDetails"] == "none"
    assert settings["client"]["toolbarMode"] == "minimal"
    assert settings["theme"]["baseFontSize"] >= 18
    # Streamlit's own loader, started from the repository root as `streamlit run` is.
    code = (
        "from streamlit import config; config.get_config_options(); "
        "print(*(config.get_option(name) for name in ('theme.baseFontSize',"
        " 'server.fileWatcherType', 'client.showErrorDetails', 'server.address')))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    assert out == [str(settings["theme"]["baseFontSize"]), "none", "none", "127.0.0.1"]


# ---------------------------------------------------------------------------------------------
# Navigation and the shared run


def test_every_page_opens_on_the_preferred_run(checkpoints):
    at = app()
    assert at.sidebar.selectbox(key="run").value == "cgan-report"  # preferred over the newer run
    assert "CGAN, 4 epochs" in texts(at.sidebar.caption)
    titles = {}
    for page in ("evolution", "generate", "compare", "losses", "real_vs"):
        at.switch_page(f"views/{page}.py").run()
        no_failure(at)
        titles[page] = at.title[0].value
        assert images(at) or page == "losses", page
        assert at.sidebar.selectbox(key="run").value == "cgan-report"
    assert titles["generate"] == "Generate digits"


def test_the_chosen_run_is_kept_across_pages(checkpoints):
    at = app("generate")
    at.sidebar.selectbox(key="run").set_value("cdcgan-small").run()
    assert "epoch 2" in images(at)[0].captions[0]
    at.switch_page("views/evolution.py").run()
    assert at.sidebar.selectbox(key="run").value == "cdcgan-small"
    assert at.slider(key="evolution_epoch").value == 2
    at.switch_page("views/losses.py").run()
    assert at.multiselect(key="losses_runs").value == ["cdcgan-small"]


# ---------------------------------------------------------------------------------------------
# Generate


def test_generate_digit_seed_and_epoch(checkpoints, pixels):
    run = Run(checkpoints / "cgan-report")
    at = app("generate")
    assert at.select_slider(key="generate_epoch").value == 4  # newest epoch with weights
    at.segmented_control(key="generate_digit").set_value(3).run()
    at.number_input(key="generate_seed").set_value(42).run()
    at.slider(key="generate_count").set_value(1).run()
    three = pixels(images(at)[0])
    assert images(at)[0].captions[0].startswith("Digit 3, seed 42, epoch 4")
    # What the page shows is what the library draws, enlarged with nearest neighbour.
    assert np.array_equal(first_tile(three, 1), library_samples(run, 4, 3, 42, 1)[0])
    assert three.shape[0] >= 28 * 8, "a single digit is shown large"

    at.segmented_control(key="generate_digit").set_value(7).run()
    seven = pixels(images(at)[0])
    assert not np.array_equal(three, seven)

    at.segmented_control(key="generate_digit").set_value(3).run()
    assert np.array_equal(pixels(images(at)[0]), three), "same seed, same pixels"
    at.number_input(key="generate_seed").set_value(43).run()
    assert not np.array_equal(pixels(images(at)[0]), three)

    at.select_slider(key="generate_epoch").set_value(2).run()
    assert images(at)[0].captions[0].startswith("Digit 3, seed 43, epoch 2")
    assert np.array_equal(first_tile(pixels(images(at)[0]), 1),
                          library_samples(run, 2, 3, 43, 1)[0])

    at.slider(key="generate_count").set_value(5).run()
    many = pixels(images(at)[0])
    assert np.array_equal(first_tile(many, 3), library_samples(run, 2, 3, 43, 5)[0])

    # The same noise as all ten digits: the strip holds digits 0-9 of the first noise vector.
    strip = pixels(images(at)[1])
    z = noise(43, 1).repeat(10, 1)
    expected = generate(run.load_generator(2), list(range(10)), z)
    scale = strip.shape[1] // (10 * 28 + 9 * 2)
    for digit in (0, 9):
        left = digit * 30 * scale
        shown = strip[::scale, left : left + 28 * scale : scale][:28]
        assert np.array_equal(shown, expected[digit])

    downloads = at.get("download_button")
    # The PNG itself is made when pressed (the browser test downloads and opens it).
    assert downloads and downloads[0].proto.deferred_file_id, "a PNG download is offered"
    no_failure(at)


def test_random_seed_button_draws_a_new_seed(checkpoints, pixels):
    at = app("generate")
    before = at.number_input(key="generate_seed").value
    image = pixels(images(at)[0])
    seeds = set()
    for _ in range(3):
        at.button(key="generate_seed_random").click().run()
        seeds.add(at.number_input(key="generate_seed").value)
    assert seeds - {before}
    assert not np.array_equal(pixels(images(at)[0]), image)


def test_digit_and_seed_carry_over_between_pages(checkpoints):
    at = app("generate")
    at.segmented_control(key="generate_digit").set_value(5).run()
    at.number_input(key="generate_seed").set_value(1234).run()
    at.switch_page("views/real_vs.py").run()
    assert at.segmented_control(key="real_vs_digit").value == 5
    assert at.number_input(key="real_vs_seed").value == 1234


# ---------------------------------------------------------------------------------------------
# Training evolution


def test_evolution_slider_shows_that_epochs_grid(checkpoints, pixels):
    run = Run(checkpoints / "cgan-report")
    at = app("evolution")
    slider = at.slider(key="evolution_epoch")
    assert (slider.min, slider.max, slider.value) == (1, 4, 4)
    for epoch in (2, 1, 4):
        at.slider(key="evolution_epoch").set_value(epoch).run()
        image = images(at)[0]
        assert image.captions == [f"Epoch {epoch}"]
        assert np.array_equal(grid_part(pixels(image), GRID_SCALE), run.grid(epoch))
    assert not np.array_equal(run.grid(1), run.grid(4))
    assert any("Row" in m.value and "noise vector" in m.value for m in at.markdown)
    no_failure(at)


def test_evolution_play_steps_through_epochs(checkpoints):
    at = app("evolution")
    assert at.button(key="evolution_play").label == "Play"
    at.button(key="evolution_play").click().run()  # at the end already: starts from epoch 1
    assert at.slider(key="evolution_epoch").value == 1
    assert at.button(key="evolution_play").label == "Stop"

    def seconds_ago(seconds: float) -> None:
        """Pretend Play was pressed `seconds` ago (AppTest does not fire the step timer)."""
        start, _ = at.session_state["evolution_playing"]
        at.session_state["evolution_playing"] = (start, time.monotonic() - seconds)
        at.run()

    seconds_ago(0.45)
    assert at.slider(key="evolution_epoch").value in (2, 3)  # one step (two on a slow machine)
    assert at.button(key="evolution_play").label == "Stop"
    seconds_ago(100)
    assert at.slider(key="evolution_epoch").value == 4  # the last epoch, and the end of play
    assert at.button(key="evolution_play").label == "Play"
    at.run()
    assert at.slider(key="evolution_epoch").value == 4

    at.slider(key="evolution_epoch").set_value(2).run()
    at.button(key="evolution_play").click().run()  # from where the slider is
    assert at.slider(key="evolution_epoch").value == 2
    at.button(key="evolution_play").click().run()  # Stop
    assert at.button(key="evolution_play").label == "Play"
    at.run()
    assert at.slider(key="evolution_epoch").value == 2  # stopped: stays put


def test_evolution_gif_holds_every_epoch(checkpoints):
    from app import common

    run = Run(checkpoints / "cgan-report")
    gif = Image.open(io.BytesIO(common.evolution_gif(run)))
    assert gif.format == "GIF" and gif.n_frames == 4
    gif.seek(1)
    frame = np.asarray(gif.convert("L"))
    assert np.array_equal(frame[:280, -280:], run.grid(2))  # no column numbers in the GIF
    at = app("evolution")
    assert any(d.label.startswith("GIF of the evolution") for d in at.get("download_button"))


# ---------------------------------------------------------------------------------------------
# Compare epochs


def test_compare_defaults_to_the_reports_epochs(monkeypatch, tmp_path, long_run, pixels):
    shutil.copytree(long_run.path, tmp_path / "cgan-report")
    monkeypatch.setenv("CGAN_CHECKPOINTS", str(tmp_path))
    run = Run(tmp_path / "cgan-report")
    at = app("compare")
    # The run stops at 80: the nearest to the report's 200.
    assert at.multiselect(key="compare_epochs").value == [20, 50, 75, 80]
    panels = images(at)
    assert [i.captions[0] for i in panels] == ["Epoch 20", "Epoch 50", "Epoch 75", "Epoch 80"]
    for image, epoch in zip(panels, (20, 50, 75, 80), strict=True):
        assert np.array_equal(grid_part(pixels(image), 2, numbers=False), run.grid(epoch))

    at.multiselect(key="compare_epochs").set_value([3, 60]).run()
    assert [i.captions[0] for i in images(at)] == ["Epoch 3", "Epoch 60"]
    assert np.array_equal(grid_part(pixels(images(at)[1]), 2, numbers=False), run.grid(60))

    # One digit and seed: weights exist only at 20, 50, 75, 80; the nearest are used.
    at.segmented_control(key="compare_mode").set_value("One digit").run()
    at.segmented_control(key="compare_digit").set_value(4).run()
    at.number_input(key="compare_seed").set_value(9).run()
    at.number_input(key="compare_count").set_value(4).run()
    captions = [i.captions[0] for i in images(at)]
    assert captions == ["Epoch 3 (weights of 20)", "Epoch 60 (weights of 50)"]
    shown = first_tile(pixels(images(at)[1]), 2)
    assert np.array_equal(shown, library_samples(run, 50, 4, 9, 4)[0])
    no_failure(at)


# ---------------------------------------------------------------------------------------------
# Loss curves


def chart(at: AppTest, key: str) -> dict:
    for element in at.get("plotly_chart"):
        spec = json.loads(element.proto.spec)
        if element.proto.id and key in element.proto.id:
            return spec
    raise AssertionError(f"no chart {key}")


def numbers(values) -> list:
    """Plotly stores long arrays as base64 typed arrays ({"dtype", "bdata"})."""
    if isinstance(values, dict) and "bdata" in values:
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).tolist()
    return list(values)


def traces(spec: dict) -> dict:
    """Traces by name, with their x and y as plain lists."""
    found = {}
    for trace in spec["data"]:
        found[trace["name"]] = {**trace, "x": numbers(trace["x"]), "y": numbers(trace["y"])}
    return found


def test_loss_curves_hold_the_runs_numbers(checkpoints, tmp_path):
    run = Run(checkpoints / "cgan-report")
    history = run.history()
    at = app("losses")
    figure = traces(chart(at, "losses_chart"))
    assert figure["D loss"]["x"] == [r.epoch for r in history]
    assert np.allclose(figure["D loss"]["y"], [r.d_loss for r in history])
    assert np.allclose(figure["G loss"]["y"], [r.g_loss for r in history])
    shapes = chart(at, "losses_chart")["layout"]["shapes"]
    assert any(math.isclose(s["y0"], math.log(4)) for s in shapes), "the log 4 line for D"
    times = traces(chart(at, "losses_time"))["cgan-report"]
    assert np.allclose(times["y"], [r.epoch_seconds for r in history])

    at.toggle(key="losses_log").set_value(True).run()
    assert chart(at, "losses_chart")["layout"]["yaxis"]["type"] == "log"
    at.slider(key="losses_smooth").set_value(3).run()
    d = [r.d_loss for r in history]
    expected = [d[0], (d[0] + d[1]) / 2, sum(d[:3]) / 3, sum(d[1:4]) / 3]
    assert np.allclose(traces(chart(at, "losses_chart"))["D loss"]["y"], expected)

    at.multiselect(key="losses_runs").set_value(["cgan-report", "cdcgan-small"]).run()
    names = set(traces(chart(at, "losses_chart")))
    assert {"D loss (cgan-report)", "G loss (cdcgan-small)"} <= names
    no_failure(at)


def test_quality_metrics_appear_beside_the_losses(monkeypatch, tmp_path, cgan_run):
    shutil.copytree(cgan_run.path, tmp_path / "measured")
    run = Run(tmp_path / "measured")
    run.update_metrics(2, {"accuracy": 0.5, "frechet": 40.0})
    run.update_metrics(4, {"accuracy": 0.75, "frechet": 20.0})
    monkeypatch.setenv("CGAN_CHECKPOINTS", str(tmp_path))
    at = app("losses")
    accuracy = traces(chart(at, "losses_accuracy"))["measured"]
    assert accuracy["x"] == [2, 4] and np.allclose(accuracy["y"], [50, 75])
    assert traces(chart(at, "losses_frechet"))["measured"]["y"] == [40.0, 20.0]


# ---------------------------------------------------------------------------------------------
# Real vs CGAN vs cDCGAN


def test_real_vs_models(checkpoints, pixels):
    from cgan.data import load_mnist

    at = app("real_vs")
    assert at.selectbox(key="real_vs_cgan").value == "cgan-report"
    assert at.selectbox(key="real_vs_cdcgan").value == "cdcgan-small"  # the newest cDCGAN
    at.segmented_control(key="real_vs_digit").set_value(5).run()
    at.number_input(key="real_vs_seed").set_value(8).run()
    real, cgan, cdcgan = images(at)
    mnist = load_mnist()
    fives = mnist.train_images[mnist.train_labels == 5]
    tile = first_tile(pixels(real), 4)
    assert (fives == tile).all(axis=(1, 2)).any(), "a real training image of a 5"
    assert np.array_equal(first_tile(pixels(cgan), 4),
                          library_samples(Run(checkpoints / "cgan-report"), 4, 5, 8, 16)[0])
    assert cdcgan.captions == ["cdcgan-small, epoch 2"]
    no_failure(at)


# ---------------------------------------------------------------------------------------------
# Odd states: one clear line, never an exception


PAGES = ("evolution", "generate", "compare", "losses", "real_vs")


def messages(at: AppTest) -> str:
    return texts([*at.info, *at.warning, *at.error, *at.sidebar.info, *at.sidebar.warning])


def test_no_runs_at_all(monkeypatch, tmp_path):
    monkeypatch.setenv("CGAN_CHECKPOINTS", str(tmp_path / "nothing-here"))
    at = app()
    for page in PAGES:
        at.switch_page(f"views/{page}.py").run()
        assert not at.exception, page
        assert "No runs yet" in messages(at) or page == "real_vs", page
    assert "No CGAN run yet" in messages(at)


def test_run_without_a_finished_epoch(monkeypatch, tmp_path):
    Run(tmp_path / "starting").create({"model": "cgan", "epochs": 10})
    monkeypatch.setenv("CGAN_CHECKPOINTS", str(tmp_path))
    at = app()
    for page in ("evolution", "generate", "compare"):
        at.switch_page(f"views/{page}.py").run()
        no_failure(at)
        assert "no finished epoch yet" in messages(at), page
    at.switch_page("views/losses.py").run()
    no_failure(at)
    assert "no finished epoch yet" in messages(at)


def test_new_epochs_appear_while_a_run_is_written(monkeypatch, tmp_path, cgan_run, pixels):
    shutil.copytree(cgan_run.path, tmp_path / "growing")
    run = Run(tmp_path / "growing")
    lines = run.history_path.read_text().splitlines(keepends=True)
    run.history_path.write_text("".join(lines[:2]) + lines[2][:30])  # epoch 3 half written
    monkeypatch.setenv("CGAN_CHECKPOINTS", str(tmp_path))
    at = app("evolution")
    assert (at.slider(key="evolution_epoch").max, at.slider(key="evolution_epoch").value) == (2, 2)
    run.history_path.write_text("".join(lines))  # epochs 3 and 4 are complete now
    at.run()
    assert (at.slider(key="evolution_epoch").max, at.slider(key="evolution_epoch").value) == (4, 4)
    assert np.array_equal(grid_part(pixels(images(at)[0]), GRID_SCALE), run.grid(4))
    at.switch_page("views/generate.py").run()
    assert at.select_slider(key="generate_epoch").value == 4
    no_failure(at)


def test_corrupt_and_truncated_files(monkeypatch, tmp_path, cgan_run):
    shutil.copytree(cgan_run.path, tmp_path / "damaged")
    run = Run(tmp_path / "damaged")
    weights = run.weights_path(4).read_bytes()
    run.weights_path(4).write_bytes(weights[: len(weights) // 3])  # truncated
    run.grid_path(3).write_bytes(b"not a png")
    monkeypatch.setenv("CGAN_CHECKPOINTS", str(tmp_path))

    at = app("generate")
    assert not at.exception
    assert len(at.error) == 1 and "truncated" in at.error[0].value
    assert "\n" not in at.error[0].value and "Traceback" not in at.error[0].value
    at.select_slider(key="generate_epoch").set_value(3).run()  # an intact epoch still works
    no_failure(at)
    assert images(at)

    at.switch_page("views/evolution.py").run()
    at.slider(key="evolution_epoch").set_value(3).run()
    assert not at.exception
    assert len(at.error) == 1 and "unreadable image" in at.error[0].value
    at.slider(key="evolution_epoch").set_value(2).run()
    no_failure(at)

    (run.path / "weights" / "generator_0002.pt").write_bytes(b"\x80\x02garbage")
    at.switch_page("views/compare.py").run()
    at.segmented_control(key="compare_mode").set_value("One digit").run()
    assert not at.exception
    assert at.error and all("\n" not in e.value for e in at.error)


def test_run_deleted_while_the_page_is_open(monkeypatch, tmp_path, cgan_run, cdcgan_run):
    shutil.copytree(cgan_run.path, tmp_path / "cgan-report")
    shutil.copytree(cdcgan_run.path, tmp_path / "other")
    monkeypatch.setenv("CGAN_CHECKPOINTS", str(tmp_path))
    at = app("evolution")
    assert at.sidebar.selectbox(key="run").value == "cgan-report"
    shutil.rmtree(tmp_path / "cgan-report" / "grids")  # going, file by file
    at.slider(key="evolution_epoch").set_value(2).run()
    assert not at.exception and len(at.error) == 1 and "missing" in at.error[0].value
    shutil.rmtree(tmp_path / "cgan-report")  # gone
    at.run()
    assert not at.exception
    assert "cgan-report is gone" in messages(at)
    assert at.sidebar.selectbox(key="run").value == "other"
    assert images(at), "the app goes on with the run that is left"
    for page in PAGES:
        at.switch_page(f"views/{page}.py").run()
        no_failure(at)
