"""The usage-contract model (数字合约): offers, negotiation states, canonical form, signatures.

A library: it never imports the gateway; of the ledger it uses only the one check of an Ed25519
public key (ledger.ed25519).
"""

from contracts.document import canonical_bytes, contract_document, contract_hash, rfc3339
from contracts.errors import ContractError, ContractSignatureError, InvalidTransition
from contracts.offer import Offer, to_odrl
from contracts.signing import (
    countersign,
    countersign_by_message,
    sign_contract,
    verify_contract_signature,
    verify_countersignature,
    verify_countersignature_by_message,
)
from contracts.states import (
    TERMINAL_STATES,
    TRANSITIONS,
    ContractState,
    allowed_next,
    check_transition,
    is_terminal,
)

__all__ = [
    "TERMINAL_STATES",
    "TRANSITIONS",
    "ContractError",
    "ContractSignatureError",
    "ContractState",
    "InvalidTransition",
    "Offer",
    "allowed_next",
    "canonical_bytes",
    "check_transition",
    "contract_document",
    "contract_hash",
    "countersign",
    "countersign_by_message",
    "is_terminal",
    "rfc3339",
    "sign_contract",
    "to_odrl",
    "verify_contract_signature",
    "verify_countersignature",
    "verify_countersignature_by_message",
]
