"""The Alembic environment of the gateway's schema, run programmatically by gateway.migrations.

It migrates on the connection it is handed (config.attributes["connection"]), inside the
caller's transaction, and only the gateway's own tables: the ledger's tables and triggers are
the ledger's (ledger.store.create_schema, idempotent, run after the migrations).
"""

from alembic import context

from gateway.migrations import include_object, target_metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=target_metadata(),
    include_object=include_object,
    render_as_batch=True,  # SQLite alters tables by copying them: autogenerate batches
    compare_type=True,
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
