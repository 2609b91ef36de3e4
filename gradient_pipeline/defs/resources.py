"""Resources shared by every domain: the validated configuration, the DuckDB file it names (analytics) and the
operations book beside it (or at `GRADIENT_BOOK_URL`); and the execution venue the trading jobs use."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from functools import cached_property

import dagster as dg
import duckdb
from sqlalchemy.engine import Connection

from gradient_pipeline.config import GradientConfig, load_config
from gradient_pipeline.storage.db import connect


class GradientResource(dg.ConfigurableResource):
    """The pipeline's configuration file (`$GRADIENT_CONFIG`, default `config/gradient_live.json`) and its DuckDB file.

    `duckdb_path` overrides the file's `duckdb_path` (tests and the demo point it at their own file).
    """

    config_path: str = ""
    duckdb_path: str = ""

    @cached_property
    def config(self) -> GradientConfig:
        return load_config(self.config_path or None)

    @property
    def db_path(self) -> str:
        return self.duckdb_path or os.environ.get("GRADIENT_DUCKDB_PATH") or str(self.config.resolved_duckdb_path)

    @contextlib.contextmanager
    def db(self, read_only: bool = False, wait_s: float = 60.0) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived connection; waits up to `wait_s` for another process's lock."""
        with connect(self.db_path, read_only=read_only, wait_s=wait_s) as conn:
            yield conn

    @contextlib.contextmanager
    def book(self) -> Iterator[Connection]:
        """A short-lived connection to the operations book (ledger and safety state; see gradient_pipeline/book).
        Never waits for a rebalance or a backfill: the book is not the DuckDB file."""
        from gradient_pipeline import book

        with book.connect(self.db_path) as conn:
            yield conn


class VenueResource(dg.ConfigurableResource):
    """The execution venue (`venue.ExecutionVenue`) the trading jobs use, built by the one factory
    (`venue.registry.open_venue`, which the CLI paths call too): the configuration's network, one timeout, the
    shared per-IP budget, the signing key from the environment when the mode sends orders."""

    venue: str = "hyperliquid"

    def open(self, cfg: GradientConfig, signer: bool | None = None):
        from gradient_pipeline.venue.registry import open_venue

        return open_venue(cfg, signer=signer, venue=self.venue)


RESOURCES = {"gradient": GradientResource()}
