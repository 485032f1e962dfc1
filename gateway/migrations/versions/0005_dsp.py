"""DSP negotiations and transfers (gateway/dsp): a DSP consumer's process id and callback address.

- dsp_negotiations: new table, one row per contract a Dataspace Protocol peer requested (its
  `providerPid` is the contract id). Starts empty: no release before this one spoke DSP.
- dsp_transfers: new table, one row per transfer a DSP peer requested (its `providerPid` is
  the transfer id). Starts empty.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database made by create_all of a later main has the tables already: keep them.
    found = sa.inspect(op.get_bind())
    if not found.has_table("dsp_negotiations"):
        _create("dsp_negotiations", "contract_id", "contracts")
    if not found.has_table("dsp_transfers"):
        _create("dsp_transfers", "transfer_id", "transfers")


def _create(table: str, key: str, of: str) -> None:
    op.create_table(
        table,
        sa.Column(key, sa.String(length=40), nullable=False),
        sa.Column("consumer_pid", sa.String(length=200), nullable=False),
        sa.Column("callback_address", sa.String(length=2000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint([key], [f"{of}.id"]),
        sa.PrimaryKeyConstraint(key),
    )


def downgrade() -> None:
    op.drop_table("dsp_transfers")
    op.drop_table("dsp_negotiations")
