"""`TradingEngine`: the trading half of the local exchange — accounts, orders, fills, fees, funding, signatures.

The server hands it `/info` bodies whose type is in `ACCOUNT_INFO_TYPES` and every `/exchange` body; it answers
with the live exchange's JSON shapes (string numbers, ms times) and exact error strings (reference §2–§7). Prices
and depth come from the market half (`MarketView`): taker orders walk `market.book(coin)`, so large IOC orders fill
partially; resting Gtc/Alo orders fill as maker when a later book trades through their price.

Clock: `on_clock(now_ms)` is called when the replay clock moves; it pays hourly funding for every whole hour
crossed, runs scheduled cancels, settles delisted coins, fills resting orders the new prices cross, then
liquidates accounts below maintenance margin. Public calls also catch up with
`market.now_ms()` themselves, so a missed notification cannot skip funding.

Nonce time: the live exchange checks nonces and `expiresAfter` against its block time, and the SDK makes nonces
from the wall clock (`get_timestamp_ms`). The replay clock is historical, so by default (`nonce_clock: "wall"`)
those checks use the wall clock; `nonce_clock: "replay"` checks them against the replay clock instead.

Signers: an L1 action's signer is recovered with the SDK (`signing.py`); a registered API wallet acts for its
master, a funded master acts for itself, anything else is `User or API Wallet 0x… does not exist.` State is kept
in memory (a restart starts empty) and guarded by one re-entrant lock.

Order of checks for one order (first failure wins; per-order errors carry the live ` asset=N` suffix):
batch price band (whole batch) → unknown asset → trigger order → delisted → tick → size → duplicate cloid →
reduce-only → $10 minimum (waived for a reduce-only order that closes the whole position) → margin → Alo cross
→ match (IOC with no fill: IocCancel). Minimum notional and margin use the limit price.

Simplifications (documented, deliberate): cross margin only (isolated is refused); one margin tier per coin
(`maxLeverage`); funding uses the oracle at the time the clock move is processed, not at each hour; resting orders
see only the book at each clock instant, not the price path in between; liquidation closes every position at the
mark once account value < maintenance margin; builder fees are ignored; `aggregateByTime` is ignored.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Protocol

from eth_utils import keccak
from hyperliquid.utils.signing import action_hash

from gradient_pipeline.localexchange import account_info, fmt, state
from gradient_pipeline.localexchange import orders as E
from gradient_pipeline.localexchange.accounts import (
    Account,
    apply_fill,
    increase_size,
    margin_summary,
)
from gradient_pipeline.localexchange.matching import Liquidity, crosses, crossing_depth, floor_sz, walk
from gradient_pipeline.localexchange.nonces import NonceBook
from gradient_pipeline.localexchange.orders import BadRequest, OrderRecord, OrderWire
from gradient_pipeline.localexchange.signing import recover_approve_agent_signer, recover_l1_signer

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
EPS = 1e-9


class CoinMeta(Protocol):
    name: str
    asset_index: int
    sz_decimals: int
    max_leverage: int
    is_delisted: bool


class MarketView(Protocol):
    """What the engine needs from the market half (full contract: `market.py` docstring)."""

    def now_ms(self) -> int: ...
    def coins(self) -> list[CoinMeta]: ...
    def coin(self, name: str) -> CoinMeta | None: ...
    def coin_by_asset(self, i: int) -> CoinMeta | None: ...
    def mid(self, coin: str) -> float | None: ...
    def mark(self, coin: str) -> float | None: ...
    def oracle(self, coin: str) -> float | None: ...
    def book(self, coin: str) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]: ...
    def funding_rate(self, coin: str, hour_ms: int) -> float | None: ...


DEFAULT_CONFIG: dict = {
    "taker_fee": 0.00045,  # base tier perps (fees.md)
    "maker_fee": 0.00015,
    "default_leverage": 20,  # capped at the coin's maxLeverage
    "min_notional": 10.0,
    "price_band": 0.8,  # reject limit prices more than 80% from the mark
    "nonce_clock": "wall",  # "wall" | "replay": the T in the nonce window and expiresAfter checks
    "request_buffer": 10_000,  # address-based limit: cap = traded USDC + this
    "max_fills": 2000,  # userFills / userFillsByTime page size
    "max_funding_rows": 500,
}

ACCOUNT_INFO_TYPES: set[str] = set(account_info.HANDLERS)


def _err(message: str) -> dict:
    return {"status": "err", "response": message}


def _ok_default() -> dict:
    return {"status": "ok", "response": {"type": "default"}}


def _hash_hex(*parts: object) -> str:
    return "0x" + keccak(text="|".join(str(p) for p in parts)).hex()


class TradingEngine:
    ACCOUNT_INFO_TYPES = ACCOUNT_INFO_TYPES

    def __init__(self, market: MarketView, config: dict | None = None):
        unknown = set(config or {}) - set(DEFAULT_CONFIG)
        if unknown:
            raise ValueError(f"TradingEngine config: unknown key(s) {sorted(unknown)}; known: {sorted(DEFAULT_CONFIG)}")
        self.config = {**DEFAULT_CONFIG, **(config or {})}
        if self.config["nonce_clock"] not in ("wall", "replay"):
            raise ValueError("TradingEngine config: nonce_clock must be 'wall' or 'replay', "
                             f"got {self.config['nonce_clock']!r}")
        self.market = market
        self._lock = threading.RLock()
        self._accounts: dict[str, Account] = {}
        self._agents: dict[str, str] = {}  # agent address -> master (both lower-case)
        self._named_agents: dict[str, dict[str, str]] = {}  # master -> name -> agent ("" = unnamed)
        self._nonces = NonceBook()
        self._liquidity = Liquidity()
        # Ids unique across restarts, like the real exchange's: a persistent ledger (a PostgreSQL operations book)
        # keys fills by trade id and attributes them by order id, so a new local exchange must not reuse old ones.
        self._next_oid = self._next_tid = time.time_ns() // 1000
        self._last_ms = market.now_ms()

    # ------------------------------------------------------------------ operator surface
    def fund(self, address: str, usdc: float) -> None:
        """Credit `usdc` to a master account (creating it): the local stand-in for a deposit."""
        if not isinstance(usdc, (int, float)) or math.isnan(usdc) or usdc < 0:
            raise ValueError(f"fund: amount must be a non-negative number, got {usdc!r}")
        with self._lock:
            self._sync()
            acct = self._account(E.parse_address(address, "fund address"), create=True)
            acct.balance += float(usdc)
            now = self.market.now_ms()
            acct.ledger.append({"time": now, "hash": _hash_hex("deposit", acct.address, now, len(acct.ledger)),
                                "delta": {"type": "deposit", "usdc": fmt.usd(usdc)}})

    def approve_agent(self, agent: str, master: str) -> None:
        """Register `agent` as an API wallet of `master` (what a signed approveAgent does). Operator-registered
        agents are kept side by side (each under its own name), so registering one never displaces another."""
        with self._lock:
            agent = E.parse_address(agent, "agent")
            self._register_agent(agent, E.parse_address(master, "master"), f"operator:{agent}")

    def export_state(self) -> dict:
        """Everything the engine knows (accounts, orders, fills, agents, nonces) as JSON-able data."""
        with self._lock:
            return state.dump(self)

    def import_state(self, saved: dict) -> None:
        """Replace the engine's state with one from `export_state` (raises `state.StateError` if invalid). The
        replay clock is not part of it: the next clock call pays funding from the saved time on."""
        with self._lock:
            state.load(self, saved)

    # ------------------------------------------------------------------ clock
    def on_clock(self, now_ms: int) -> None:
        with self._lock:
            self._advance(int(now_ms))

    def _advance(self, now: int) -> None:
        self._liquidity.reset_if_moved(now)
        last = self._last_ms
        self._last_ms = now
        if now < last:  # the operator rewound the clock: nothing to pay or fill
            return
        if now == last:  # same instant (e.g. after a price shock): only resting orders can newly cross
            self._fill_resting(now)
            self._liquidate(now)
            return
        first_hour = (last // HOUR_MS + 1) * HOUR_MS
        for hour in range(first_hour, now + 1, HOUR_MS):
            self._pay_funding(hour)
        for acct in self._accounts.values():
            if acct.scheduled_cancel_ms is not None and acct.scheduled_cancel_ms <= now:
                self._cancel_all(acct, "scheduledCancel", acct.scheduled_cancel_ms)
                acct.scheduled_cancel_ms = None
        self._settle_delisted(now)
        self._fill_resting(now)
        self._liquidate(now)

    def _sync(self) -> None:
        now = self.market.now_ms()
        if now != self._last_ms:
            self._advance(now)

    def _action_clock_ms(self) -> int:
        if self.config["nonce_clock"] == "replay":
            return self.market.now_ms()
        return int(time.time() * 1000)

    # ------------------------------------------------------------------ accounts
    def _account(self, address: str, create: bool = False) -> Account | None:
        acct = self._accounts.get(address)
        if acct is None and create:
            acct = self._accounts[address] = Account(address)
        return acct

    def _register_agent(self, agent: str, master: str, name: str) -> None:
        self._account(master, create=True)
        named = self._named_agents.setdefault(master, {})
        previous = named.get(name)
        if previous is not None and previous != agent:
            # a new wallet under the same name (or a new unnamed one) deregisters the old one (§4.4)
            self._agents.pop(previous, None)
        named[name] = agent
        self._agents[agent] = master

    def coin_meta(self, coin: str):
        return self.market.coin(coin)

    def leverage(self, acct: Account, coin: str) -> int:
        meta = self.coin_meta(coin)
        max_lev = meta.max_leverage if meta else self.config["default_leverage"]
        return acct.leverage.get(coin, min(self.config["default_leverage"], max_lev))

    def max_leverage(self, coin: str) -> int:
        meta = self.coin_meta(coin)
        return meta.max_leverage if meta else self.config["default_leverage"]

    def mark(self, coin: str) -> float | None:
        m = self.market.mark(coin)
        return m if m is not None else self.market.mid(coin)

    @property
    def agents(self) -> dict[str, str]:
        """Registered API wallets: agent address -> master address (lower-case)."""
        return self._agents

    def summary(self, acct: Account):
        return margin_summary(acct, self.mark, lambda c: self.leverage(acct, c), self.max_leverage)

    # ------------------------------------------------------------------ /info
    def handle_info(self, body: dict) -> object:
        with self._lock:
            self._sync()
            if not isinstance(body, dict):
                raise BadRequest("info body must be an object")
            kind = body.get("type")
            if kind not in ACCOUNT_INFO_TYPES:
                raise BadRequest(f"info type {kind!r} is not an account type")
            user = E.parse_address(body.get("user"), "user")
            acct = self._accounts.get(user)
            return account_info.HANDLERS[kind](self, body, user, acct)

    # ------------------------------------------------------------------ /exchange
    def handle_exchange(self, body: dict) -> object:
        """Verify and apply one signed action. Raises `BadRequest` for a body of the wrong shape (the
        server answers 422); every other failure is a `{"status":"err",...}` or a per-order error."""
        with self._lock:
            self._sync()
            if not isinstance(body, dict):
                raise BadRequest("exchange body must be an object")
            action = body.get("action")
            if not isinstance(action, dict) or not isinstance(action.get("type"), str):
                raise BadRequest("action must be an object with a 'type'")
            nonce = E.parse_int(body.get("nonce"), "nonce")
            vault = body.get("vaultAddress")
            expires = body.get("expiresAfter")
            if expires is not None:
                expires = E.parse_int(expires, "expiresAfter")
            if vault is not None:
                E.parse_address(vault, "vaultAddress")
            clock = self._action_clock_ms()
            if expires is not None and expires < clock:
                return _err("Action already expired")

            if action["type"] == "approveAgent":
                return self._approve_agent_action(action, body.get("signature"), nonce, clock)

            parsed = self._parse_action(action)  # shape errors are 422s, before any signature work
            signer = recover_l1_signer(action, body.get("signature"), vault, nonce, expires)
            signer_key = signer.lower()
            master = self._agents.get(signer_key) or (signer_key if signer_key in self._accounts else None)
            if master is None:
                return _err(f"User or API Wallet {signer} does not exist.")
            if vault is not None:
                return _err(f"Vault not registered: {vault}")
            acct = self._accounts[master]
            if not acct.ledger:  # registered (e.g. as an agent's master) but never funded
                return _err(f"Must deposit before performing actions. User: {master}")
            cost = self._request_cost(action)
            limited = self._address_limit(acct, action["type"], cost)
            if limited:
                return _err(limited)
            bad_nonce = self._nonces.check(signer_key, nonce, clock)
            if bad_nonce:
                return _err(bad_nonce)
            self._nonces.use(signer_key, nonce)
            acct.requests_used += cost
            tx_hash = "0x" + action_hash(action, vault, nonce, expires).hex()
            kind = action["type"]
            if kind == "order":
                return self._order_action(acct, action, parsed, tx_hash)
            if kind in ("cancel", "cancelByCloid"):
                return self._cancel_action(acct, parsed)
            if kind == "updateLeverage":
                return self._update_leverage(acct, *parsed)
            if kind == "scheduleCancel":
                return self._schedule_cancel(acct, parsed)
            return _err(f"Action type {kind!r} is not supported by the local exchange.")

    @staticmethod
    def _parse_action(action: dict):
        """Shape-check an L1 action (BadRequest if wrong) and return what its handler needs."""
        kind = action["type"]
        if kind == "order":
            wires = action.get("orders")
            if not isinstance(wires, list):
                raise BadRequest("order action lacks an 'orders' list")
            return [E.parse_order_wire(w, i) for i, w in enumerate(wires)]
        if kind in ("cancel", "cancelByCloid"):
            cancels = action.get("cancels")
            if not isinstance(cancels, list):
                raise BadRequest(f"{kind} action lacks a 'cancels' list")
            out = []
            for i, c in enumerate(cancels):
                if not isinstance(c, dict):
                    raise BadRequest(f"cancels[{i}] is not an object")
                if kind == "cancelByCloid":
                    cloid = c.get("cloid")
                    if not E.is_cloid(cloid):
                        raise BadRequest(f"cancels[{i}].cloid is not a 0x 16-byte hex string")
                    out.append((E.parse_int(c.get("asset"), f"cancels[{i}].asset"), None, cloid.lower()))
                else:
                    out.append((E.parse_int(c.get("a"), f"cancels[{i}].a"), E.parse_int(c.get("o"), f"cancels[{i}].o"), None))
            return out
        if kind == "updateLeverage":
            is_cross = action.get("isCross")
            if not isinstance(is_cross, bool):
                raise BadRequest("updateLeverage isCross must be a boolean")
            return E.parse_int(action.get("asset"), "asset"), E.parse_int(action.get("leverage"), "leverage"), is_cross
        if kind == "scheduleCancel":
            when = action.get("time")
            return None if when is None else E.parse_int(when, "time")
        return None

    def _request_cost(self, action: dict) -> int:
        items = action.get("orders") if action["type"] == "order" else action.get("cancels")
        return max(1, len(items)) if isinstance(items, list) else 1

    def _address_limit(self, acct: Account, kind: str, cost: int) -> str | None:
        """The address-based request budget (rate-limits-and-user-limits.md): 1 request per USDC traded plus a
        10,000 buffer; cancels get min(limit + 100000, 2 × limit)."""
        cap = int(acct.cum_volume) + self.config["request_buffer"]
        if kind in ("cancel", "cancelByCloid"):
            cap = min(cap + 100_000, 2 * cap)
        if acct.requests_used + cost > cap:
            return (f"Too many cumulative requests sent ({acct.requests_used + cost} > {cap}) for cumulative volume "
                    f"traded ${acct.cum_volume:.2f}. Place taker orders to free up 1 request per USDC traded.")
        return None

    def _approve_agent_action(self, action: dict, signature, nonce: int, clock: int) -> dict:
        agent = E.parse_address(action.get("agentAddress"), "agentAddress")
        if action.get("nonce") != nonce:
            raise BadRequest("approveAgent action nonce must equal the request nonce")
        name = action.get("agentName") or ""
        signer = recover_approve_agent_signer(action, signature)
        master = signer.lower()
        if master not in self._accounts:
            return _err(f"User or API Wallet {signer} does not exist.")
        if master in self._agents:
            return _err("Agent wallets cannot approve other agents.")  # LOCAL wording
        bad_nonce = self._nonces.check(master, nonce, clock)
        if bad_nonce:
            return _err(bad_nonce)
        self._nonces.use(master, nonce)
        named = [n for n in self._named_agents.get(master, {}) if n and not n.startswith("operator:")]
        if name and name not in named and len(named) >= 3:
            return _err("Too many named agents: an account can have at most 3.")  # LOCAL wording
        self._register_agent(agent, master, name)
        return _ok_default()

    # ---------------------------------------------------------------- order
    def _order_action(self, acct: Account, action: dict, parsed: list[OrderWire], tx_hash: str) -> dict:
        grouping = action.get("grouping", "na")
        if grouping != "na":
            return _err(f"Grouping {grouping!r} is not supported by the local exchange (only 'na').")
        band = self._price_band_error(parsed)
        if band is not None:
            return self._order_response([{"error": band}] * len(parsed))
        return self._order_response([self._place(acct, w, tx_hash) for w in parsed])

    @staticmethod
    def _order_response(statuses: list[dict]) -> dict:
        return {"status": "ok", "response": {"type": "order", "data": {"statuses": statuses}}}

    def _price_band_error(self, parsed: list[OrderWire]) -> str | None:
        """Batch pre-validation: a limit price more than 80% from the mark rejects the whole batch, with the
        error repeated for every order (error-responses.md)."""
        for w in parsed:
            meta = self.market.coin_by_asset(w.asset)
            if meta is None or meta.is_delisted or w.tif is None:  # rejected per order below
                continue
            px, err = E.check_price(w.px_text, meta.sz_decimals)
            ref = self.mark(meta.name)
            if err is None and ref and abs(px - ref) > self.config["price_band"] * ref:
                return E.with_asset(E.PRICE_BAND, w.asset)
        return None

    def _place(self, acct: Account, w: OrderWire, tx_hash: str) -> dict:
        now = self.market.now_ms()
        meta = self.market.coin_by_asset(w.asset)
        if meta is None:
            return {"error": E.with_asset(E.UNKNOWN_ASSET, w.asset)}
        if w.tif is None:
            return {"error": E.with_asset(E.TRIGGER_UNSUPPORTED, w.asset)}
        if meta.is_delisted:
            return {"error": E.with_asset(E.DELISTED, w.asset)}
        px, err = E.check_price(w.px_text, meta.sz_decimals)
        if err:
            return {"error": E.with_asset(err, w.asset)}
        sz, err = E.check_size(w.sz_text, meta.sz_decimals)
        if err:
            return {"error": E.with_asset(err, w.asset)}
        if w.cloid is not None and self._cloid_taken(acct, w.cloid):
            return {"error": E.with_asset(E.DUPLICATE_CLOID, w.asset)}

        coin = meta.name
        order = OrderRecord(self._next_oid, acct.address, coin, w.asset, meta.sz_decimals, w.is_buy, px, sz, sz,
                            w.reduce_only, w.tif, w.cloid, now, status_timestamp=now)
        self._next_oid += 1
        acct.orders[order.oid] = order
        if w.cloid is not None:
            acct.cloids[w.cloid] = order.oid

        rejection = self._pretrade_check(acct, order)
        if rejection is None and w.tif == "Alo":
            rejection = self._alo_check(order)
        if rejection is not None:
            order.status = E.reject_status(rejection)
            return {"error": E.with_asset(rejection, w.asset)}

        if w.tif != "Alo":
            bids, asks = self._book(coin)
            levels = asks if w.is_buy else bids
            for fpx, fsz in walk(levels, w.is_buy, px, sz, meta.sz_decimals):
                self._fill(acct, order, fpx, fsz, crossed=True, tx_hash=tx_hash, now=now)
                self._liquidity.take(coin, "ask" if w.is_buy else "bid", fpx, fsz)

        if order.remaining <= EPS:
            order.remaining = 0.0
            order.status = "filled"
            return {"filled": self._filled_status(order)}
        if w.tif == "Ioc":
            if order.filled <= EPS:
                order.status = "iocCancelRejected"
                return {"error": E.with_asset(E.IOC_CANCEL, w.asset)}
            order.status = "canceled"
            return {"filled": self._filled_status(order)}
        acct.open_oids.append(order.oid)
        resting = {"oid": order.oid}
        if order.cloid is not None:
            resting["cloid"] = order.cloid
        return {"resting": resting}

    def _cloid_taken(self, acct: Account, cloid: str) -> bool:
        """A cloid is spent once an order carrying it was accepted; a rejected order leaves it free to retry."""
        oid = acct.cloids.get(cloid)
        if oid is None:
            return False
        status = acct.orders[oid].status
        return not (status.endswith("Rejected") or status == "rejected")

    def _filled_status(self, order: OrderRecord) -> dict:
        out = {"totalSz": fmt.sz(order.filled, order.sz_decimals),
               "avgPx": fmt.px(order.fills_notional / order.filled), "oid": order.oid}
        if order.cloid is not None:
            out["cloid"] = order.cloid
        return out

    def _pretrade_check(self, acct: Account, order: OrderRecord) -> str | None:
        szi = acct.szi(order.coin)
        full_close = order.reduce_only and szi != 0 and (szi > 0) != order.is_buy and abs(
            abs(szi) - order.orig_sz) <= EPS
        if order.reduce_only and (szi == 0 or (szi > 0) == order.is_buy or order.orig_sz > abs(szi) + EPS):
            return E.REDUCE_ONLY
        if order.orig_sz * order.limit_px < self.config["min_notional"] - EPS and not full_close:
            return E.MIN_NOTIONAL
        inc = increase_size(szi, order.is_buy, order.orig_sz)
        if inc > 0:
            required = inc * order.limit_px / self.leverage(acct, order.coin)
            if required > self.summary(acct).available + EPS:
                return E.MARGIN
        return None

    def _alo_check(self, order: OrderRecord) -> str | None:
        bids, asks = self._book(order.coin)
        opposite = asks if order.is_buy else bids
        if opposite and crosses(order.is_buy, order.limit_px, opposite[0][0]):
            bid = fmt.px(bids[0][0]) if bids else "None"
            ask = fmt.px(asks[0][0]) if asks else "None"
            return E.bad_alo(bid, ask)
        return None

    def _book(self, coin: str):
        """The market's book at replay-now minus what our fills already took at this instant."""
        self._liquidity.reset_if_moved(self.market.now_ms())
        bids, asks = self.market.book(coin)
        return self._liquidity.remaining(coin, "bid", bids), self._liquidity.remaining(coin, "ask", asks)

    def _fill(self, acct: Account, order: OrderRecord, px: float, sz: float, crossed: bool, tx_hash: str,
              now: int, extra: dict | None = None, fee_rate: float | None = None) -> None:
        if fee_rate is None:
            fee_rate = self.config["taker_fee"] if crossed else self.config["maker_fee"]
        rate = fee_rate
        fee = px * sz * rate
        effect = apply_fill(acct.position(order.coin), order.is_buy, px, sz, order.sz_decimals)
        acct.balance += effect.closed_pnl - fee
        acct.cum_volume += px * sz
        order.remaining = round(order.remaining - sz, order.sz_decimals)
        order.filled = round(order.filled + sz, order.sz_decimals)
        order.fills_notional += px * sz
        order.status_timestamp = now
        tid = self._next_tid
        self._next_tid += 1
        row = {
            "closedPnl": fmt.usd(effect.closed_pnl),
            "coin": order.coin,
            "crossed": crossed,
            "dir": effect.direction,
            "hash": tx_hash,
            "oid": order.oid,
            "px": fmt.px(px),
            "side": order.side,
            "startPosition": fmt.sz(effect.start_position, order.sz_decimals),
            "sz": fmt.sz(sz, order.sz_decimals),
            "time": now,
            "fee": fmt.usd(fee),
            "feeToken": "USDC",
            "tid": tid,
        }
        if order.cloid is not None:
            row["cloid"] = order.cloid
        if extra:
            row.update(extra)
        acct.fills.append(row)

    # ---------------------------------------------------------------- cancel / leverage / schedule
    def _cancel_action(self, acct: Account, cancels: list[tuple[int, int | None, str | None]]) -> dict:
        statuses: list = []
        now = self.market.now_ms()
        for asset, oid, cloid in cancels:
            if cloid is not None:
                oid = acct.cloids.get(cloid)
            order = acct.orders.get(oid) if oid is not None else None
            if order is None or order.status != "open" or order.asset != asset:
                statuses.append({"error": E.with_asset(E.CANCEL_MISSING, asset)})
                continue
            self._close_order(acct, order, "canceled", now)
            statuses.append("success")
        return {"status": "ok", "response": {"type": "cancel", "data": {"statuses": statuses}}}

    def _close_order(self, acct: Account, order: OrderRecord, status: str, now: int) -> None:
        order.status = status
        order.status_timestamp = now
        if order.oid in acct.open_oids:
            acct.open_oids.remove(order.oid)

    def _cancel_all(self, acct: Account, status: str, now: int) -> None:
        for order in acct.open_orders():
            self._close_order(acct, order, status, now)

    def _update_leverage(self, acct: Account, asset: int, lev: int, is_cross: bool) -> dict:
        meta = self.market.coin_by_asset(asset)
        if meta is None:
            return _err(f"Unknown asset {asset}.")  # LOCAL wording
        if not is_cross:
            return _err("Isolated margin is not supported by the local exchange; use isCross=true.")  # LOCAL
        if not 1 <= lev <= meta.max_leverage:
            return _err(f"Invalid leverage value: {lev} (allowed 1..{meta.max_leverage} for {meta.name}).")  # LOCAL
        previous = acct.leverage.get(meta.name)
        acct.leverage[meta.name] = lev
        if self.summary(acct).available < -EPS:  # a lower leverage must still be covered by the account
            if previous is None:
                acct.leverage.pop(meta.name)
            else:
                acct.leverage[meta.name] = previous
            return _err(E.MARGIN)
        return _ok_default()

    def _schedule_cancel(self, acct: Account, when: int | None) -> dict:
        now = self.market.now_ms()
        if when is None:
            acct.scheduled_cancel_ms = None
            return _ok_default()
        if when < now + 5000:
            return _err("Scheduled cancel time too early, must be at least 5 seconds from now.")  # LOCAL wording
        day = now // DAY_MS
        if acct.scheduled_cancel_days.get(day, 0) >= 10:
            return _err("Too many scheduled cancels today (at most 10 per UTC day).")  # LOCAL wording
        acct.scheduled_cancel_days[day] = acct.scheduled_cancel_days.get(day, 0) + 1
        acct.scheduled_cancel_ms = when
        return _ok_default()

    # ---------------------------------------------------------------- clock-driven work
    def _pay_funding(self, hour: int) -> None:
        """Hourly funding at `hour`: payment = szi × oracle × rate; positive rate means longs pay shorts."""
        for acct in self._accounts.values():
            for coin, pos in sorted(acct.positions.items()):
                if pos.szi == 0:
                    continue
                rate = self.market.funding_rate(coin, hour)
                if rate is None:
                    continue
                oracle = self.market.oracle(coin) or self.mark(coin)
                if oracle is None:
                    continue
                payment = pos.szi * oracle * rate
                acct.balance -= payment
                pos.funding_all_time += payment
                pos.funding_since_open += payment
                pos.funding_since_change += payment
                meta = self.coin_meta(coin)
                acct.funding.append({
                    "delta": {
                        "coin": coin,
                        "fundingRate": fmt.num(rate, 12),
                        "nSamples": None,
                        "szi": fmt.sz(pos.szi, meta.sz_decimals if meta else 8),
                        "type": "funding",
                        "usdc": fmt.usd(-payment),
                    },
                    "hash": _hash_hex("funding", acct.address, coin, hour),
                    "time": hour,
                })

    def _fill_resting(self, now: int) -> None:
        """Resting orders the new book trades through fill at their own price as maker, oldest first."""
        for acct in self._accounts.values():
            for order in list(acct.open_orders()):
                if order.reduce_only:
                    szi = acct.szi(order.coin)
                    if szi == 0 or (szi > 0) == order.is_buy:
                        self._close_order(acct, order, "reduceOnlyCanceled", now)
                        continue
                bids, asks = self._book(order.coin)
                levels = asks if order.is_buy else bids
                qty = min(order.remaining, crossing_depth(levels, order.is_buy, order.limit_px))
                if order.reduce_only:
                    qty = min(qty, abs(acct.szi(order.coin)))
                qty = floor_sz(qty, order.sz_decimals)
                if qty <= 0:
                    continue
                tx_hash = _hash_hex("maker", order.oid, now)
                self._fill(acct, order, order.limit_px, qty, crossed=False, tx_hash=tx_hash, now=now)
                side = "ask" if order.is_buy else "bid"
                for px, sz in walk(levels, order.is_buy, order.limit_px, qty, order.sz_decimals):
                    self._liquidity.take(order.coin, side, px, sz)
                if order.remaining <= EPS:
                    order.remaining = 0.0
                    self._close_order(acct, order, "filled", now)

    def _liquidate(self, now: int) -> None:
        """Cross-margin liquidation, simplified: once account value falls below maintenance margin, open orders
        are canceled (`liquidatedCanceled`) and every position is closed at the mark as a taker, the fill rows
        carrying a `liquidation` object like the live ones."""
        for acct in self._accounts.values():
            if not any(p.szi for p in acct.positions.values()):
                continue
            summary = self.summary(acct)
            if summary.account_value >= summary.maintenance_margin:
                continue
            self._cancel_all(acct, "liquidatedCanceled", now)
            for coin, pos in sorted(acct.positions.items()):
                mark = self.mark(coin)
                if pos.szi == 0 or mark is None:
                    continue
                meta = self.coin_meta(coin)
                size = abs(pos.szi)
                order = OrderRecord(self._next_oid, acct.address, coin, meta.asset_index, meta.sz_decimals,
                                    pos.szi < 0, mark, size, size, True, "Ioc", None, now, status_timestamp=now)
                self._next_oid += 1
                acct.orders[order.oid] = order
                extra = {"liquidation": {"liquidatedUser": acct.address, "markPx": fmt.px(mark), "method": "market"}}
                self._fill(acct, order, mark, size, crossed=True, tx_hash=_hash_hex("liquidation", acct.address, now),
                           now=now, extra=extra)
                order.remaining = 0.0
                order.status = "filled"

    def _settle_delisted(self, now: int) -> None:
        """A delisted perp settles (delisting.md): its open orders are canceled (`delistedCanceled`) and positions
        close at the last mark without a fee."""
        for acct in self._accounts.values():
            for order in acct.open_orders():
                meta = self.coin_meta(order.coin)
                if meta is not None and meta.is_delisted:
                    self._close_order(acct, order, "delistedCanceled", now)
            for coin, pos in sorted(acct.positions.items()):
                meta = self.coin_meta(coin)
                mark = self.mark(coin)
                if pos.szi == 0 or meta is None or not meta.is_delisted or mark is None:
                    continue
                size = abs(pos.szi)
                order = OrderRecord(self._next_oid, acct.address, coin, meta.asset_index, meta.sz_decimals,
                                    pos.szi < 0, mark, size, size, True, "Ioc", None, now, status_timestamp=now)
                self._next_oid += 1
                acct.orders[order.oid] = order
                self._fill(acct, order, mark, size, crossed=True, tx_hash=_hash_hex("delist", acct.address, coin),
                           now=now, fee_rate=0.0)  # settlement is not a trade: no fee
                order.remaining = 0.0
                order.status = "filled"
