"""`python -m ledger`: the offline verifier (see ledger.cli)."""

import sys

from ledger.cli import main

sys.exit(main())
