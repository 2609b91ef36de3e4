"""Thin Dagster layer: one folder per domain, each exposing `defs` (a `dagster.Definitions`)."""
