"""Save and restore a `TradingEngine`'s state as plain JSON-able data, so a paper-trading exchange can be
restarted without losing accounts, positions, orders, fills, agents or nonce history.

The format is versioned; `load` refuses a version it does not know, or a malformed document, naming the problem.
"""

from __future__ import annotations

from dataclasses import asdict, fields

from gradient_pipeline.localexchange.accounts import Account, Position
from gradient_pipeline.localexchange.nonces import NonceBook
from gradient_pipeline.localexchange.orders import OrderRecord

VERSION = 1


class StateError(ValueError):
    """The saved state cannot be loaded; the message says what is wrong."""


def _account_to_dict(acct: Account) -> dict:
    return {
        "address": acct.address,
        "balance": acct.balance,
        "positions": {coin: asdict(p) for coin, p in acct.positions.items()},
        "leverage": dict(acct.leverage),
        "orders": [asdict(o) for o in acct.orders.values()],
        "open_oids": list(acct.open_oids),
        "cloids": dict(acct.cloids),
        "fills": list(acct.fills),
        "funding": list(acct.funding),
        "ledger": list(acct.ledger),
        "cum_volume": acct.cum_volume,
        "requests_used": acct.requests_used,
        "scheduled_cancel_ms": acct.scheduled_cancel_ms,
        "scheduled_cancel_days": {str(k): v for k, v in acct.scheduled_cancel_days.items()},
        "mode": acct.mode,
        "builders": dict(acct.builders),
    }


def _account_from_dict(d: dict) -> Account:
    order_fields = {f.name for f in fields(OrderRecord)}
    orders = {}
    for raw in d["orders"]:
        unknown = set(raw) - order_fields
        if unknown:
            raise StateError(f"account {d['address']}: order has unknown field(s) {sorted(unknown)}")
        order = OrderRecord(**raw)
        orders[order.oid] = order
    missing = [oid for oid in d["open_oids"] if oid not in orders]
    if missing:
        raise StateError(f"account {d['address']}: open order(s) {missing} are not among its orders")
    return Account(
        address=d["address"],
        balance=float(d["balance"]),
        positions={coin: Position(**p) for coin, p in d["positions"].items()},
        leverage={coin: int(v) for coin, v in d["leverage"].items()},
        orders=orders,
        open_oids=[int(o) for o in d["open_oids"]],
        cloids={k: int(v) for k, v in d["cloids"].items()},
        fills=list(d["fills"]),
        funding=list(d["funding"]),
        ledger=list(d["ledger"]),
        cum_volume=float(d["cum_volume"]),
        requests_used=int(d["requests_used"]),
        scheduled_cancel_ms=d["scheduled_cancel_ms"],
        scheduled_cancel_days={int(k): int(v) for k, v in d["scheduled_cancel_days"].items()},
        mode=str(d.get("mode", "default")),  # absent in documents saved before account modes existed
        builders={str(k): int(v) for k, v in d.get("builders", {}).items()},
    )


def dump(engine) -> dict:
    return {
        "version": VERSION,
        "last_ms": engine._last_ms,
        "next_oid": engine._next_oid,
        "next_tid": engine._next_tid,
        "accounts": [_account_to_dict(a) for a in engine._accounts.values()],
        "agents": dict(engine._agents),
        "named_agents": {m: dict(n) for m, n in engine._named_agents.items()},
        "agent_valid_until": dict(engine._agent_valid_until),
        "nonces": engine._nonces.to_dict(),
    }


def load(engine, state: dict) -> None:
    """Replace `engine`'s state with `state` (from `dump`). Nothing is changed if the document is invalid."""
    if not isinstance(state, dict) or state.get("version") != VERSION:
        got = state.get("version") if isinstance(state, dict) else type(state).__name__
        raise StateError(f"engine state: expected version {VERSION}, got {got!r}")
    try:
        accounts = {a["address"]: _account_from_dict(a) for a in state["accounts"]}
        agents = {str(k): str(v) for k, v in state["agents"].items()}
        named = {m: dict(n) for m, n in state["named_agents"].items()}
        valid_until = {str(k): int(v) for k, v in state.get("agent_valid_until", {}).items()}
        nonces = NonceBook.from_dict(state["nonces"])
        counters = int(state["last_ms"]), int(state["next_oid"]), int(state["next_tid"])
    except StateError:
        raise
    except (KeyError, TypeError, ValueError) as err:
        raise StateError(f"engine state: malformed document ({type(err).__name__}: {err})") from err
    dangling = sorted(set(agents.values()) - set(accounts))
    if dangling:
        raise StateError(f"engine state: agents point to unknown master(s) {dangling}")
    engine._accounts, engine._agents, engine._named_agents, engine._nonces = accounts, agents, named, nonces
    engine._agent_valid_until = valid_until
    engine._last_ms = counters[0]
    # never lower the id counters: ids already handed out by this process (or seeded from the clock) stay unique
    engine._next_oid, engine._next_tid = max(engine._next_oid, counters[1]), max(engine._next_tid, counters[2])
