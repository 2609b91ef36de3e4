"""Failures every venue adapter raises in the same words, so venue-neutral code can tell them apart."""

from __future__ import annotations


class VenueError(Exception):
    """Base class for every failure raised by a venue adapter."""


class ActionRefusedError(VenueError):
    """The venue answered a signed action with a refusal (e.g. a dead-man time too early, a daily limit, an expired
    action). `venue_message` is the venue's own text."""

    def __init__(self, message: str, venue_message: str):
        super().__init__(message)
        self.venue_message = venue_message


class TradingConfigError(RuntimeError):
    """Missing/invalid key or address, or a network this configuration may not reach."""
