"""Venue adapters: one package per venue, each implementing `gradient_pipeline.venue.ExecutionVenue`.

- `hyperliquid/`: the Hyperliquid adapter (SDK `Info`/`Exchange`, weight limiter, payload parsing, trading client).

Nothing outside an adapter package (and the local exchange, which imitates Hyperliquid) imports the SDK or parses
a venue payload; everything else speaks the venue-neutral model in `gradient_pipeline/venue/`.
"""
