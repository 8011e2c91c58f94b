from __future__ import annotations

import aiohttp

from helpers import config, running_proxy, start_backend


async def test_proxies_a_request_to_the_only_backend() -> None:
    backend = await start_backend("solo")
    try:
        data = config({"solo": [backend.url]}, {"all": {"weights": {"solo": 1}}})
        async with running_proxy(data) as proxy, aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{proxy.port}/hello?x=1") as response:
                assert response.status == 200
                assert await response.text() == "solo"
        assert [seen.path for seen in backend.seen] == ["/hello?x=1"]
    finally:
        await backend.stop()
