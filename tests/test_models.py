"""The model registry and the report's networks: sizes, shapes, conditioning and initialisation."""

from __future__ import annotations

import math

import pytest
import torch

from cgan.models import MODELS, count_parameters, get_model


def test_registry_holds_both_models():
    assert sorted(MODELS) == ["cdcgan", "cgan"]
    assert get_model("cgan").name == "cgan"
    assert get_model("cdcgan").name == "cdcgan"


def test_unknown_model_names_the_choices():
    with pytest.raises(ValueError) as info:
        get_model("nope")
    message = str(info.value)
    assert "'nope'" in message
    assert "cdcgan" in message and "cgan" in message
    assert "\n" not in message


def test_cgan_parameter_counts_match_the_report():
    family = get_model("cgan")
    # Generator: Linear(110, 128) + Linear(128, 784), both with bias.
    assert count_parameters(family.generator()) == 110 * 128 + 128 + 128 * 784 + 784 == 115_344
    # Discriminator: Linear(794, 128) with bias + Linear(128, 1): 794*128 + 128 + 128 + 1.
    # A figure of 101,761 seen elsewhere leaves out the hidden layer's 128 biases.
    assert count_parameters(family.discriminator()) == 794 * 128 + 128 + 128 + 1 == 101_889


def test_cgan_training_defaults_are_the_reports():
    defaults = get_model("cgan").defaults
    assert (defaults.batch_size, defaults.lr, defaults.epochs) == (150, 1e-3, 200)
    assert (defaults.beta1, defaults.beta2) == (0.5, 0.999)


@pytest.mark.parametrize(
    "model,width", [("cgan", 1.0), ("cdcgan", 1.0), ("cdcgan", 0.25)], ids=["cgan", "cdcgan-1", "cdcgan-0.25"]
)
def test_output_shapes_and_ranges(model, width):
    torch.manual_seed(0)
    family = get_model(model)
    generator, discriminator = family.generator(width), family.discriminator(width)
    batch = 6
    z = torch.randn(batch, 100)
    labels = torch.arange(batch) % 10
    images = generator(z, labels)
    assert images.shape == (batch, 1, 28, 28)
    assert images.dtype == torch.float32
    assert images.min().item() >= -1.0 and images.max().item() <= 1.0
    assert images.std().item() > 0.0  # not a constant image
    logits = discriminator(images.detach(), labels)
    assert logits.shape == (batch,)
    assert torch.isfinite(logits).all()
    # The discriminator also accepts flat (B, 784) images, as a data loader may give them.
    assert discriminator(images.detach().reshape(batch, 784), labels).shape == (batch,)


def test_cdcgan_width_scales_the_channels():
    family = get_model("cdcgan")
    full = count_parameters(family.generator(1.0)) + count_parameters(family.discriminator(1.0))
    quarter = count_parameters(family.generator(0.25)) + count_parameters(family.discriminator(0.25))
    # Layers between two scaled channel counts shrink 16x, those fed by the 110-channel code or
    # the 11 input planes 4x: together well over 4x.
    assert quarter < full / 5
    first = family.generator(0.25).net[0]
    assert first.out_channels == 64


@pytest.mark.parametrize("model,width", [("cgan", 1.0), ("cdcgan", 0.25)])
def test_generator_and_discriminator_use_the_label(model, width):
    torch.manual_seed(3)
    family = get_model(model)
    generator, discriminator = family.generator(width).eval(), family.discriminator(width).eval()
    z = torch.randn(1, 100).repeat(10, 1)  # one noise vector, ten labels
    labels = torch.arange(10)
    with torch.no_grad():
        images = generator(z, labels)
        three, seven = images[3], images[7]
        assert (three - seven).abs().mean().item() > 1e-3
        # Every pair of digits differs, not just one.
        flat = images.reshape(10, -1)
        distances = torch.cdist(flat, flat)
        assert (distances + torch.eye(10)).min().item() > 1e-3
        # Same image, different labels -> different logits.
        same = images[:1].repeat(10, 1, 1, 1)
        logits = discriminator(same, labels)
        assert logits.unique().numel() == 10


def test_cgan_uses_xavier_init_with_zero_biases():
    torch.manual_seed(0)
    family = get_model("cgan")
    for network in (family.generator(), family.discriminator()):
        linears = [m for m in network.modules() if isinstance(m, torch.nn.Linear)]
        assert len(linears) == 2
        for layer in linears:
            assert torch.count_nonzero(layer.bias).item() == 0
            fan_out, fan_in = layer.weight.shape
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            weight = layer.weight.detach()
            assert weight.abs().max().item() <= bound
            if weight.numel() >= 1000:
                # Uniform(-b, b): reaches close to the bound, standard deviation b / sqrt(3).
                # PyTorch's default init (bound 1/sqrt(fan_in)) fails both for these shapes.
                assert weight.abs().max().item() > 0.95 * bound
                assert weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)


def test_cgan_init_depends_only_on_the_seed():
    family = get_model("cgan")
    torch.manual_seed(5)
    first = family.generator().state_dict()
    torch.manual_seed(5)
    second = family.generator().state_dict()
    torch.manual_seed(6)
    other = family.generator().state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not torch.equal(first["hidden.weight"], other["hidden.weight"])
