"""Who signed an `/exchange` request, recovered exactly as the live exchange does, with the SDK's own code.

The SDK signs as testnet for any base URL other than mainnet's (phantom agent `source "b"`, user-signed
`hyperliquidChain "Testnet"`), so this exchange always recovers with `is_mainnet=False`. A wrong signature does not
fail here: it recovers some other address, which the caller then reports as an unknown user (the live behaviour).
"""

from __future__ import annotations

import copy

from hyperliquid.utils.signing import recover_agent_or_user_from_l1_action, recover_user_from_user_signed_action

from gradient_pipeline.localexchange.orders import BadRequest

APPROVE_AGENT_TYPES = [
    {"name": "hyperliquidChain", "type": "string"},
    {"name": "agentAddress", "type": "address"},
    {"name": "agentName", "type": "string"},
    {"name": "nonce", "type": "uint64"},
]
APPROVE_AGENT_PRIMARY = "HyperliquidTransaction:ApproveAgent"
APPROVE_BUILDER_TYPES = [  # the SDK's sign_approve_builder_fee
    {"name": "hyperliquidChain", "type": "string"},
    {"name": "maxFeeRate", "type": "string"},
    {"name": "builder", "type": "address"},
    {"name": "nonce", "type": "uint64"},
]
APPROVE_BUILDER_PRIMARY = "HyperliquidTransaction:ApproveBuilderFee"


def _signature(sig: object) -> dict:
    if not isinstance(sig, dict) or not all(k in sig for k in ("r", "s", "v")):
        raise BadRequest("signature must be {r, s, v}")
    try:
        return {"r": int(sig["r"], 16) if isinstance(sig["r"], str) else int(sig["r"]),
                "s": int(sig["s"], 16) if isinstance(sig["s"], str) else int(sig["s"]),
                "v": int(sig["v"])}
    except (TypeError, ValueError) as err:
        raise BadRequest(f"signature fields are not numbers: {err}") from err


def recover_l1_signer(action: dict, signature: object, vault_address: str | None, nonce: int,
                      expires_after: int | None) -> str:
    """The address (checksummed) that signed this L1 action; garbage in gives a random-looking address."""
    sig = _signature(signature)
    try:
        return recover_agent_or_user_from_l1_action(action, sig, vault_address, nonce, expires_after, False)
    except BadRequest:
        raise
    except Exception as err:  # msgpack/eth_account reject values they cannot encode
        raise BadRequest(f"cannot hash or recover the action: {err}") from err


def recover_approve_agent_signer(action: dict, signature: object) -> str:
    """The master that signed an `approveAgent`. The SDK signs with `agentName ""` and then deletes the key when
    no name was given, so it is put back before hashing (reference §4.2)."""
    sig = _signature(signature)
    signed = copy.deepcopy(action)
    signed.setdefault("agentName", "")
    if "signatureChainId" not in signed:
        raise BadRequest("approveAgent action lacks signatureChainId")
    try:
        return recover_user_from_user_signed_action(signed, sig, APPROVE_AGENT_TYPES, APPROVE_AGENT_PRIMARY, False)
    except Exception as err:
        raise BadRequest(f"cannot recover approveAgent signer: {err}") from err


def recover_approve_builder_signer(action: dict, signature: object) -> str:
    """The master that signed an `approveBuilderFee` (a user-signed action, like approveAgent)."""
    sig = _signature(signature)
    if "signatureChainId" not in action:
        raise BadRequest("approveBuilderFee action lacks signatureChainId")
    try:
        return recover_user_from_user_signed_action(copy.deepcopy(action), sig, APPROVE_BUILDER_TYPES,
                                                    APPROVE_BUILDER_PRIMARY, False)
    except Exception as err:
        raise BadRequest(f"cannot recover approveBuilderFee signer: {err}") from err
