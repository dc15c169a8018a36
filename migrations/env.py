"""Alembic environment: the schema is `knowledge.schema.metadata`; the URL comes from the
config set by `knowledge.migrate` (never from an ini file)."""

from alembic import context
from sqlalchemy import create_engine, pool

from knowledge.schema import metadata, owned_by_alembic

config = context.config


def run_migrations() -> None:
    url = config.get_main_option("sqlalchemy.url")
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run(connectable)
        return
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_object=owned_by_alembic,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
