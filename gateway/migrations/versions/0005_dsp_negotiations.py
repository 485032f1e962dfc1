"""DSP negotiations (gateway/dsp): a DSP consumer's process id and callback address.

- dsp_negotiations: new table, one row per contract a Dataspace Protocol peer requested (its
  `providerPid` is the contract id). Starts empty: no release before this one spoke DSP.

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
    # A database made by create_all of a later main has the table already: keep it.
    if sa.inspect(op.get_bind()).has_table("dsp_negotiations"):
        return
    op.create_table(
        "dsp_negotiations",
        sa.Column("contract_id", sa.String(length=40), nullable=False),
        sa.Column("consumer_pid", sa.String(length=200), nullable=False),
        sa.Column("callback_address", sa.String(length=2000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["contract_id"], ["contracts.id"]),
        sa.PrimaryKeyConstraint("contract_id"),
    )


def downgrade() -> None:
    op.drop_table("dsp_negotiations")
