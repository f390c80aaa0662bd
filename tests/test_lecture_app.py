"""The lecture's controls through Streamlit's AppTest: jumps to the report's epochs, an outlined
noise column, Play's speed and single steps, presentation mode, the exports, the sidebar's
running jobs, a damaged run, a recreated run, and the server's safety checks."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from cgan.runs import Run
from tests.conftest import ROOT, as_its_trainer, make_run
from app.figures import header_height
from tests.test_app import GRID_SCALE, app, grid_part, images, no_failure, texts

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

ORANGE = np.array([255, 122, 0])  # app.figures.HIGHLIGHT_RGB


@pytest.fixture
def long_checkpoints(monkeypatch, tmp_path, long_run) -> Run:
    """The 80-epoch run (weights at 20, 50, 75, 80) served as cgan-report."""
    shutil.copytree(long_run.path, tmp_path / "cgan-report")
    monkeypatch.setenv("CGAN_CHECKPOINTS", str(tmp_path))
    return Run(tmp_path / "cgan-report")


def rgb(shown) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(shown.data)).convert("RGB"))


def orange_columns(picture: np.ndarray) -> np.ndarray:
    """x positions of the orange outline's pixels."""
    return np.flatnonzero((np.abs(picture.astype(int) - ORANGE).sum(axis=2) < 30).any(axis=0))


# ---------------------------------------------------------------------------------------------
# Jumps to the report's epochs


def test_jump_buttons_reach_the_reports_epochs_in_one_click(long_checkpoints):
    at = app("evolution")
    labels = [b.label for b in at.button if b.key and b.key.startswith("evolution_epoch_jump_")]
    assert labels == ["1", "20", "50", "75", "80"]  # 200 is not there: its nearest, 80
    for epoch in (20, 75, 1, 50):
        at.button(key=f"evolution_epoch_jump_{epoch}").click().run()
        assert at.slider(key="evolution_epoch").value == epoch
        assert images(at)[0].captions == [f"Epoch {epoch}"]
        assert np.array_equal(grid_part(images(at)[0].pixels, GRID_SCALE),
                              long_checkpoints.grid(epoch))

    at.switch_page("views/generate.py").run()  # weights only at 20, 50, 75, 80
    labels = [b.label for b in at.button if b.key and b.key.startswith("generate_epoch_jump_")]
    assert labels == ["20", "50", "75", "80"]
    at.button(key="generate_epoch_jump_50").click().run()
    assert at.select_slider(key="generate_epoch").value == 50
    assert "epoch 50" in images(at)[0].captions[0]
    no_failure(at)


# ---------------------------------------------------------------------------------------------
# One noise column, outlined


def test_column_highlight_outlines_one_column_on_the_grid_and_in_compare(long_checkpoints):
    at = app("evolution")
    assert images(at)[0].mode == "L" and orange_columns(rgb(images(at)[0])).size == 0
    at.pills(key="evolution_column").set_value(3).run()
    picture = rgb(images(at)[0])
    cell = 28 * GRID_SCALE
    left = picture.shape[1] - 280 * GRID_SCALE + 3 * cell
    xs = orange_columns(picture)
    assert xs.size and xs.min() >= left and xs.max() < left + cell, (xs.min(), xs.max(), left)
    # The outline does not hide the digits: inside it, the grid's pixels are the run's.
    inner = grid_part(images(at)[0].pixels, GRID_SCALE)[:, 31:53]
    assert np.array_equal(inner, long_checkpoints.grid(80)[:, 31:53])

    at.switch_page("views/compare.py").run()
    at.pills(key="compare_column").set_value(7).run()
    panels = images(at)
    assert [p.captions[0] for p in panels] == ["Epoch 20", "Epoch 50", "Epoch 75", "Epoch 80"]
    for panel in panels:
        picture = rgb(panel)
        left = picture.shape[1] - 560 + 7 * 56
        xs = orange_columns(picture)
        assert xs.size and xs.min() >= left and xs.max() < left + 56
    no_failure(at)


# ---------------------------------------------------------------------------------------------
# Play: speed and single steps


def test_play_speed_and_single_steps(checkpoints):
    at = app("evolution")
    assert at.slider(key="evolution_epoch").value == 4
    at.button(key="evolution_back").click().run()
    at.button(key="evolution_back").click().run()
    assert at.slider(key="evolution_epoch").value == 2
    at.button(key="evolution_forward").click().run()
    assert at.slider(key="evolution_epoch").value == 3
    assert images(at)[0].captions == ["Epoch 3"]
    for _ in range(3):
        at.button(key="evolution_forward").click().run()
    assert at.slider(key="evolution_epoch").value == 4  # the last epoch: no further

    def played_for(seconds: float) -> int:
        """The epoch shown `seconds` after Play (AppTest does not fire the step timer)."""
        start, _ = at.session_state["evolution_playing"]
        at.session_state["evolution_playing"] = (start, time.monotonic() - seconds)
        at.run()
        return at.slider(key="evolution_epoch").value

    at.slider(key="evolution_epoch").set_value(1).run()
    at.button(key="evolution_play").click().run()
    assert played_for(0.25) == 1  # 1x: 0.4 s per epoch
    at.button(key="evolution_play").click().run()  # Stop
    at.slider(key="evolution_epoch").set_value(1).run()
    at.segmented_control(key="evolution_speed").set_value("4x").run()
    at.button(key="evolution_play").click().run()
    assert played_for(0.25) in (3, 4)  # 4x: 0.1 s per epoch, two steps (or three if slow)
    at.button(key="evolution_back").click().run()  # a step stops the play
    assert "evolution_playing" not in at.session_state
    assert at.button(key="evolution_play").label == "Play"
    no_failure(at)


def test_a_late_report_of_a_frame_does_not_stop_play_but_a_move_does(checkpoints):
    at = app("evolution")
    at.slider(key="evolution_epoch").set_value(1).run()
    at.button(key="evolution_play").click().run()
    # A busy machine: the browser reports back epoch 2 1.5 s after the animation showed it.
    at.session_state["evolution_shown"] = [(2, time.monotonic() - 1.5)]
    at.slider(key="evolution_epoch").set_value(2).run()
    assert "evolution_playing" in at.session_state
    assert at.button(key="evolution_play").label == "Stop"
    # The lecturer drags to an epoch the animation did not show in the last 2 s: Play stops.
    at.session_state["evolution_shown"] = [(3, time.monotonic() - 3.0)]
    at.slider(key="evolution_epoch").set_value(3).run()
    assert "evolution_playing" not in at.session_state
    assert at.slider(key="evolution_epoch").value == 3
    no_failure(at)


# ---------------------------------------------------------------------------------------------
# Presentation mode


def test_presentation_mode_from_the_url_hides_controls_and_gives_the_figure_the_screen(checkpoints):
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=60)
    at.query_params["present"] = "1"
    at.run()
    no_failure(at)
    styles = " ".join(h.proto.body for h in at.get("html"))
    assert "stSidebar" in styles and "display: none" in styles  # chrome hidden
    assert not at.title  # no page title
    assert images(at) and images(at)[0].captions == ["Epoch 4"]
    assert "100vh - 3.9rem" in styles  # the grid takes the window's height
    at.button(key="present_exit").click().run()
    assert at.title[0].value == "Training evolution"
    assert at.toggle(key="present").value is False
    at.toggle(key="present").set_value(True).run()
    assert not at.title and at.button(key="present_exit")


# ---------------------------------------------------------------------------------------------
# Exports


def test_exports_label_the_grid_and_the_compare_figure(checkpoints, downloads):
    run = Run(checkpoints / "cgan-report")
    at = app("evolution")
    at.slider(key="evolution_epoch").set_value(2).run()
    at.pills(key="evolution_column").set_value(3).run()
    files = downloads(at)
    name, data = files["evolution_png"]
    assert name == "cgan-report-epoch2-grid.png"
    png = Image.open(io.BytesIO(data))
    assert png.format == "PNG" and png.mode == "RGB"  # the outlined column is orange
    labelled = np.asarray(png.convert("L"))
    # The run's grid, enlarged 4x, with numbered rows and columns and a title below.
    top = header_height(4)
    grid = labelled[top : top + 4 * 280, -4 * 280 :][::4, ::4]
    untouched = [c for c in range(10) if c != 3]  # the outline covers column 3's edges
    for c in untouched:
        assert np.array_equal(grid[:, c * 28 : c * 28 + 28], run.grid(2)[:, c * 28 : c * 28 + 28])
    assert labelled.shape[0] > top + 4 * 280 + 20, "a title below the grid"
    assert (labelled[:top, -4 * 280 :] < 128).any(), "column numbers above the grid"
    name, gif = files["evolution_gif"]
    assert name == "cgan-report-evolution.gif" and Image.open(io.BytesIO(gif)).n_frames == 4
    at.selectbox(key="evolution_gif_every").set_value("every 5th").run()
    name, gif = downloads(at)["evolution_gif"]
    assert name == "cgan-report-evolution-every5.gif"
    assert Image.open(io.BytesIO(gif)).n_frames == 2  # epoch 1, and always the last one
    assert len(gif) < len(files["evolution_gif"][1])

    # The Compare figure: the four panels side by side, in order, each under its label.
    at.switch_page("views/compare.py").run()
    at.multiselect(key="compare_epochs").set_value([1, 2, 3, 4]).run()
    name, data = downloads(at)["compare_png"]
    assert name == "cgan-report-epochs-1-2-3-4-grids.png"
    figure = np.asarray(Image.open(io.BytesIO(data)).convert("L"))
    panels = [p.pixels for p in images(at)]
    width, height = panels[0].shape[1], panels[0].shape[0]
    assert figure.shape[1] == 4 * width + 3 * 24  # one row
    for k, picture in enumerate(panels):
        x = k * (width + 24)
        assert np.array_equal(figure[-height:, x : x + width], picture)
    label_band = figure[: figure.shape[0] - height - 12]
    assert (label_band < 128).any(), "the epoch labels are written above the panels"
    no_failure(at)


# ---------------------------------------------------------------------------------------------
# The sidebar: jobs training now


def test_sidebar_shows_a_running_job_on_every_page_and_follows_it_in_one_click(checkpoints, tmp_path,
                                                                             monkeypatch):
    folder = tmp_path / "served"
    shutil.copytree(checkpoints, folder)
    growing = Run(folder / "live-run")
    shutil.copytree(folder / "cgan-report", growing.path)
    with as_its_trainer(growing, epochs_total=10):  # this process stands for its trainer
        monkeypatch.setenv("CGAN_CHECKPOINTS", str(folder))
        at = app()
        for page in ("evolution", "compare", "losses", "real_vs"):
            at.switch_page(f"views/{page}.py").run()
            sidebar = texts(at.sidebar.markdown)
            assert "Training now" in sidebar and "live-run" in sidebar, page
            assert "epoch 4 of 10" in sidebar and "left" in sidebar, page
        assert at.sidebar.selectbox(key="run").value == "cgan-report"
        at.sidebar.button(key="follow_live-run").click().run()
        assert at.sidebar.selectbox(key="run").value == "live-run"
        assert not [b for b in at.sidebar.button if b.key == "follow_live-run"]  # shown: no button left
    growing.write_status("finished", epochs_done=10)
    at.run()
    assert "Training now" not in texts(at.sidebar.markdown)


# ---------------------------------------------------------------------------------------------
# Damaged and recreated runs


def test_a_damaged_history_gets_one_line_and_never_takes_down_another_run(checkpoints, tmp_path,
                                                                          monkeypatch):
    folder = tmp_path / "served"
    shutil.copytree(checkpoints, folder)
    damaged = Run(folder / "damaged")
    shutil.copytree(folder / "cgan-report", damaged.path)
    damaged.history_path.write_bytes(np.random.default_rng(0).bytes(3000))
    monkeypatch.setenv("CGAN_CHECKPOINTS", str(folder))
    at = app()
    for page in ("evolution", "generate", "compare", "real_vs"):  # about cgan-report
        at.switch_page(f"views/{page}.py").run()
        no_failure(at)
        assert images(at), page
    at.sidebar.selectbox(key="run").set_value("damaged").run()
    assert "damaged history" in texts(at.sidebar.caption)
    for page in ("evolution", "generate", "compare"):
        at.switch_page(f"views/{page}.py").run()
        assert not at.exception, page
        assert len(at.error) == 1 and "history.jsonl" in at.error[0].value, page
        assert "\n" not in at.error[0].value
    at.sidebar.selectbox(key="run").set_value("cgan-report").run()
    no_failure(at)


def test_a_run_recreated_under_the_same_name_shows_its_own_generator(tmp_path):
    """Regression: the file's version was left out of the generator cache's key."""
    from app import loaders

    path = tmp_path / "live-1"
    first = make_run(path, epochs=1, limit=150, width=0.25, seed=1)
    before = loaders.generator(first, 1)
    shutil.rmtree(path)
    time.sleep(0.01)
    second = make_run(path, epochs=1, limit=150, width=0.25, seed=2)
    after = loaders.generator(second, 1)
    fresh = second.load_generator(1)
    for name, tensor in fresh.state_dict().items():
        assert np.array_equal(after.state_dict()[name].numpy(), tensor.numpy()), name
    assert any(not np.array_equal(before.state_dict()[n].numpy(), t.numpy())
               for n, t in fresh.state_dict().items())


# ---------------------------------------------------------------------------------------------
# A server that is safe wherever it is started


def exposure(env: dict, *flags: str) -> str:
    """The app's exposure warnings for a server configured from a folder without the project's
    settings (/) and the given flags."""
    code = (
        "import sys; from streamlit import config; from streamlit.web import bootstrap;"
        f"sys.argv = ['streamlit', *{list(flags)!r}];"
        "opts = {a[2:].replace('.', '_'): b for a, b in zip(sys.argv[1::2], sys.argv[2::2])};"
        "bootstrap.load_config_options(flag_options=opts);"
        "from app.safety import exposure_warnings;"
        "print(exposure_warnings())"
    )
    environment = {k: v for k, v in os.environ.items() if k != "CGAN_ALLOW_NETWORK"}
    environment.update(env, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code], cwd="/", env=environment,
                          capture_output=True, text=True, timeout=60, check=True).stdout


def test_a_server_on_every_interface_warns_unless_asked_for():
    assert "open to every machine" in exposure({})  # `cd / && streamlit run .../app/main.py`
    assert "usage statistics" in exposure({})
    assert "open to every machine" not in exposure({}, "--server.address", "0.0.0.0")
    assert "open to every machine" not in exposure({"CGAN_ALLOW_NETWORK": "1"})
    assert exposure({}, "--server.address", "127.0.0.1", "--browser.gatherUsageStats",
                    "false") == "[]\n"


def test_the_launcher_passes_the_safe_settings_from_any_folder():
    from app.__main__ import command

    line = command(8600, network=False, extra=[])
    settings = dict(zip(line[5::2], line[6::2], strict=True))
    assert line[:4] == [sys.executable, "-m", "streamlit", "run"]
    assert settings["--server.address"] == "127.0.0.1" and settings["--server.port"] == "8600"
    assert settings["--browser.gatherUsageStats"] == "false"
    assert settings["--logger.hideWelcomeMessage"] == "true"  # no "install skills" pop-up
    assert command(8501, network=True, extra=[])[6] == "0.0.0.0"
    dry = subprocess.run(["make", "-n", "run", "PORT=8600"], cwd=ROOT, capture_output=True,
                         text=True, timeout=30)
    assert "-m app --port 8600" in dry.stdout
    out = subprocess.run([sys.executable, "-m", "app", "--port", "0"], cwd="/", capture_output=True,
                         text=True, timeout=30, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 2 and "--port 0" in out.stderr.splitlines()[-1]
