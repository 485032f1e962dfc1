"""Federation, consumer side (gateway/federation) and outgoing peer accounts (gateway/peers).

- peers.accounts: new column, {id of one of our participants: its id at the peer}: whom this
  gateway's own peer tokens name when it acts at the peer for that participant. Existing peers
  get {} (this gateway acts for nobody there until re-registered).
- federation_processes: new table, one row per DSP negotiation or transfer this gateway runs as
  consumer at a peer for one of its participants. Starts empty.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database made by create_all of a later main has these already: keep them.
    found = sa.inspect(op.get_bind())
    if "accounts" not in {c["name"] for c in found.get_columns("peers")}:
        with op.batch_alter_table("peers") as batch:
            batch.add_column(sa.Column("accounts", sa.JSON(), nullable=True))
        op.execute(sa.text("UPDATE peers SET accounts = '{}'"))
        with op.batch_alter_table("peers") as batch:
            batch.alter_column("accounts", existing_type=sa.JSON(), nullable=False)
    if not found.has_table("federation_processes"):
        op.create_table(
            "federation_processes",
            sa.Column("consumer_pid", sa.String(length=64), nullable=False),
            sa.Column("kind", sa.String(length=20), nullable=False),
            sa.Column("peer_id", sa.String(length=500), nullable=False),
            sa.Column("participant_id", sa.String(length=64), nullable=False),
            sa.Column("remote_participant_id", sa.String(length=64), nullable=False),
            sa.Column("provider_pid", sa.String(length=200), nullable=True),
            sa.Column("state", sa.String(length=20), nullable=False),
            sa.Column("offer_id", sa.String(length=200), nullable=True),
            sa.Column("dataset_id", sa.String(length=200), nullable=True),
            sa.Column("purpose", sa.String(length=200), nullable=True),
            sa.Column("negotiation_pid", sa.String(length=64), nullable=True),
            sa.Column("document", sa.JSON(), nullable=True),
            sa.Column("document_hash", sa.String(length=100), nullable=True),
            sa.Column("provider_signature", sa.String(length=4000), nullable=True),
            sa.Column("endpoint", sa.String(length=2000), nullable=True),
            sa.Column("token", sa.String(length=4000), nullable=True),
            sa.Column("expires_at", sa.String(length=40), nullable=True),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("consumer_pid"),
        )


def downgrade() -> None:
    op.drop_table("federation_processes")
    with op.batch_alter_table("peers") as batch:
        batch.drop_column("accounts")
