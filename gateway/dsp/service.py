"""DSP 2025-1 messages from our objects, and our requests from DSP messages (no I/O here).

The mapping (specs/dsp.md has the whole table):

- a listed product is a `Dataset` (its id is the product id); each of its offers is an ODRL
  `Offer` in the dataset's `hasPolicy` (its id is the offer id); each delivery mode is a
  `Distribution` served by the gateway's `DataService`;
- a contract is a `ContractNegotiation` (its `providerPid` is the contract id) and, once
  FINALIZED, its document is the ODRL `Agreement`;
- errors are DSP's `…Error` messages carrying the RFC 9457 members too.
"""

from typing import Any

from contracts import ContractState
from contracts.offer import Offer
from gateway.core import clock
from gateway.core.errors import Problem, problem_type
from gateway.dataplane.encoders import JSONL
from gateway.dsp.models import DSGW_TERMS, PATH, VERSION, message
from gateway.negotiation.models import Contract
from gateway.products.models import Product, ProductOffer
from gateway.transfers.models import DataToken, Transfer

FORMATS = {"api": "HttpData-PULL", "file": "HttpData-PULL", "compute": "HttpData-PULL"}

# Our contract states seen through DSP: the negotiation ended (FINALIZED) for a suspended
# agreement; a revoked or expired one is over (TERMINATED). The rest are DSP's own names.
_DSP_STATE = {
    ContractState.SUSPENDED: "FINALIZED",
    ContractState.REVOKED: "TERMINATED",
    ContractState.EXPIRED: "TERMINATED",
}


def versions(base_path: str = "") -> dict[str, Any]:
    """Return the body of `/.well-known/dspace-version`."""
    return {
        "protocolVersions": [
            {"version": VERSION, "path": f"{base_path}{PATH}", "binding": "HTTPS"},
        ]
    }


def bad_message(detail: str) -> Problem:
    """Return the 400 problem for a DSP message that is not one we can read."""
    return Problem(400, "dsp-invalid-message", "Invalid DSP message", detail)


def _constraint(left: str, operator: str, right: Any) -> dict[str, Any]:
    return {"leftOperand": left, "operator": operator, "rightOperand": right}


def odrl_offer(stored: ProductOffer, *, target: str | None = None) -> dict[str, Any]:
    """Return one of our offers as a DSP ODRL `Offer` (no `target` inside a dataset)."""
    offer = Offer.model_validate(stored.terms)
    purposes = list(offer.purposes)
    constraints = [
        _constraint("odrl:purpose", "eq", purposes[0])
        if len(purposes) == 1
        else _constraint("odrl:purpose", "isAnyOf", purposes)
    ]
    if offer.quota_calls is not None:
        constraints.append(_constraint("odrl:count", "lteq", offer.quota_calls))
    policy: dict[str, Any] = {
        "@id": stored.id,
        "@type": "Offer",
        "permission": [{"action": "use", "constraint": constraints}],
        DSGW_TERMS + "terms": {"@value": stored.terms, "@type": "@json"},
    }
    if target is not None:
        policy["target"] = target
    return policy


def dataset(base: str, product: Product, offers: list[ProductOffer]) -> dict[str, Any]:
    """Return a listed product as a DSP `Dataset` (without `@context`)."""
    return {
        "@id": product.id,
        "@type": "Dataset",
        "dct:title": product.name,
        "dct:description": product.description,
        DSGW_TERMS + "grade": product.grade,
        DSGW_TERMS + "merchant": product.merchant_id,
        "hasPolicy": [odrl_offer(o) for o in offers],
        "distribution": [
            {
                "@type": "Distribution",
                "format": FORMATS.get(mode, "HttpData-PULL"),
                DSGW_TERMS + "deliveryMode": mode,
                "accessService": data_service(base),
            }
            for mode in product.delivery_modes
        ],
    }


def data_service(base: str) -> dict[str, Any]:
    """Return the gateway's DSP `DataService` (its transfer endpoint)."""
    return {"@id": f"{base}{PATH}", "@type": "DataService", "endpointURL": f"{base}{PATH}"}


def catalog(
    base: str, participant_id: str, pairs: list[tuple[Product, list[ProductOffer]]]
) -> dict[str, Any]:
    """Return one page of datasets as a DSP `Catalog` message."""
    body = message(
        "Catalog",
        **{"@id": f"{base}{PATH}/catalog"},
        participantId=participant_id,
        service=[data_service(base)],
    )
    datasets = [dataset(base, p, offers) for p, offers in pairs if offers]
    if datasets:  # DSP: `dataset`, when present, has at least one item
        body["dataset"] = datasets
    return body


def dataset_message(base: str, product: Product, offers: list[ProductOffer]) -> dict[str, Any]:
    """Return a product as the body of `GET /catalog/datasets/{id}`."""
    return {**message("Dataset"), **dataset(base, product, offers)}


def dsp_state(contract: Contract) -> str:
    """Return the DSP negotiation state of a contract."""
    state = ContractState(contract.state)
    return _DSP_STATE.get(state, state.value)


def negotiation(contract: Contract, consumer_pid: str) -> dict[str, Any]:
    """Return a contract as a DSP `ContractNegotiation` message."""
    return message(
        "ContractNegotiation",
        providerPid=contract.id,
        consumerPid=consumer_pid,
        state=dsp_state(contract),
    )


def error_body(type_: str, problem: Problem, **pids: str) -> dict[str, Any]:
    """Return a DSP error message (`CatalogError`, `ContractNegotiationError`, …) that also
    carries the RFC 9457 members of `problem` (the DSP context leaves them out when expanded)."""
    return {
        **message(type_, **pids),
        "code": str(problem.status),
        "reason": [problem.detail],
        "type": problem_type(problem.slug),
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        **{k: v for k, v in problem.extensions.items() if k not in ("type", "code", "reason")},
    }


def text(body: dict[str, Any], *names: str) -> str | None:
    """Return the first string member of `body` among `names` (compact or `dspace:` forms)."""
    for name in names:
        for key in (name, f"dspace:{name}", f"https://w3id.org/dspace/2025/1/{name}"):
            value = body.get(key)
            if isinstance(value, dict) and isinstance(value.get("@id"), str):
                value = value["@id"]
            if isinstance(value, str) and value:
                return value
    return None


def expect_type(body: Any, *types: str) -> dict[str, Any]:
    """Return `body` if it is a JSON object of one of the DSP `types`, else raise 400."""
    if not isinstance(body, dict):
        raise bad_message("a DSP message is a JSON object")
    found = body.get("@type")
    names = {t for t in types} | {f"dspace:{t}" for t in types}
    if found not in names:
        raise bad_message(f"expected a {' or '.join(types)}, found @type {found!r}")
    return body


def requested_purpose(message_body: dict[str, Any], offer: Offer) -> str:
    """Return the purpose a ContractRequestMessage asks for: the one named in its offer's
    `odrl:purpose eq` constraint, else the offer's only purpose; raise 400 when it is unclear."""
    named: list[str] = []
    policy = message_body.get("offer")
    rules = policy.get("permission", []) if isinstance(policy, dict) else []
    for rule in rules if isinstance(rules, list) else []:
        constraints = rule.get("constraint", []) if isinstance(rule, dict) else []
        for c in constraints if isinstance(constraints, list) else []:
            if (
                isinstance(c, dict)
                and c.get("leftOperand") in ("purpose", "odrl:purpose")
                and c.get("operator") in ("eq", "odrl:eq")
                and isinstance(c.get("rightOperand"), str)
            ):
                named.append(c["rightOperand"])
    if named:
        return named[0]
    if len(offer.purposes) == 1:
        return offer.purposes[0]
    raise bad_message(
        f"the offer allows several purposes {list(offer.purposes)}: name one in a permission "
        "constraint (leftOperand odrl:purpose, operator eq)"
    )


def transfer_process(transfer: Transfer, consumer_pid: str) -> dict[str, Any]:
    """Return a transfer as a DSP `TransferProcess` message (our states are DSP's names)."""
    return message(
        "TransferProcess",
        providerPid=transfer.id,
        consumerPid=consumer_pid,
        state=transfer.state,
    )


def start_message(transfer: Transfer, consumer_pid: str, data: DataToken | None) -> dict:
    """Return the TransferStartMessage for a started pull: where to pull, and its token."""
    body = message("TransferStartMessage", providerPid=transfer.id, consumerPid=consumer_pid)
    if data is not None:
        body["dataAddress"] = {
            "@type": "DataAddress",
            "endpointType": "https://w3id.org/idsa/v4.1/HTTP",
            "endpoint": data.endpoint,
            "endpointProperties": [
                {"@type": "EndpointProperty", "name": "authorization", "value": data.token},
                {"@type": "EndpointProperty", "name": "authType", "value": "bearer"},
                {"@type": "EndpointProperty", "name": "expiresAt", "value": data.expires_at},
            ],
        }
    return body


def pull_format(value: str | None) -> str:
    """Return our pull format for a DSP `format` (`HTTP-PULL`, `HttpData-PULL`), else raise
    400: dsgw serves pulls over DSP (a push needs a sink with credentials, our API's business)."""
    if value is None or not value.upper().rsplit(":", 1)[-1].endswith("PULL"):
        raise bad_message(
            f"format {value!r}: dsgw serves DSP transfers as pulls (HTTP-PULL / HttpData-PULL); "
            "a push to a sink is requested through POST /transfers"
        )
    return JSONL


def agreement_message(contract: Contract, consumer_pid: str) -> dict[str, Any]:
    """Return the ContractAgreementMessage of an AGREED contract: the ODRL `Agreement`, with our
    contract document and the provider's JWS the consumer countersigns to verify it."""
    document = contract.document
    purposes = [contract.purpose]
    return message(
        "ContractAgreementMessage",
        providerPid=contract.id,
        consumerPid=consumer_pid,
        agreement={
            "@id": contract.id,
            "@type": "Agreement",
            "target": contract.product_id,
            "assigner": contract.provider_id,
            "assignee": contract.consumer_id,
            "timestamp": clock.rfc3339(clock.as_utc(contract.updated_at)),
            "permission": [
                {
                    "action": "use",
                    "constraint": [_constraint("odrl:purpose", "eq", p) for p in purposes],
                }
            ],
            DSGW_TERMS + "contract": {"@value": document, "@type": "@json"},
            DSGW_TERMS + "documentHash": contract.document_hash,
            DSGW_TERMS + "providerSignature": contract.provider_signature or "",
        },
    )


def termination_message(type_: str, provider_pid: str, consumer_pid: str, reason: str) -> dict:
    """Return a provider's ContractNegotiationTerminationMessage or TransferTerminationMessage
    (or TransferSuspensionMessage) for the consumer's callback."""
    body = message(type_, providerPid=provider_pid, consumerPid=consumer_pid, code="provider")
    if reason:
        body["reason"] = [reason]
    return body


def offer_message(contract: Contract, consumer_pid: str, stored: ProductOffer) -> dict[str, Any]:
    """Return the provider's ContractOfferMessage: the product offer the contract now stands
    on, as an ODRL `Offer` with its target and parties."""
    policy = odrl_offer(stored, target=contract.product_id)
    policy["assigner"] = contract.provider_id
    policy["assignee"] = contract.consumer_id
    return message(
        "ContractOfferMessage", providerPid=contract.id, consumerPid=consumer_pid, offer=policy
    )


def event_message(contract: Contract, consumer_pid: str, event_type: str) -> dict[str, Any]:
    """Return a provider's ContractNegotiationEventMessage (FINALIZED once the gateway
    countersigned the verified contract)."""
    return message(
        "ContractNegotiationEventMessage",
        providerPid=contract.id,
        consumerPid=consumer_pid,
        eventType=event_type,
    )


def completion_message(transfer: Transfer, consumer_pid: str) -> dict[str, Any]:
    """Return the provider's TransferCompletionMessage."""
    return message("TransferCompletionMessage", providerPid=transfer.id, consumerPid=consumer_pid)
