"""The demo's cast, built over HTTP, for tests to act in."""

import random
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient

from gateway.demo import FIELDS, RESIDENTS, Party, random_uscc
from gateway.participants.service import PLATFORM_ADMIN_ID
from ledger import Signer, load_or_create_signer

PURPOSE = "credit-risk-assessment"


@dataclass
class World:
    client: TestClient
    admin: Party
    holder: Party
    merchant: Party
    consumer: Party
    auditor: Party
    resource: dict
    core_resource: dict
    authorisation: dict
    product: dict
    core_product: dict

    def register(self, name: str, roles: list[str], region: str = "domestic") -> Party:
        """Register one more participant and return it as a party."""
        return register_party(self.admin, name, roles, region)

    def publish(self, *, resource: dict | None = None, offers: list[dict], **extra) -> dict:
        """Publish a product from `resource` (default: the L3 resource) and return it."""
        body = {
            "name": "product",
            "resource_id": (resource or self.resource)["id"],
            "authorisation_id": (resource or {}).get(
                "authorisation_id", self.authorisation["id"]
            ),
            "delivery_modes": ["api"],
            "offers": offers,
            **extra,
        }
        response = self.merchant.call("POST", "/products", json=body)
        assert response.status_code == 201, response.text
        return self.list_product(response.json()["id"])

    def list_product(self, product_id: str) -> dict:
        """Walk a draft through review to listed: the merchant submits, the admin lists."""
        for party, action in ((self.merchant, "submit"), (self.admin, "list")):
            response = party.call("POST", f"/products/{product_id}/{action}")
            assert response.status_code == 200, response.text
        return response.json()

    def add_resource(self, **body) -> dict:
        """Register one more resource of the holder's, covered by the world's authorisation."""
        applied = self.holder.call("POST", "/resources", json=body)
        assert applied.status_code == 201, applied.text
        resource = register_resource(self.admin, self.holder, applied)
        granted = self.holder.call(
            "POST",
            "/authorisations",
            json={
                "operator_id": self.merchant.id,
                "resource_ids": [resource.json()["id"]],
                "not_after": "2099-01-01T00:00:00Z",
                "fee_cap_fen": 500_000,
            },
        )
        assert granted.status_code == 201, granted.text
        return {**resource.json(), "authorisation_id": granted.json()["id"]}

    def contract(
        self, offer_id: str, purpose: str = PURPOSE, consumer: Party | None = None
    ) -> dict:
        """Negotiate a contract to FINALIZED and return it."""
        consumer = consumer or self.consumer
        requested = consumer.call(
            "POST", "/contracts", json={"offer_id": offer_id, "purpose": purpose}
        )
        assert requested.status_code == 201, requested.text
        doc = requested.json()["document"]
        agreed = self.merchant.call(
            "POST",
            f"/contracts/{requested.json()['id']}/agree",
            json={"signature": self.merchant.sign(doc)},
        )
        assert agreed.status_code == 200, agreed.text
        verified = consumer.call(
            "POST",
            f"/contracts/{requested.json()['id']}/verify",
            json={"signature": consumer.sign(doc)},
        )
        assert verified.status_code == 200, verified.text
        return verified.json()

    def pull(
        self, contract_id: str, purpose: str = PURPOSE, consumer: Party | None = None, **extra
    ):
        """Ask for rows under a contract; return the raw response."""
        return (consumer or self.consumer).call(
            "POST", "/exchanges", json={"contract_id": contract_id, "purpose": purpose, **extra}
        )


def register_party(admin: Party, name: str, roles: list[str], region: str = "domestic") -> Party:
    """Have the admin onboard a participant with a fresh key; return it as a party."""
    key = Signer.generate()
    body = {
        "name": name,
        "uscc": random_uscc(random.Random()),
        "roles": roles,
        "region": region,
        "jwks": {"keys": [key.public_jwk()]},
    }
    response = admin.call("POST", "/participants", json=body)
    assert response.status_code == 201, response.text
    return Party(admin.client, name, key, response.json()["id"])


def register_resource(admin: Party, holder: Party, applied, window_seconds: int = 0):
    """Walk an applied resource through registration (登记) to coded; return its GET response."""
    registration = applied.json()["registration"]["id"]
    for step, payload in [
        ("accept", None),
        ("review", None),
        ("publicise", {"window_seconds": window_seconds}),
        ("code", None),
    ]:
        done = admin.call("POST", f"/registrations/{registration}/{step}", json=payload)
        assert done.status_code == 200, done.text
    return holder.call("GET", f"/resources/{applied.json()['id']}")


OFFER = {"purposes": [PURPOSE], "term": "P30D", "quota_rows": 1000, "price_fen": 120_000}


def build_world(client: TestClient, state_dir: Path) -> World:
    """Register the cast, a graded resource with personal fields, a core one, and products."""
    admin = Party(
        client,
        "admin",
        load_or_create_signer(state_dir / "keys" / "admin-ed25519.jwk"),
        PLATFORM_ADMIN_ID,
    )
    holder = register_party(admin, "holder", ["holder"])
    merchant = register_party(admin, "merchant", ["operator", "merchant"])
    consumer = register_party(admin, "consumer", ["consumer"])
    auditor = register_party(admin, "auditor", ["auditor"])
    resource = holder.call(
        "POST",
        "/resources",
        json={
            "name": "resident credit",
            "domain": "finance",
            "grade": "general",
            "level": "L3",
            "fields": FIELDS,
            "rows": RESIDENTS,
        },
    )
    assert resource.status_code == 201, resource.text
    core = holder.call(
        "POST",
        "/resources",
        json={
            "name": "grid",
            "domain": "energy",
            "grade": "core",
            "fields": [{"name": "substation"}, {"name": "load_mw"}],
            "rows": [{"substation": "north", "load_mw": 812}],
        },
    )
    assert core.status_code == 201, core.text
    resource, core = (register_resource(admin, holder, r) for r in (resource, core))
    authorisation = holder.call(
        "POST",
        "/authorisations",
        json={
            "operator_id": merchant.id,
            "resource_ids": [resource.json()["id"], core.json()["id"]],
            "not_after": "2099-01-01T00:00:00Z",
            "fee_cap_fen": 500_000,
        },
    )
    assert authorisation.status_code == 201, authorisation.text
    world = World(
        client,
        admin,
        holder,
        merchant,
        consumer,
        auditor,
        resource.json(),
        core.json(),
        authorisation.json(),
        {},
        {},
    )
    world.product = world.publish(offers=[OFFER, {**OFFER, "term": "PT2S", "price_fen": 0}])
    world.core_product = world.publish(
        resource=world.core_resource, offers=[{"purposes": ["grid-research"], "term": "P7D"}]
    )
    return world
