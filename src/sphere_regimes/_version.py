"""The package version, read by ``pyproject.toml`` (setuptools ``attr``) and by the store without importing the package."""

__version__ = "0.1.0"
