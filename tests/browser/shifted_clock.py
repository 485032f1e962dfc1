"""Run `dsgw` (argv as for `python -m gateway.cli`) with its clock moved back by
DSGW_TEST_CLOCK_SHIFT seconds, ticking: freezegun moves every clock of the process (the
gateway's `clock.now`, pyjwt's, the ledger's), so what it records happened "then".

The portal's statement test needs a closed month with usage in it; the demo runs in the
previous month under this launcher, then a normal `dsgw serve` closes that month.
"""

import os
import sys
from datetime import UTC, datetime, timedelta

# Imported before the clock moves: a class made from datetime.date while freezegun has
# replaced it (pydantic.v1's, which FastAPI imports lazily) cannot be built.
import hypercorn.asyncio  # noqa: F401
import pydantic.v1  # noqa: F401
from freezegun import freeze_time

import gateway.app  # noqa: F401
import gateway.demo  # noqa: F401
from gateway.cli import main

if __name__ == "__main__":
    then = datetime.now(UTC) - timedelta(seconds=float(os.environ["DSGW_TEST_CLOCK_SHIFT"]))
    with freeze_time(then, tick=True, real_asyncio=True):
        sys.exit(main())
