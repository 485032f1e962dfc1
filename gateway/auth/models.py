"""Tables and shapes of authentication: used client-assertion ids and issued tokens."""

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gateway.core.db import Base


class UsedAssertion(Base):
    """A client assertion's `jti`, kept until it expires so that it cannot be replayed."""

    __tablename__ = "used_assertions"
    __table_args__ = (UniqueConstraint("client_id", "jti"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(40))
    jti: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime]


class TokenResponse(BaseModel):
    access_token: str
    token_type: str
    expires_in: int
    scope: str | None = None
