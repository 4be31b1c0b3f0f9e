"""redis-server and PostgreSQL (bench/servers.py) started once per test session, for the tests
of several replicas sharing state. Each test gets a fresh database and an emptied Redis. A
missing server fails the test with its install command (`.ci/run` installs both)."""

from __future__ import annotations

import pytest

from bench.servers import Missing, Postgres, RedisServer


def _started(cls):
    try:
        server = cls()
        server.start()
    except Missing as e:
        pytest.fail(str(e), pytrace=False)
    return server


@pytest.fixture(scope="session")
def redis_server():
    server = _started(RedisServer)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server():
    server = _started(Postgres)
    yield server
    server.remove()


@pytest.fixture
def redis_url(redis_server):
    if redis_server.proc.poll() is not None:
        redis_server.start()        # a test stopped it
    redis_server.flush()
    return redis_server.url


@pytest.fixture
def postgres_url(postgres_server):
    if postgres_server.proc.poll() is not None:
        postgres_server.start()
    return postgres_server.new_database()
