"""Bodies stream through the proxy without buffering: memory stays flat for huge bodies."""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from helpers import config, proxy_process, running_proxy, start_backend

MIB = 1024 * 1024
HUGE = 256 * MIB
CHUNK = bytes(range(256)) * 4096  # 1 MiB of a recognisable pattern


async def generate(total: int) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        piece = CHUNK[: min(len(CHUNK), total - sent)]
        sent += len(piece)
        yield piece


def expected_digest(total: int) -> str:
    digest = hashlib.sha256()
    for _ in range(total // len(CHUNK)):
        digest.update(CHUNK)
    digest.update(CHUNK[: total % len(CHUNK)])
    return digest.hexdigest()


@pytest.mark.slow
async def test_256_mib_each_way_keeps_the_proxy_rss_flat() -> None:
    received = {"bytes": 0, "digest": ""}

    async def sink(request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            digest = hashlib.sha256()
            async for piece in request.content.iter_chunked(MIB):
                digest.update(piece)
                received["bytes"] += len(piece)
            received["digest"] = digest.hexdigest()
            return web.Response(text="stored")
        response = web.StreamResponse(headers={"Content-Length": str(HUGE)})
        await response.prepare(request)
        async for piece in generate(HUGE):
            await response.write(piece)
        await response.write_eof()
        return response

    backend = await start_backend("big", sink)
    try:
        data = config({"big": [backend.url]}, {"all": {"weights": {"big": 1}}})
        with proxy_process(data) as proxy:
            url = f"http://127.0.0.1:{proxy.port}/blob"
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
                # Warm up so that the baseline includes the interpreter's steady state.
                async with session.get(url + "?warm", headers={"Range": "bytes=0-0"}) as r:
                    await r.content.read(MIB)
                baseline = proxy.rss_kib()

                # Upload, chunked (no Content-Length): 256 MiB the proxy must not hold.
                async with session.post(url, data=generate(HUGE)) as response:
                    assert response.status == 200
                    assert await response.text() == "stored"
                assert received["bytes"] == HUGE
                assert received["digest"] == expected_digest(HUGE)

                # Download, Content-Length framed.
                digest = hashlib.sha256()
                total = 0
                async with session.get(url) as response:
                    assert response.headers["Content-Length"] == str(HUGE)
                    async for piece in response.content.iter_chunked(MIB):
                        digest.update(piece)
                        total += len(piece)
                assert total == HUGE
                assert digest.hexdigest() == expected_digest(HUGE)

                peak = proxy.rss_kib("VmHWM")
            growth_mib = (peak - baseline) / 1024
            assert growth_mib < 64, f"proxy RSS grew by {growth_mib:.1f} MiB"
    finally:
        await backend.stop()


async def test_chunked_download_is_relayed_chunked_and_complete() -> None:
    async def chunks(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for index in range(100):
            await response.write(b"%05d|" % index)
        await response.write_eof()
        return response

    backend = await start_backend("chunks", chunks)
    try:
        data = config({"chunks": [backend.url]}, {"all": {"weights": {"chunks": 1}}})
        async with running_proxy(data) as proxy, aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{proxy.port}/") as response:
                assert response.headers["Transfer-Encoding"] == "chunked"
                body = await response.read()
        assert body == b"".join(b"%05d|" % i for i in range(100))
    finally:
        await backend.stop()


async def test_upload_with_content_length_arrives_byte_exact() -> None:
    backend = await start_backend("store")
    payload = bytes(range(256)) * 40_000  # ~10 MiB
    try:
        data = config({"store": [backend.url]}, {"all": {"weights": {"store": 1}}})
        async with running_proxy(data) as proxy, aiohttp.ClientSession() as session:
            async with session.put(
                f"http://127.0.0.1:{proxy.port}/f", data=io.BytesIO(payload)
            ) as response:
                assert response.status == 200
        [seen] = backend.seen
        assert seen.header("Content-Length") == str(len(payload))
        assert seen.header("Transfer-Encoding") is None
        assert seen.body == payload
    finally:
        await backend.stop()
