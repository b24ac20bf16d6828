"""The toolkit's version: one place, read by the package, its metadata (pyproject.toml) and every
report and generated file that records what made it."""

__version__ = "0.1.0"
