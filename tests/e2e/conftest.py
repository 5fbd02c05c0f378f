"""PostgreSQL for the end-to-end tests: the same fixtures as the integration tests (the server
scripts/test started, or an embedded one for a local run), each test in a schema of its own."""
from tests.integration.conftest import database_url, pg_schema, pg_store  # noqa: F401
