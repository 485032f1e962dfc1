"""The yearly disclosure from the settlement (issue 12 item 8): per product the fees actually
charged in the year's closed periods, the voucher part and the refunds, not contract prices;
which months are closed; complete once December is."""

from tests.e2e import test_settlement as base
from tests.e2e.test_settlement import _refresh

vouchers = base.vouchers  # a priced November with a government body's vouchers


def test_the_disclosure_shows_the_fees_charged_vouchers_and_refunds_of_the_closed_periods(
    vouchers, client
):
    world, _, contract, _, frozen = vouchers
    product_id = contract["product_id"]
    open_year = client.get("/disclosure/2026").json()
    assert open_year["settlement"]["closed_periods"] == []
    assert open_year["settlement"]["complete"] is False
    assert open_year["settlement"]["publish_by"] == "2027-03-31"
    fees = {p["id"]: p["fees"] for p in open_year["products"]}[product_id]
    assert fees["contract_fees_fen"] == 1000  # the contract's flat price, as before
    assert fees["charged_fen"] == 0 and fees["invoices"] == 0  # nothing settled yet

    world.admin.call("POST", "/settlement/periods/2026-11/close")
    refund = world.merchant.call(
        "POST", "/settlement/refunds",
        json={"contract_id": contract["id"], "invoice_id": f"inv_2026-11_{contract['id']}",
              "amount_fen": 145, "reason": "an outage on 12 November"},
    )  # fmt: skip
    assert refund.status_code == 201, refund.text
    november = client.get("/disclosure/2026").json()
    fees = {p["id"]: p["fees"] for p in november["products"]}[product_id]
    # What was charged (1,145 fen: flat, per call, per 1,000 rows, tiers), not the price.
    assert (fees["invoices"], fees["charged_fen"], fees["voucher_fen"]) == (1, 1145, 500)
    assert fees["refunded_fen"] == 0  # the refund is December's credit note, not closed yet
    assert november["settlement"]["closed_periods"] == ["2026-11"]
    assert "2026-12" in november["settlement"]["open_periods"]
    assert november["settlement"]["complete"] is False

    frozen.move_to("2027-01-01T00:00:00Z")
    _refresh(world)
    world.admin.call("POST", "/settlement/periods/2026-12/close")
    year = client.get("/disclosure/2026").json()
    fees = {p["id"]: p["fees"] for p in year["products"]}[product_id]
    assert (fees["charged_fen"], fees["voucher_fen"], fees["refunded_fen"]) == (1145, 500, 145)
    assert fees["net_fen"] == 1000
    assert year["settlement"]["closed_periods"] == ["2026-11", "2026-12"]
    assert year["settlement"]["complete"] is True
    assert year["totals"]["charged_fen"] == 1145 and year["totals"]["refunded_fen"] == 145
    # The old members are all still there (the portal's page reads them).
    assert {"contracts", "contract_fees_fen", "exchanges", "rows_delivered"} <= set(fees)
    page = client.get("/disclosure/2026.html").text
    assert "¥11.45" in page and "¥1.45" in page and "2026-11, 2026-12" in page
    assert "complete: December is closed" in page
