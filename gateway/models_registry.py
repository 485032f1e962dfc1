"""Imports every table module so that `Base.metadata` knows all tables."""

from gateway.auth import models as _auth  # noqa: F401
from gateway.authorisations import models as _authorisations  # noqa: F401
from gateway.compute import models as _compute  # noqa: F401
from gateway.core import idempotency as _idempotency  # noqa: F401
from gateway.dsp import models as _dsp  # noqa: F401
from gateway.exchanges import models as _exchanges  # noqa: F401
from gateway.federation import models as _federation  # noqa: F401
from gateway.negotiation import models as _negotiation  # noqa: F401
from gateway.participants import models as _participants  # noqa: F401
from gateway.peers import models as _peers  # noqa: F401
from gateway.products import models as _products  # noqa: F401
from gateway.resources import models as _resources  # noqa: F401
from gateway.settlement import models as _settlement  # noqa: F401
from gateway.transfers import models as _transfers  # noqa: F401
