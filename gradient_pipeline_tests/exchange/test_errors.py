"""Classification of raw SDK/requests failures into retry policies, and secret-free request descriptions."""

from __future__ import annotations

import requests
from hyperliquid.utils.error import ClientError, ServerError

from gradient_pipeline.exchange.hyperliquid.errors import ErrorKind, classify, describe_request, retry_after_s


def test_classify():
    assert classify(ClientError(429, None, "null", None, {"x": "y"})) is ErrorKind.RATE_LIMITED
    assert classify(ClientError(422, None, "Failed to deserialize", None, {})) is ErrorKind.CLIENT
    assert classify(ServerError(502, "bad gateway")) is ErrorKind.TRANSIENT
    assert classify(requests.exceptions.ReadTimeout()) is ErrorKind.TRANSIENT
    assert classify(requests.exceptions.ConnectTimeout()) is ErrorKind.TRANSIENT
    assert classify(requests.exceptions.ConnectionError()) is ErrorKind.TRANSIENT
    assert classify(requests.exceptions.ChunkedEncodingError()) is ErrorKind.TRANSIENT
    assert classify(KeyError("BTC")) is ErrorKind.OTHER


def test_retry_after_from_either_sdk_slot():
    # null body: the SDK passes headers as error_data; JSON body: as header.
    assert retry_after_s(ClientError(429, None, "null", None, {"Retry-After": "3"})) == 3.0
    assert retry_after_s(ClientError(429, 1, "slow down", {"retry-after": "1.5"}, None)) == 1.5
    assert retry_after_s(ClientError(429, None, "null", None, {})) is None
    assert retry_after_s(ServerError(500, "x")) is None


def test_describe_request_never_echoes_signature():
    body = {"action": {"type": "order", "orders": []}, "nonce": 1, "signature": {"r": "0xsecret", "s": "0x", "v": 27}}
    assert describe_request("/exchange", body) == "/exchange order"
    assert describe_request("/info", {"type": "candleSnapshot", "req": {"coin": "kPEPE", "interval": "4h"}}) == (
        "/info candleSnapshot coin=kPEPE interval=4h"
    )
    assert describe_request("/info", {"type": "fundingHistory", "coin": "BTC", "startTime": 1}) == (
        "/info fundingHistory coin=BTC"
    )
