"""Settlement (gateway/settlement): closed periods and their invoices and statements.

- settlement_periods: new table, one row per closed month (its `settlement.closed` entry, the
  last entry it could settle, its summary). Starts empty.
- settlement_documents: new table, the invoices (per contract) and signed statements (per
  party) of the closed periods, with who may read each. Starts empty.
- settlement_vouchers: new table, the data vouchers (数据券) issued, with their balance after
  the closed periods' redemptions. Starts empty.

The offers' usage prices live in `offers.terms` (JSON): no column changes.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database made by create_all of a later main has the tables already: keep them.
    found = sa.inspect(op.get_bind())
    if not found.has_table("settlement_periods"):
        op.create_table(
            "settlement_periods",
            sa.Column("period", sa.String(length=7), nullable=False),
            sa.Column("through_seq", sa.BigInteger(), nullable=False),
            sa.Column("ledger_seq", sa.BigInteger(), nullable=False),
            sa.Column("summary", sa.JSON(), nullable=False),
            sa.Column("closed_by", sa.String(length=40), nullable=False),
            sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("period"),
        )
    if not found.has_table("settlement_documents"):
        op.create_table(
            "settlement_documents",
            sa.Column("id", sa.String(length=120), nullable=False),
            sa.Column("period", sa.String(length=7), nullable=False),
            sa.Column("kind", sa.String(length=20), nullable=False),
            sa.Column("readers", sa.JSON(), nullable=False),
            sa.Column("body", sa.JSON(), nullable=False),
            sa.Column("ledger_seq", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index(
            "ix_settlement_documents_period", "settlement_documents", ["period", "kind"]
        )
    if not found.has_table("settlement_vouchers"):
        op.create_table(
            "settlement_vouchers",
            sa.Column("id", sa.String(length=40), nullable=False),
            sa.Column("issuer_id", sa.String(length=40), nullable=False),
            sa.Column("enterprise_id", sa.String(length=40), nullable=False),
            sa.Column("terms", sa.JSON(), nullable=False),
            sa.Column("balance_fen", sa.BigInteger(), nullable=False),
            sa.Column("status", sa.String(length=20), nullable=False),
            sa.Column("ledger_seq", sa.BigInteger(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index(
            "ix_settlement_vouchers_enterprise", "settlement_vouchers", ["enterprise_id"]
        )


def downgrade() -> None:
    op.drop_index("ix_settlement_vouchers_enterprise", table_name="settlement_vouchers")
    op.drop_table("settlement_vouchers")
    op.drop_index("ix_settlement_documents_period", table_name="settlement_documents")
    op.drop_table("settlement_documents")
    op.drop_table("settlement_periods")
