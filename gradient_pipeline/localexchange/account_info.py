"""Answers to the account `/info` types (reference §2.4, §2.7–2.11), in the live exchange's wire shapes.

Each handler is `handler(engine, body, user, acct)` where `user` is the lower-cased address asked about and
`acct` its `Account` (None if the exchange has never seen it: the live exchange then answers with an empty state).
`TradingEngine.handle_info` validates the body, holds the lock and dispatches here.
"""

from __future__ import annotations

from gradient_pipeline.localexchange import fmt
from gradient_pipeline.localexchange import orders as E
from gradient_pipeline.localexchange.accounts import Account, liquidation_px
from gradient_pipeline.localexchange.orders import BadRequest, parse_int


def clearinghouseState(engine, body, user, acct):
    now = engine.market.now_ms()
    if acct is None:
        acct = Account(user)
    s = engine.summary(acct)
    positions = []
    for coin, pos in sorted(acct.positions.items()):
        if pos.szi == 0:
            continue
        meta = engine.coin_meta(coin)
        sz_dec = meta.sz_decimals if meta else 8
        lev = engine.leverage(acct, coin)
        max_lev = engine.max_leverage(coin)
        mark = engine.mark(coin) or pos.entry_px
        value = abs(pos.szi) * mark
        upnl = pos.szi * (mark - pos.entry_px)
        own_maint = 0.5 * value / max_lev
        liq = liquidation_px(s.account_value, s.maintenance_margin - own_maint, pos.szi, mark, max_lev)
        entry_margin = abs(pos.szi) * pos.entry_px / lev
        positions.append({
            "position": {
                "coin": coin,
                "cumFunding": {
                    "allTime": fmt.usd(pos.funding_all_time),
                    "sinceChange": fmt.usd(pos.funding_since_change),
                    "sinceOpen": fmt.usd(pos.funding_since_open),
                },
                "entryPx": fmt.px(pos.entry_px),
                "leverage": {"type": "cross", "value": lev},
                "liquidationPx": None if liq is None else fmt.px(liq),
                "marginUsed": fmt.usd(value / lev),
                "maxLeverage": max_lev,
                "positionValue": fmt.usd(value),
                "returnOnEquity": fmt.num(upnl / entry_margin if entry_margin else 0.0, 8),
                "szi": fmt.sz(pos.szi, sz_dec),
                "unrealizedPnl": fmt.usd(upnl),
            },
            "type": "oneWay",
        })
    account_value, raw_usd, withdrawable = s.account_value, s.total_raw_usd, s.withdrawable
    if acct.mode != "default":
        # unified account / portfolio margin: the cash lives in the spot balance (spotClearinghouseState); the
        # perp side reports only what its positions carry (unrealised PnL), i.e. ~zero when flat
        account_value = s.unrealized_pnl
        raw_usd = s.total_raw_usd - acct.balance
        withdrawable = 0.0
    summary = {
        "accountValue": fmt.usd(account_value),
        "totalMarginUsed": fmt.usd(s.total_margin_used),
        "totalNtlPos": fmt.usd(s.total_ntl_pos),
        "totalRawUsd": fmt.usd(raw_usd),
    }
    return {
        "assetPositions": positions,
        "crossMaintenanceMarginUsed": fmt.usd(s.maintenance_margin),
        "crossMarginSummary": dict(summary),
        "marginSummary": summary,
        "time": now,
        "withdrawable": fmt.usd(withdrawable),
    }


def spotClearinghouseState(engine, body, user, acct):
    """Spot balances. Only USDC exists here: in a standard account it is the separate spot wallet (empty — the
    local exchange credits deposits to the perp side); in unified / portfolio-margin mode it is the account's
    cash, with the margin its positions and orders use shown as `hold`."""
    if acct is None or acct.mode == "default":
        return {"balances": []}
    s = engine.summary(acct)
    return {"balances": [{"coin": "USDC", "token": 0, "total": fmt.usd(acct.balance),
                          "hold": fmt.usd(s.total_margin_used + s.order_margin), "entryNtl": "0.0"}]}


def userAbstraction(engine, body, user, acct):
    """The account mode as the live exchange names it: `default` (standard), `unifiedAccount`, `portfolioMargin`."""
    return acct.mode if acct is not None else "default"


def extraAgents(engine, body, user, acct):
    """Approved API wallets of a master: `[{name, address, validUntil}]` (an agent or unknown address: [])."""
    return engine.agents_of(user)


def maxBuilderFee(engine, body, user, acct):
    """The fee (tenths of a basis point) `user` approved for `builder`; 0 when never approved."""
    builder = E.parse_address(body.get("builder"), "builder")
    return acct.builders.get(builder, 0) if acct is not None else 0

def openOrders(engine, body, user, acct):
    if acct is None:
        return []
    return [o.open_wire() for o in sorted(acct.open_orders(), key=lambda o: -o.oid)]

def frontendOpenOrders(engine, body, user, acct):
    if acct is None:
        return []
    return [o.wire() for o in sorted(acct.open_orders(), key=lambda o: -o.oid)]

def userFills(engine, body, user, acct):
    if acct is None:
        return []
    return list(reversed(acct.fills[-engine.config["max_fills"]:]))

def userFillsByTime(engine, body, user, acct):
    start = parse_int(body.get("startTime"), "startTime")
    end = body.get("endTime")
    end = engine.market.now_ms() if end is None else parse_int(end, "endTime")
    if acct is None:
        return []
    # the oldest page in the window (so `startTime` pagination works), newest first like the recorded API
    rows = [f for f in acct.fills if start <= f["time"] <= end][: engine.config["max_fills"]]
    return rows[::-1]

def userFunding(engine, body, user, acct):
    start = parse_int(body.get("startTime"), "startTime")
    end = body.get("endTime")
    end = engine.market.now_ms() if end is None else parse_int(end, "endTime")
    if acct is None:
        return []
    rows = [f for f in acct.funding if start <= f["time"] <= end]
    return rows[: engine.config["max_funding_rows"]]

def orderStatus(engine, body, user, acct):
    ref = body.get("oid")
    if isinstance(ref, str):
        if not E.is_cloid(ref):
            raise BadRequest(f"orderStatus oid must be an integer or a 0x cloid, got {ref!r}")
        oid = acct.cloids.get(ref.lower()) if acct else None
    else:
        oid = parse_int(ref, "oid")
    order = acct.orders.get(oid) if (acct and oid is not None) else None
    if order is None:
        return {"status": "unknownOid"}
    return {"status": "order",
            "order": {"order": order.wire(), "status": order.status, "statusTimestamp": order.status_timestamp}}

def historicalOrders(engine, body, user, acct):
    if acct is None:
        return []
    rows = sorted(acct.orders.values(), key=lambda o: -o.oid)[: engine.config["max_fills"]]
    return [{"order": o.wire(), "status": o.status, "statusTimestamp": o.status_timestamp} for o in rows]

def userNonFundingLedgerUpdates(engine, body, user, acct):
    start = parse_int(body.get("startTime"), "startTime")
    end = body.get("endTime")
    end = engine.market.now_ms() if end is None else parse_int(end, "endTime")
    if acct is None:
        return []
    return [row for row in acct.ledger if start <= row["time"] <= end][: engine.config["max_funding_rows"]]

def userRateLimit(engine, body, user, acct):
    vlm = acct.cum_volume if acct else 0.0
    used = acct.requests_used if acct else 0
    cap = int(vlm) + engine.config["request_buffer"]
    return {"cumVlm": fmt.num(vlm, 6), "nRequestsUsed": used, "nRequestsCap": cap,
            "nRequestsSurplus": max(0, cap - used)}

def userRole(engine, body, user, acct):
    if user in engine.agents:
        return {"role": "agent", "data": {"user": engine.agents[user]}}
    if acct is not None:
        return {"role": "user"}
    return {"role": "missing"}

def userFees(engine, body, user, acct):
    taker, maker = fmt.num(engine.config["taker_fee"], 8), fmt.num(engine.config["maker_fee"], 8)
    return {
        "dailyUserVlm": [],
        "feeSchedule": {"cross": taker, "add": maker, "referralDiscount": "0.0", "tiers": {"vip": [], "mm": []}},
        "userCrossRate": taker,
        "userAddRate": maker,
        "activeReferralDiscount": "0.0",
        "trial": None,
        "feeTrialReward": "0.0",
        "nextTrialAvailableTimestamp": None,
    }


HANDLERS = {
    "clearinghouseState": clearinghouseState,
    "openOrders": openOrders,
    "frontendOpenOrders": frontendOpenOrders,
    "userFills": userFills,
    "userFillsByTime": userFillsByTime,
    "orderStatus": orderStatus,
    "userFunding": userFunding,
    "historicalOrders": historicalOrders,
    "userNonFundingLedgerUpdates": userNonFundingLedgerUpdates,
    "userRateLimit": userRateLimit,
    "userRole": userRole,
    "userFees": userFees,
    "spotClearinghouseState": spotClearinghouseState,
    "userAbstraction": userAbstraction,
    "extraAgents": extraAgents,
    "maxBuilderFee": maxBuilderFee,
}
