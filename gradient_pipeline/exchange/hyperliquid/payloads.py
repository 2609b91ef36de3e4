"""Hyperliquid payloads → the venue-neutral model (pure): order responses, account states, order lookups, open
orders, fills, funding, and the classification of transport failures. The only parser of `/exchange` answers and
account `/info` answers (market-data frames: `wire.py`).

Outcome classification: `filled`/`partial`/`resting`/`rejected` when the exchange answered for the order;
`rejected` with `action_refused` when it refused the whole request before processing it (signature, nonce,
account); `ambiguous` on timeout, connection error, 5xx or an unparseable body (see `venue.model`).
"""

from __future__ import annotations

import math

import requests
from hyperliquid.utils.error import ClientError, ServerError

from gradient_pipeline.exchange.hyperliquid.errors import (
    ExchangeRequestError,
    ExchangeUnavailableError,
    RateLimitedError,
)
from gradient_pipeline.venue.errors import ActionRefusedError
from gradient_pipeline.venue.model import (
    FundingPayment,
    AccountEquity,
    AccountState,
    Fill,
    LookupState,
    OpenOrder,
    OrderLookup,
    OrderOutcome,
    OrderRequest,
    Position,
)

ACTION_REFUSED = "action refused: "  # prefix of a whole-request error (signature, nonce, account), not one order's

# `userAbstraction` answers. In these two modes the collateral sits in the spot balance (spotClearinghouseState)
# and the perp clearinghouseState reports ~zero: equity must be read from both (reference §10).
STANDARD_MODES = frozenset({"default", "disabled", "dexAbstraction"})
SPOT_COLLATERAL_MODES = frozenset({"unifiedAccount", "portfolioMargin"})
COLLATERAL_COINS = frozenset({"USDC"})  # spot balances counted as equity in the unified / portfolio-margin modes


def equity_from_states(mode: str, perp_state: dict, spot_state: dict | None) -> AccountEquity:
    """The account's equity from its mode and the raw clearinghouseState / spotClearinghouseState answers.

    - standard (`default`, also `disabled` / `dexAbstraction`): the perp `marginSummary.accountValue`;
    - `unifiedAccount` / `portfolioMargin`: spot USDC `total` (the cash, margin in use included as `hold`) plus the
      unrealised PnL of the perp positions — the perp accountValue is ~zero there, so it is not used.
    """
    summary = perp_state.get("marginSummary") or {}
    perp_value = float(summary.get("accountValue", 0.0))
    upnl = sum(float(p["position"].get("unrealizedPnl", 0.0)) for p in perp_state.get("assetPositions", []))
    spot = 0.0
    for bal in (spot_state or {}).get("balances", []):
        if bal.get("coin") in COLLATERAL_COINS:
            spot += float(bal.get("total", 0.0))
    if mode in SPOT_COLLATERAL_MODES:
        if spot_state is None:
            raise ValueError(f"account mode {mode}: equity needs spotClearinghouseState")
        equity = spot + upnl
    else:
        equity = perp_value
    if not math.isfinite(equity):
        raise ValueError(f"account equity is not finite ({equity!r}) in mode {mode}")
    return AccountEquity(equity, mode, perp_value, spot, upnl)


def parse_account_state(state: dict) -> AccountState:
    """clearinghouseState → positions (non-zero only) and the perp summary (account value: see `equity_from_states`)."""
    positions = {}
    for item in state.get("assetPositions", []):
        p = item["position"]
        szi = float(p["szi"])
        if szi == 0:
            continue
        positions[p["coin"]] = Position(
            coin=p["coin"],
            szi=szi,
            entry_px=float(p["entryPx"]) if p.get("entryPx") is not None else None,
            position_value=float(p.get("positionValue", 0.0)),
            unrealized_pnl=float(p.get("unrealizedPnl", 0.0)),
        )
    summary = state.get("marginSummary", {})
    return AccountState(
        account_value=float(summary.get("accountValue", 0.0)),
        total_ntl_pos=float(summary.get("totalNtlPos", 0.0)),
        positions=positions,
        time_ms=state.get("time"),
    )


def lookup_state(status: str) -> LookupState:
    """Hyperliquid's order status word → the neutral fate. `marginCanceled`, `reduceOnlyCanceled`,
    `scheduledCancel`, … are cancellations; `*Rejected` rejections."""
    if status in ("open", "filled", "canceled", "unknown"):
        return status  # type: ignore[return-value]
    if status.endswith("Rejected"):
        return "rejected"
    return "canceled"


def parse_order_status(cloid: str, resp) -> OrderLookup:
    """`orderStatus` answer → `OrderLookup` (`unknown` when the exchange does not know the client id)."""
    if not isinstance(resp, dict) or resp.get("status") != "order":
        return OrderLookup(cloid, "unknown", "unknown")
    o = resp["order"]
    inner = o.get("order", {})
    word = str(o.get("status"))
    return OrderLookup(
        cloid=cloid,
        state=lookup_state(word),
        venue_status=word,
        oid=inner.get("oid"),
        orig_sz=float(inner["origSz"]) if inner.get("origSz") is not None else None,
        remaining_sz=float(inner["sz"]) if inner.get("sz") is not None else None,
    )


def parse_open_order(row: dict) -> OpenOrder:
    """One `openOrders` row (side `B` = buy, `A` = sell)."""
    return OpenOrder(coin=row["coin"], oid=int(row["oid"]), cloid=row.get("cloid") or None, is_buy=row.get("side") == "B",
                     sz=float(row["sz"]), limit_px=float(row["limitPx"]), time_ms=row.get("timestamp"))


def parse_fill(row: dict) -> Fill:
    """One `userFills` row. `crossed` = the fill took liquidity (taker)."""
    return Fill(
        tid=int(row["tid"]),
        oid=int(row["oid"]) if row.get("oid") is not None else None,
        cloid=row.get("cloid") or None,
        coin=row["coin"],
        is_buy=row.get("side") == "B",
        px=float(row["px"]),
        sz=float(row["sz"]),
        time_ms=int(row["time"]),
        fee_usd=float(row.get("fee", 0.0)),
        fee_token=row.get("feeToken", "USDC"),
        taker=bool(row.get("crossed", True)),
        closed_pnl_usd=float(row.get("closedPnl", 0.0)),
        direction=row.get("dir"),
        hash=row.get("hash"),
    )


def _funding_number(value, what: str, row: dict) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"userFunding row {row!r}: {what} is not a number ({value!r})") from None


def parse_funding(row: dict) -> FundingPayment | None:
    """One `userFunding` row (`{"time", "hash", "delta": {"type": "funding", "coin", "usdc", "szi",
    "fundingRate"}}`); None for a non-funding delta. A malformed row raises naming the row."""
    delta = row.get("delta") if isinstance(row, dict) else None
    if not isinstance(delta, dict) or delta.get("type", "funding") != "funding":
        return None
    if "coin" not in delta or "usdc" not in delta or "time" not in row:
        raise ValueError(f"userFunding row {row!r}: needs time, delta.coin and delta.usdc")
    return FundingPayment(
        time_ms=int(row["time"]), coin=str(delta["coin"]), usdc=_funding_number(delta["usdc"], "delta.usdc", row),
        szi=None if delta.get("szi") is None else _funding_number(delta["szi"], "delta.szi", row),
        rate=None if delta.get("fundingRate") is None else _funding_number(delta["fundingRate"], "fundingRate", row),
        hash=row.get("hash"))


def _never_reached(kind: str, oid, error: str | None) -> bool:
    """A rejection that is the transport's, not the exchange's verdict on the order: refused before processing
    (HTTP 429 after retries, 5xx/connection failure known not to have executed)."""
    if kind != "rejected" or oid is not None:
        return False
    err = (error or "").lower()
    return err.startswith("http 429") or "rate limit" in err or "429" in err[:40] or "unavailable" in err


def outcome(cloid: str, kind: str, oid=None, filled_sz: float = 0.0, avg_px=None, error=None,
            action_refused: bool = False) -> OrderOutcome:
    return OrderOutcome(cloid, kind, oid=oid, filled_sz=filled_sz, avg_px=avg_px, error=error,  # type: ignore[arg-type]
                        action_refused=action_refused, unprocessed=_never_reached(kind, oid, error))


def classify_order_response(resp, orders: list[OrderRequest]) -> list[OrderOutcome]:
    """Map an `/exchange` order response to one outcome per order, in order."""
    if not isinstance(resp, dict):
        return [outcome(o.cloid, "ambiguous", error=f"unparseable response: {str(resp)[:200]}") for o in orders]
    if resp.get("status") == "err":
        # The whole action was refused before any order was processed (bad signature, nonce, …).
        msg = ACTION_REFUSED + str(resp.get("response"))
        return [outcome(o.cloid, "rejected", error=msg, action_refused=True) for o in orders]
    if "error" in resp and "status" not in resp:  # SDK: body was not JSON
        return [outcome(o.cloid, "ambiguous", error=str(resp["error"])[:300]) for o in orders]
    try:
        statuses = resp["response"]["data"]["statuses"]
    except (KeyError, TypeError):
        return [outcome(o.cloid, "ambiguous", error=f"unexpected response shape: {str(resp)[:200]}") for o in orders]
    if len(statuses) == 1 and len(orders) > 1 and isinstance(statuses[0], dict) and "error" in statuses[0]:
        statuses = statuses * len(orders)  # batch-level pre-validation error, reported once
    if len(statuses) != len(orders):
        return [outcome(o.cloid, "ambiguous", error=f"{len(statuses)} statuses for {len(orders)} orders")
                for o in orders]
    out = []
    for order, st in zip(orders, statuses):
        if isinstance(st, dict) and "filled" in st:
            f = st["filled"]
            total = float(f.get("totalSz", 0))
            kind = "filled" if total >= order.sz - 1e-12 else "partial"
            out.append(outcome(order.cloid, kind, oid=f.get("oid"), filled_sz=total, avg_px=float(f["avgPx"])))
        elif isinstance(st, dict) and "resting" in st:
            out.append(outcome(order.cloid, "resting", oid=st["resting"].get("oid")))
        elif isinstance(st, dict) and "error" in st:
            out.append(outcome(order.cloid, "rejected", error=str(st["error"])))
        else:
            out.append(outcome(order.cloid, "ambiguous", error=f"unknown status {st!r}"[:300]))
    return out


def transport_error(err: Exception) -> tuple[str, str]:
    """(kind, message) for an exception raised while sending. The message never contains request bodies."""
    if isinstance(err, ExchangeUnavailableError):
        return ("ambiguous" if err.may_have_executed else "rejected"), str(err)[:300]
    if isinstance(err, (RateLimitedError, ExchangeRequestError)):
        return "rejected", str(err)[:300]  # refused before processing (429 after retries, 4xx)
    if isinstance(err, ClientError):
        # A 4xx means the request was refused before processing (429 rate limit, 422 malformed body).
        return "rejected", f"HTTP {err.status_code}: {str(err.error_message)[:200]}"
    if isinstance(err, ServerError):
        return "ambiguous", f"HTTP {err.status_code} from exchange"
    if isinstance(err, requests.Timeout):
        return "ambiguous", "timeout waiting for the exchange"
    if isinstance(err, requests.ConnectionError):
        return "ambiguous", "connection error (the request may have reached the exchange)"
    if isinstance(err, ValueError):
        return "ambiguous", f"unparseable response: {type(err).__name__}"
    return "ambiguous", f"{type(err).__name__} while sending"


def require_ok(resp, what: str) -> None:
    """Raise `ActionRefusedError` (with the exchange's words) unless a signed action answered `ok`."""
    if isinstance(resp, dict) and resp.get("status") == "ok":
        return
    venue = str(resp.get("response")) if isinstance(resp, dict) else str(resp)
    raise ActionRefusedError(f"{what}: refused by the exchange: {venue[:300]}", venue[:300])


def cancel_succeeded(resp, what: str) -> bool:
    try:
        st = resp["response"]["data"]["statuses"][0]
    except (KeyError, TypeError, IndexError):
        raise RuntimeError(f"{what}: unexpected response {str(resp)[:200]}") from None
    return st == "success"
