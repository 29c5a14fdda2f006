from setuptools import setup

setup(cffi_modules=["csrc/build.py:ffi", "csrc/build_seccomp.py:ffi"])
