"""The package version; csrc/build.py and csrc/build_seccomp.py compile the same
string into the extensions."""

__version__ = "0.1.0"
