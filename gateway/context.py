"""The running gateway's parts, built once and handed to requests through FastAPI's state."""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from gateway.core.config import Settings
from gateway.core.db import session_scope
from gateway.policy.client import PolicyClient
from ledger import Signer

if TYPE_CHECKING:
    from ledger.group import GroupCommitter


@dataclass
class Gateway:
    """Settings, database, signing key and policy client of one gateway process."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    signer: Signer
    private_key: Ed25519PrivateKey
    policy: PolicyClient
    # The batching sequencer of this process's exchanges (gateway/evidence/sequencer.py),
    # made at its first use.
    sequencer: "GroupCommitter | None" = field(default=None, repr=False)


async def get_gateway(request: Request) -> Gateway:
    """Return the gateway serving this request (async: no thread hop for an attribute read)."""
    return request.app.state.gateway


async def get_session(gateway: Gateway = Depends(get_gateway)) -> AsyncIterator[Session]:
    """Yield a database session for one request; it is rolled back unless a service commits.

    Async, so that opening it costs no thread hop: a session does no I/O until it is first
    used (in the route's own thread), and is closed here once nothing holds its connection."""
    with session_scope(gateway.sessions) as session:
        yield session
