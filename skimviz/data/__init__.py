"""Datasets: bundled MNIST digits and loaders for the files in ``../shared/data``."""
