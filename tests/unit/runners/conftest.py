import pytest

from tests.unit.runner_drivers import close_all


@pytest.fixture(autouse=True)
def _close_stream_runners():
    """Every Kafka driver a test started stops when the test ends (its loop closed)."""
    yield
    close_all()
