"""Peers that are DSP connectors but no dsgw gateway (specs/dsp.md, *Authentication*).

- peers.kind: new column, "dsgw" (a dsgw gateway: signed peer tokens, as before) or "dsp" (a
  plain DSP connector: no keys; its callbacks on our processes carry the per-process callback
  key our request gave it). Existing rows are dsgw peers.
- federation_processes.callback_key_hash: new column, the SHA-256 (hex) of the callback key
  given to a "dsp" peer for that process (never the key itself); null for dsgw peers.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _columns(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade() -> None:
    # A database made by create_all of a later main has the columns already: keep them.
    if "kind" not in _columns("peers"):
        with op.batch_alter_table("peers") as batch:
            batch.add_column(
                sa.Column("kind", sa.String(length=10), nullable=False, server_default="dsgw")
            )
    if "callback_key_hash" not in _columns("federation_processes"):
        with op.batch_alter_table("federation_processes") as batch:
            batch.add_column(sa.Column("callback_key_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("federation_processes") as batch:
        batch.drop_column("callback_key_hash")
    with op.batch_alter_table("peers") as batch:
        batch.drop_column("kind")
