"""robench: train and benchmark adversarially robust image classifiers."""

__version__ = "0.1.0"
