"""Transfer processes (gateway/transfers) and the Idempotency-Key store (gateway/core/idempotency).

- transfers: new table, one row per transfer process (DSP states); a push sink's public address
  only, never its credentials. Starts empty: no release before this one made transfers.
- idempotency_keys: new table, one row per (subject, route, key), purged 24 h after first use.

Revision ID: 0004
Revises: 0002 (in branch i9-transfers; re-pointed to 0003 when merged after it)
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database made by create_all of a later main has the tables already: keep them.
    found = sa.inspect(op.get_bind())
    if not found.has_table("transfers"):
        _create_transfers()
    if not found.has_table("idempotency_keys"):
        _create_idempotency_keys()


def _create_transfers() -> None:
    op.create_table(
        "transfers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("contract_id", sa.String(length=40), nullable=False),
        sa.Column("consumer_id", sa.String(length=40), nullable=False),
        sa.Column("provider_id", sa.String(length=40), nullable=False),
        sa.Column("product_id", sa.String(length=40), nullable=False),
        sa.Column("resource_id", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=10), nullable=False),
        sa.Column("format", sa.String(length=60), nullable=False),
        sa.Column("purpose", sa.String(length=100), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("limit", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("decision_id", sa.String(length=40), nullable=False),
        sa.Column("obligations", sa.JSON(), nullable=False),
        sa.Column("watermark", sa.String(length=80), nullable=True),
        sa.Column("reserved_rows", sa.Integer(), nullable=True),
        sa.Column("settled", sa.Boolean(), nullable=False),
        sa.Column("metered_rows", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("streaming", sa.Boolean(), nullable=False),
        sa.Column("token_generation", sa.Integer(), nullable=False),
        sa.Column("sink", sa.JSON(), nullable=True),
        sa.Column("location", sa.String(length=400), nullable=True),
        sa.Column("reason", sa.String(length=400), nullable=True),
        sa.Column("completed_seq", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_transfers_contract_id", "transfers", ["contract_id"], unique=False)


def _create_idempotency_keys() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("route", sa.String(length=60), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("response", sa.JSON(), nullable=True),
        sa.Column("object_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subject_id", "route", "key"),
    )
    op.create_index(
        "ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_expires_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_index("ix_transfers_contract_id", table_name="transfers")
    op.drop_table("transfers")
