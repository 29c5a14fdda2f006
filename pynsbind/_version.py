"""The package version; csrc/build.py compiles the same string into the extension."""

__version__ = "0.1.0"
