"""Durable stores (spec/21-durability.md): the :class:`Store` protocol, the embedded
:class:`SqliteStore`, the server :class:`PostgresStore` (psycopg 3), and the durable value
format (:mod:`theus.stores.codec`)."""

from __future__ import annotations

from .base import Chain, OutboxRow, PendingRow, RunRecord, Store, VersionRecord
from .postgres import PostgresStore
from .sqlite import SqliteStore, rebuild

__all__ = [
    "Chain",
    "OutboxRow",
    "PendingRow",
    "PostgresStore",
    "RunRecord",
    "SqliteStore",
    "Store",
    "VersionRecord",
    "rebuild",
]
