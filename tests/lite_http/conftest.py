"""Fixtures for cnosdb-lite's HTTP layer: a real Engine served on a real socket (port 0) per module.

This directory is a package so that its conftest and helpers never shadow `tests/conftest.py`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cnosdb_lite.engine import Engine

from .lite_client import BackgroundServer, Client


def _serve(tmp_path_factory: pytest.TempPathFactory, quirks: bool | None = None,
           **options) -> Iterator[BackgroundServer]:
    engine = Engine(str(tmp_path_factory.mktemp("cnosdb-lite")), quirks=quirks)
    server = BackgroundServer(engine, **options)
    try:
        yield server
    finally:
        server.stop()
        engine.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    """Auth disabled, default limits."""
    yield from _serve(tmp_path_factory)


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    """Quirks mode off, whatever the environment says."""
    yield from _serve(tmp_path_factory, quirks=False)


@pytest.fixture(scope="module")
def quirky_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    """Quirks mode on: answers as CnosDB does, defects included."""
    yield from _serve(tmp_path_factory, quirks=True)


@pytest.fixture(scope="module")
def client(server: BackgroundServer) -> Client:
    return server.client


@pytest.fixture(scope="module")
def auth_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """Auth enabled for user `alice` with password `s3cret`."""
    for running in _serve(tmp_path_factory, user="alice", password="s3cret", auth_enabled=True):
        yield running.client


@pytest.fixture(scope="module")
def small_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """Body limits lowered to 1 KiB (SQL) and 2 KiB (writes) so 413s are cheap to provoke."""
    for running in _serve(tmp_path_factory, sql_body_limit=1024, write_body_limit=2048):
        yield running.client
