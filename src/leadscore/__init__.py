"""leadscore: calibrated lead-conversion probabilities with plain-language reasons."""

__version__ = "0.1.0"
