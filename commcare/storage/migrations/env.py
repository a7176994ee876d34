"""Alembic environment: run against the connection commcare hands over (see commcare.db)."""

from alembic import context

from commcare.storage.tables import include_on, metadata

config = context.config
connection = config.attributes.get("connection")


def run() -> None:
    if connection is None:
        raise RuntimeError("commcare migrations run through commcare.db.upgrade()")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
        include_object=include_on(connection.dialect.name),
    )
    with context.begin_transaction():
        context.run_migrations()


run()
