"""leadscore: calibrated lead-conversion probabilities with plain-language reasons."""

# the one place the version is set; pyproject.toml reads it (`[tool.setuptools.dynamic]`)
__version__ = "0.1.0"
