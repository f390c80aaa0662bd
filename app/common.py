"""What the app's pages share, in one import: ``from app import common``.

The pieces live in their own modules, by what they hold:

    app/selection.py  which run the pages show: the sidebar's run picker, jobs training now
    app/loaders.py    cached reads of runs (history, grids, generators) and MNIST, page_errors
    app/widgets.py    shared controls: digit, seed, epoch with jump buttons, presentation mode
    app/figures.py    drawing and exporting: labelled grids, panels, PNG and GIF, showing figures
    app/style.py      the page's CSS

A page reads like this::

    with common.page_errors():
        run = common.current_run()          # the run picked in the sidebar (None: message shown)
        if run is not None:
            ...
"""

from __future__ import annotations

from app.figures import (  # noqa: F401
    GAP_COLOUR,
    GRID_SCALE,
    download_png,
    fitted_mosaic,
    font,
    grid_png,
    labelled_grid,
    labelled_panels,
    png_bytes,
    show_figures,
    show_image,
)
from app.loaders import (  # noqa: F401
    all_digits,
    epochs,
    file_key,
    generator,
    grid,
    history,
    nearest,
    page_errors,
    real_digits,
    samples,
    weight_epochs,
)
from app.selection import (  # noqa: F401
    PREFERRED_RUN,
    RUN_KEY,
    averaged_choice,
    current_run,
    default_run_name,
    describe,
    follow_training,
    require_epochs,
    run_model,
    runs_of_model,
    sidebar_jobs,
    sidebar_run_picker,
)
from app.style import CSS  # noqa: F401
from app.widgets import (  # noqa: F401
    REPORT_EPOCHS,
    digit_control,
    epoch_control,
    epoch_jumps,
    explain,
    follow_newest,
    presentation_toggle,
    presenting,
    report_epochs,
    seed_control,
    shared_value,
    stop_presenting,
)
from cgan.images import grid_columns, upscale  # noqa: F401
from cgan.limits import MAX_SEED  # noqa: F401


def evolution_gif(run, every: int = 1, scale: int = 1, frame_ms: int = 120) -> bytes:
    """Every `every`-th epoch's grid of `run`, labelled "Epoch N", as one looping GIF."""
    from app.figures import evolution_gif as gif

    return gif(run, grid, epochs(run), every=every, scale=scale, frame_ms=frame_ms)
