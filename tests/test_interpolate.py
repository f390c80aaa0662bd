"""cgan.interpolate: noise walks, blended labels and the strips they draw, on small real runs."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from cgan import interpolate
from cgan.sampling import generate, noise


@pytest.fixture(params=["cgan", "cdcgan"])
def generator(request, cgan_run, cdcgan_run):
    run = cgan_run if request.param == "cgan" else cdcgan_run
    return run.load_generator()


def test_label_vectors_reproduce_the_models_own_forward_pass(generator):
    # A one-hot label vector must draw exactly what the model draws from the integer label.
    z = noise(5, 12)
    labels = torch.arange(12) % 10
    mine = interpolate.generate_from_label_vectors(generator, z, torch.eye(10)[labels])
    assert np.array_equal(mine, generate(generator, labels, z))


def test_linear_walk_ends_on_the_two_seeds_and_is_straight():
    walk = interpolate.noise_walk(3, 4, 5, "linear")
    a, b = noise(3, 1)[0], noise(4, 1)[0]
    assert torch.equal(walk[0], a) and torch.allclose(walk[-1], b)
    assert torch.allclose(walk[2], (a + b) / 2)
    # The straight line's middle is shorter than either end (~1/sqrt(2) for independent noise).
    assert walk[2].norm() < 0.8 * min(a.norm(), b.norm())


def test_spherical_walk_keeps_the_length_and_divides_the_angle_evenly():
    walk = interpolate.noise_walk(3, 4, 9, "spherical")
    a, b = noise(3, 1)[0], noise(4, 1)[0]
    assert torch.allclose(walk[0], a, atol=1e-5) and torch.allclose(walk[-1], b, atol=1e-5)
    norms = walk.norm(dim=1)
    assert norms.min() > 0.95 * min(a.norm(), b.norm())
    unit = walk / norms[:, None]
    angles = torch.arccos((unit[:-1] * unit[1:]).sum(1).clamp(-1, 1))
    assert torch.allclose(angles, angles.mean().expand_as(angles), rtol=1e-3)
    # The same seed twice: every step is that seed's vector.
    same = interpolate.noise_walk(3, 3, 4, "spherical")
    assert torch.allclose(same, a.expand_as(same))


def test_blended_labels_move_weight_from_one_digit_to_the_other():
    vectors = interpolate.label_walk(2, 7, 5)
    assert vectors.shape == (5, 10)
    assert torch.allclose(vectors.sum(1), torch.ones(5))
    assert vectors[:, 2].tolist() == [1.0, 0.75, 0.5, 0.25, 0.0]
    assert vectors[:, 7].tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert vectors[:, [0, 1, 3, 4, 5, 6, 8, 9]].abs().sum() == 0


def test_digit_morph_starts_and_ends_on_the_plain_digits(generator):
    strip = interpolate.digit_morph(generator, 1, 8, seed=11, steps=6)
    assert strip.shape == (6, 28, 28) and strip.dtype == np.uint8
    z = noise(11, 1).repeat(2, 1)
    ends = generate(generator, [1, 8], z)
    assert np.array_equal(strip[0], ends[0]) and np.array_equal(strip[-1], ends[1])
    # In between the image changes step by step (the label blend reaches the generator).
    assert all(not np.array_equal(strip[k], strip[k + 1]) for k in range(5))


def test_handwriting_morph_starts_and_ends_on_the_two_seeds(generator):
    for path in interpolate.PATHS:
        strip = interpolate.handwriting_morph(generator, 4, 21, 22, steps=7, path=path)
        assert strip.shape == (7, 28, 28)
        ends = generate(generator, [4, 4], torch.cat([noise(21, 1), noise(22, 1)]))
        assert np.array_equal(strip[0], ends[0])
        assert np.abs(strip[-1].astype(int) - ends[1]).max() <= 1  # slerp's end: float rounding
    linear = interpolate.handwriting_morph(generator, 4, 21, 22, steps=7, path="linear")
    spherical = interpolate.handwriting_morph(generator, 4, 21, 22, steps=7, path="spherical")
    assert not np.array_equal(linear[3], spherical[3])


def test_bad_arguments_are_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="steps must be 2-32"):
        interpolate.fractions(1)
    with pytest.raises(ValueError, match="path must be one of linear, spherical"):
        interpolate.noise_walk(1, 2, 4, "cubic")
    with pytest.raises(ValueError, match="digits are 0-9"):
        interpolate.label_walk(0, 10, 4)


def test_gif_has_every_step_enlarged_crisply_and_bounces():
    images = np.stack([np.full((28, 28), 40 * k, np.uint8) for k in range(4)])
    images[:, 0, 0] = 255  # one bright pixel per frame: nearest neighbour keeps it a block
    gif = Image.open(io.BytesIO(interpolate.animation_gif(images, scale=5)))
    assert gif.size == (140, 140)
    frames = []
    for k in range(gif.n_frames):
        gif.seek(k)
        frames.append(np.asarray(gif.convert("L")))
    assert len(frames) == 6  # 0 1 2 3 2 1, then it loops
    assert [int(f[20, 20]) for f in frames] == [0, 40, 80, 120, 80, 40]
    assert (frames[1][:5, :5] == 255).all() and frames[1][5, 5] == 40


# ---------------------------------------------------------------------------------------------
# The Interpolation page (AppTest)

from tests.test_app import app, images, no_failure  # noqa: E402


def strip_tiles(image: np.ndarray, steps: int) -> np.ndarray:
    """The steps of a strip made by common.fitted_mosaic, back at 28x28."""
    scale = image.shape[1] // (steps * 28 + (steps - 1) * 2)
    assert image.shape[1] == (steps * 28 + (steps - 1) * 2) * scale
    small = image[::scale, ::scale]
    return np.stack([small[:28, k * 30 : k * 30 + 28] for k in range(steps)])


def test_page_morphs_the_handwriting_of_the_chosen_epoch(checkpoints):
    from cgan.runs import Run

    run = Run(checkpoints / "cgan-report")
    at = app("interpolate")
    no_failure(at)
    assert at.title[0].value == "Interpolation"
    assert at.select_slider(key="interpolate_epoch").value == 4
    at.select_slider(key="interpolate_epoch").set_value(2).run()
    at.segmented_control(key="interpolate_digit").set_value(5).run()
    at.number_input(key="interpolate_seed_a").set_value(10).run()
    at.number_input(key="interpolate_seed_b").set_value(20).run()
    at.slider(key="interpolate_steps").set_value(6).run()
    for path in interpolate.PATHS:
        at.segmented_control(key="interpolate_path").set_value(path).run()
        no_failure(at)
        shown = images(at)[0]
        caption, strip = shown.captions[0], shown.pixels
        assert caption.startswith("Digit 5, seed 10 → 20")
        expected = interpolate.handwriting_morph(run.load_generator(2), 5, 10, 20, 6, path)
        assert np.array_equal(strip_tiles(strip, 6), expected)
        assert strip.shape[1] >= 6 * 28 * 4, "the strip is shown large (crisp 4x or more)"
    labels = [d.label for d in at.get("download_button")]
    assert labels == ["Download PNG", "Download GIF"]


def test_page_morphs_one_digit_into_another(checkpoints):
    from cgan.runs import Run

    at = app("interpolate")
    at.sidebar.selectbox(key="run").set_value("cdcgan-small").run()
    at.segmented_control(key="interpolate_mode").set_value("Digit").run()
    at.segmented_control(key="interpolate_from").set_value(1).run()
    at.segmented_control(key="interpolate_to").set_value(7).run()
    at.number_input(key="interpolate_seed").set_value(99).run()
    no_failure(at)
    shown = images(at)[0]
    caption, strip = shown.captions[0], shown.pixels
    assert caption == "Digit 1 → 7, seed 99, epoch 2"
    run = Run(checkpoints / "cdcgan-small")
    expected = interpolate.digit_morph(run.load_generator(2), 1, 7, 99, 7)
    assert np.array_equal(strip_tiles(strip, 7), expected)


def test_page_gives_ds_verdict_on_every_step_when_the_epoch_has_d(checkpoints):
    from cgan import verdict
    from cgan.runs import Run, save_tensors_atomic

    run = Run(checkpoints / "cgan-report")
    had = run.discriminator_path(4).is_file()
    if not had:  # a trainer that does not keep D yet: the run's resume state holds epoch 4's
        save_tensors_atomic(run.discriminator_path(4), run.load_resume_state()["discriminator"])
    try:
        at = app("interpolate")
        at.segmented_control(key="interpolate_digit").set_value(2).run()
        no_failure(at)
        strip = interpolate.handwriting_morph(run.load_generator(4), 2, 42, 43, 7, "spherical")
        expected = verdict.verdict(run.load_discriminator(4), strip, [2] * 7)
        line = "**D: real 2?** " + " · ".join(f"{p:.0%}" for p in expected)
        assert line in [m.value for m in at.markdown]
    finally:
        if not had:
            run.discriminator_path(4).unlink()
