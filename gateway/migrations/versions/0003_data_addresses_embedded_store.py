"""Resources point at their data: rows move from the JSON column to the embedded store.

- embedded_datasets: new table, one Parquet file per resource (gateway/dataplane/embedded.py)
  with its row count, the file's SHA-256 and the dataset commitment of the rows as they were
  posted (gateway/resources/commitment.py, the same value the gateway stated before).
- every resource's `rows` are written there, then the column resources.rows is dropped: in the
  one transaction of the upgrade, so a failure leaves the database as it was.
- resources.data_address (the public part of an external source's address; null: embedded
  rows), resources.data_secret and registrations.data_secret (its secret part, sealed with the
  key in the state folder's keys directory; gateway/dataplane/secrets.py): new, nullable, null
  for every existing resource (they all hold posted rows).

Revision ID: 0003
Revises: 0002
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from gateway.dataplane.embedded import rows_to_parquet
from gateway.resources.commitment import dataset_commitment

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    found = sa.inspect(bind)
    # A database made by create_all of this release (stamped as legacy) has all of it already.
    if not found.has_table("embedded_datasets"):
        op.create_table(
            "embedded_datasets",
            sa.Column("resource_id", sa.String(length=40), nullable=False),
            sa.Column("rows", sa.Integer(), nullable=False),
            sa.Column("sha256", sa.String(length=64), nullable=False),
            sa.Column("commitment", sa.String(length=64), nullable=False),
            sa.Column("parquet", sa.LargeBinary(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.ForeignKeyConstraint(["resource_id"], ["resources.id"]),
            sa.PrimaryKeyConstraint("resource_id"),
        )
    columns = {c["name"] for c in found.get_columns("resources")}
    if "data_address" not in columns:
        op.add_column("resources", sa.Column("data_address", sa.JSON(), nullable=True))
    if "data_secret" not in columns:
        op.add_column("resources", sa.Column("data_secret", sa.Text(), nullable=True))
    if "data_secret" not in {c["name"] for c in found.get_columns("registrations")}:
        op.add_column("registrations", sa.Column("data_secret", sa.Text(), nullable=True))
    if "rows" in columns:
        _move_rows(bind)
        op.drop_column("resources", "rows")


def _move_rows(bind: sa.Connection) -> None:
    """Write each resource's JSON rows as its embedded dataset, one resource at a time."""
    resources = sa.table(
        "resources",
        sa.column("id", sa.String),
        sa.column("rows", sa.JSON),
        sa.column("dataset_salt", sa.String),
    )
    datasets = sa.table(
        "embedded_datasets",
        sa.column("resource_id", sa.String),
        sa.column("rows", sa.Integer),
        sa.column("sha256", sa.String),
        sa.column("commitment", sa.String),
        sa.column("parquet", sa.LargeBinary),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    ids = bind.execute(sa.select(resources.c.id).order_by(resources.c.id)).scalars().all()
    for ident in ids:
        rows, salt = bind.execute(
            sa.select(resources.c.rows, resources.c.dataset_salt).where(resources.c.id == ident)
        ).one()
        rows = rows or []
        parquet, count, sha256 = rows_to_parquet(rows)
        bind.execute(sa.delete(datasets).where(datasets.c.resource_id == ident))
        bind.execute(
            sa.insert(datasets).values(
                resource_id=ident,
                rows=count,
                sha256=sha256,
                commitment=dataset_commitment(rows, salt),
                parquet=parquet,
                created_at=now,
            )
        )
