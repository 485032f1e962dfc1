"""Peer gateways (gateway/peers): the peer registry and the peer tokens already used.

- peers: new table, one row per peer gateway the platform admin registered (its issuer URL, DSP
  base URL, Ed25519 JWKS, the participants whose home it is, active|suspended). Starts empty.
- used_peer_tokens: new table, the `jti` of each accepted peer token, kept until the token
  expires (replay refused). Starts empty.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database made by create_all of a later main has the tables already: keep them.
    found = sa.inspect(op.get_bind())
    if not found.has_table("peers"):
        op.create_table(
            "peers",
            sa.Column("id", sa.String(length=500), nullable=False),
            sa.Column("dsp_url", sa.String(length=2000), nullable=False),
            sa.Column("jwks", sa.JSON(), nullable=False),
            sa.Column("jwks_url", sa.String(length=2000), nullable=True),
            sa.Column("participants", sa.JSON(), nullable=False),
            sa.Column("status", sa.String(length=20), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
    if not found.has_table("used_peer_tokens"):
        op.create_table(
            "used_peer_tokens",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("peer_id", sa.String(length=500), nullable=False),
            sa.Column("jti", sa.String(length=200), nullable=False),
            sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("peer_id", "jti"),
        )


def downgrade() -> None:
    op.drop_table("used_peer_tokens")
    op.drop_table("peers")
