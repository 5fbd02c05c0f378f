"""Fixtures for integration tests on real infrastructure (started by scripts/test)."""
from __future__ import annotations

import os
import uuid

import pytest

# -- PostgreSQL ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    """$DATABASE_URL, or else an embedded server (pgserver) in a temp folder for local runs."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    from services.store import embedded_pg

    data_dir = tmp_path_factory.mktemp("pg") / "data"
    yield embedded_pg.start(data_dir)
    embedded_pg.stop(data_dir)


@pytest.fixture
async def pg_schema(database_url):
    """A schema name unique to this test; the schema (if created) is dropped afterwards."""
    import asyncpg

    schema = f"test_{uuid.uuid4().hex[:12]}"
    yield schema
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


@pytest.fixture
async def pg_store(database_url, pg_schema):
    """A PostgresTaskStore on empty tables: its own schema, migrated from scratch."""
    from services.store.postgres import PostgresTaskStore

    store = await PostgresTaskStore.connect(database_url, schema=pg_schema)
    yield store
    await store.close()
