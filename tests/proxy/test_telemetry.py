"""Access records must be events the hub accepts."""

import msgspec

from sentinel_stack.events.hub import HubEvent
from sentinel_stack.proxy.telemetry import AccessRecord


def test_an_access_record_carries_its_kind_on_the_wire():
    record = AccessRecord(
        time=1.0, source="proxy", request_id="r", method="GET", path="/", status=200, latency_ms=1.0
    )
    data = msgspec.json.encode(record)
    assert msgspec.json.decode(data)["kind"] == "access"
    assert msgspec.json.decode(data, type=HubEvent).kind == "access"
