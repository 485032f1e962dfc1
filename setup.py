"""The one part of the build pyproject.toml cannot say: the optional C extension.

gateway/dataplane/_jsonl.c writes JSON Lines from Arrow buffers (gateway/dataplane/encoders.py
uses it when it imports). `optional=True`: where no C compiler or Python.h is, the build warns
and installs without it, and the encoder takes its pure-Python (Arrow compute) path, which
writes the same bytes.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "gateway.dataplane._jsonl",
            ["gateway/dataplane/_jsonl.c"],
            optional=True,
            extra_compile_args=["-O2", "-std=c99"],
        )
    ]
)
