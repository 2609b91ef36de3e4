"""Alembic environment of the operations book.

Migrations run on a connection handed over by `book.engine` (`config.attributes["connection"]`), inside the
transaction (and, on PostgreSQL, the advisory lock) that `engine.migrate` holds, so two processes opening a new
book at once cannot both create it. Offline mode (`alembic upgrade --sql`) is not supported.
"""

from alembic import context

from gradient_pipeline.book.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("the book's migrations run through gradient_pipeline.book.engine.migrate(engine)")
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copy
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
