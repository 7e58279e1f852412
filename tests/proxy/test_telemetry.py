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


async def test_access_records_name_the_client_the_agents_saw(short_dir) -> None:
    """Behind a trusted proxy the client is the X-Forwarded-For hop, not the socket peer
    (which the record keeps as `peer_ip`); an untrusted peer's header is ignored."""
    import httpx

    from tests.proxy.e2e import free_port
    from tests.proxy.proxyproc import fake_upstream, proxy_config, run_proxy

    headers = {"X-Forwarded-For": "198.51.100.23"}
    async with fake_upstream(short_dir) as upstream:
        for case, (trusted, client, peer) in enumerate(
            ((["127.0.0.1/32"], "198.51.100.23", "127.0.0.1"), ([], "127.0.0.1", None))
        ):
            port, admin = free_port(), free_port()
            config = proxy_config(port, admin, upstream, trusted_proxies=trusted)
            (short_dir / str(case)).mkdir()
            async with run_proxy(short_dir / str(case), config, port, admin) as proxy:
                async with httpx.AsyncClient(timeout=10) as http:
                    assert (await http.get(f"{proxy.url}/x", headers=headers)).status_code == 200
                await proxy.wait_records(1)
                record = proxy.records[0]
                assert record["client_ip"] == client
                assert record.get("peer_ip") == peer
