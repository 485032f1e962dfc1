"""Every schema change since release ac7d7e6: the dataset commitment's salt on resources and
the compute privacy budgets.

- resources.dataset_salt (non-null): each existing resource gets its own fresh random 256-bit
  salt (gateway.resources.commitment.new_salt), so its dataset_commitment can be computed from
  now on. Certificates issued before the upgrade (registrations.certificate and the ledger's
  resource entries) keep the plain dataset_hash (SHA-256 of the rows) they were signed with:
  they stay valid evidence of the rows at that time and are never rewritten; the keyed
  commitment applies to what the gateway states after the upgrade.
- privacy_budgets: new table (ε spent per contract and per consumer × resource); it starts
  empty, which is right, since release ac7d7e6 released no differentially private answer.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from gateway.resources.commitment import new_salt

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    # A database made by create_all of a main between ac7d7e6 and the first migration may have
    # either change already: keep what is there.
    found = sa.inspect(bind)
    if not found.has_table("privacy_budgets"):
        _create_privacy_budgets()
    if "dataset_salt" not in {c["name"] for c in found.get_columns("resources")}:
        _add_dataset_salt(bind)


def _create_privacy_budgets() -> None:
    op.create_table(
        "privacy_budgets",
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("spent_micro", sa.BigInteger(), nullable=False),
        sa.Column("releases", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key"),
    )


def _add_dataset_salt(bind: sa.Connection) -> None:
    if bind.dialect.name == "sqlite":
        # SQLite adds a NOT NULL column only with a default, and dropping the default again
        # would mean copying the table (which foreign keys pointing at resources forbid inside
        # the transaction); the gateway always writes the salt, so the '' default is never used.
        op.add_column(
            "resources",
            sa.Column("dataset_salt", sa.String(length=64), nullable=False, server_default=""),
        )
    else:
        op.add_column("resources", sa.Column("dataset_salt", sa.String(length=64), nullable=True))
    resources = sa.table("resources", sa.column("id", sa.String), sa.column("dataset_salt"))
    ids = bind.execute(sa.select(resources.c.id)).scalars().all()
    for ident in ids:  # one fresh salt each: a shared salt would link the commitments
        bind.execute(
            sa.update(resources).where(resources.c.id == ident).values(dataset_salt=new_salt())
        )
    if bind.dialect.name != "sqlite":
        op.alter_column("resources", "dataset_salt", existing_type=sa.String(64), nullable=False)
