"""The trusted data-space exchange and authorised-operations gateway."""

import os

__version__ = "0.1.0"

# Arrow allocates from the system allocator unless the operator chose a pool: set before
# pyarrow makes its default pool, so that every allocation, the first included, uses it
# (why: gateway/dataplane/stream.py, _use_a_returning_allocator).
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
