"""The one part of the build pyproject.toml cannot say: the optional C extensions.

gateway/dataplane/_jsonl.c writes JSON Lines from Arrow buffers (gateway/dataplane/encoders.py
uses it when it imports); gateway/dataplane/_pgcopy.c drains a PostgreSQL COPY from libpq
(gateway/dataplane/sql.py; it calls the libpq psycopg loaded, so it needs no libpq headers);
gateway/dataplane/_masks.c masks a string column (gateway/dataplane/obligations.py).
`optional=True`: where no C compiler or Python.h is, the build warns and installs without them,
and the encoder, the COPY reader and the masks take their pure-Python (Arrow compute) paths, which
give the same bytes and rows.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "gateway.dataplane._jsonl",
            ["gateway/dataplane/_jsonl.c"],
            optional=True,
            extra_compile_args=["-O2", "-std=c99"],
        ),
        Extension(
            "gateway.dataplane._pgcopy",
            ["gateway/dataplane/_pgcopy.c"],
            optional=True,
            extra_compile_args=["-O2", "-std=c99"],
        ),
        Extension(
            "gateway.dataplane._masks",
            ["gateway/dataplane/_masks.c"],
            optional=True,
            extra_compile_args=["-O2", "-std=c99"],
        ),
    ]
)
