"""Read the SDK's recorded vcrpy cassettes (real mainnet `/info` responses) as (request body, response JSON) pairs."""

from __future__ import annotations

import json
from pathlib import Path

import yaml


def interactions(cassette_dir: Path, name: str) -> list[tuple[dict, object]]:
    data = yaml.safe_load((cassette_dir / name).read_text())
    out = []
    for it in data["interactions"]:
        assert it["response"]["status"]["code"] == 200, f"{name}: recorded a non-200 response"
        out.append((json.loads(it["request"]["body"]), json.loads(it["response"]["body"]["string"])))
    return out


def response(cassette_dir: Path, name: str, info_type: str) -> object:
    """The recorded response to the (only) request of `info_type` in cassette `name`."""
    found = [resp for body, resp in interactions(cassette_dir, name) if body.get("type") == info_type]
    assert len(found) == 1, f"{name}: expected one {info_type} interaction, found {len(found)}"
    return found[0]
