"""The transfer state table: the Dataspace Protocol's moves, and a 409 for every other one."""

from datetime import UTC, datetime

import pytest

from gateway.core.errors import Problem
from gateway.transfers.models import Transfer
from gateway.transfers.service import MACHINE, advance

STATES = ["REQUESTED", "STARTED", "SUSPENDED", "COMPLETED", "TERMINATED"]
ACTIONS = ["start", "suspend", "resume", "complete", "interrupt", "terminate"]
ALLOWED = {
    ("REQUESTED", "start"): "STARTED",
    ("REQUESTED", "terminate"): "TERMINATED",
    ("STARTED", "suspend"): "SUSPENDED",
    ("STARTED", "complete"): "COMPLETED",
    ("STARTED", "terminate"): "TERMINATED",
    ("STARTED", "interrupt"): "TERMINATED",
    ("SUSPENDED", "resume"): "STARTED",
    ("SUSPENDED", "terminate"): "TERMINATED",
}


def _transfer(state: str) -> Transfer:
    return Transfer(id="trf_x", state=state, updated_at=datetime(2026, 1, 1, tzinfo=UTC))


def test_the_table_is_the_dataspace_protocols():
    assert {(s, a): t for s, a, t in MACHINE.table()} == ALLOWED


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("action", ACTIONS)
def test_every_move_outside_the_table_is_a_transfer_state_conflict(state, action):
    transfer = _transfer(state)
    if (state, action) in ALLOWED:
        assert advance(transfer, action) == state
        assert transfer.state == ALLOWED[(state, action)]
        return
    with pytest.raises(Problem) as refused:
        advance(transfer, action)
    assert refused.value.status == 409 and refused.value.slug == "transfer-state-conflict"
    assert refused.value.extensions["current_state"] == state
    assert transfer.state == state
