"""Conditional GANs on MNIST: data, models, training, sampling, metrics and the run format."""
