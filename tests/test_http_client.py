"""The gateway's shared HTTP client (``mqs.runtime.http_client``): what is built is what is sent.

A small ASGI app on loopback records each request as it arrived; the client is the gateway's
own, so every request crosses real HTTP. What adapters quote for their backend's language must
reach the backend unchanged, and failures must be the httpx errors ``adapters/http.py`` tells
apart.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mqs.runtime import http_client
from mqs.serving import bound_socket, serving_in_thread

SEEN: list[dict[str, Any]] = []


async def recorder(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    SEEN.append(
        {
            "method": scope["method"],
            "raw_path": scope["raw_path"],
            "query": scope["query_string"],
            "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
            "body": body,
        }
    )
    path = scope["path"]
    if path == "/slow":
        await asyncio.sleep(2)
    if path == "/gzip":
        payload = gzip.compress(b'{"zipped": true}')
        headers = [(b"content-type", b"application/json"), (b"content-encoding", b"gzip")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
        return
    if path == "/cut":  # promises more than it sends, then the server drops the connection
        headers = [(b"content-length", b"1000")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"x" * 10, "more_body": True})
        raise RuntimeError("dropped")
    headers = [(b"content-type", b"text/plain"), (b"set-cookie", b"session=1")]
    await send({"type": "http.response.start", "status": 201, "headers": headers})
    await send({"type": "http.response.body", "body": b"chunk-1 ", "more_body": True})
    await send({"type": "http.response.body", "body": b"chunk-2"})


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serving_in_thread([(recorder, bound_socket())]) as urls:
        yield urls[0]


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _send(request: httpx.Request | None = None, **kwargs: Any) -> httpx.Response:
    async with http_client() as client:
        if request is None:
            request = client.build_request(**kwargs)
        response = await client.send(request)
        await response.aread()
        return response


def test_an_encoded_url_reaches_the_backend_byte_for_byte(server: str) -> None:
    # what adapters quote for their backend's language (OData, Solr) must not be re-quoted
    url = (
        f"{server}/odata/v1/Products('S2A%2F..%2Fx')/Nodes"
        "?$filter=substringof('a%27b',Name)%20and%20x%20eq%20'%3C%26%3E'&q=a+b&e=%7E"
    )
    response = _run(_send(method="GET", url=httpx.URL(url)))
    assert response.status_code == 201 and response.text == "chunk-1 chunk-2"
    seen = SEEN[-1]
    assert seen["raw_path"] == b"/odata/v1/Products('S2A%2F..%2Fx')/Nodes"
    assert seen["query"] == (
        b"$filter=substringof('a%27b',Name)%20and%20x%20eq%20'%3C%26%3E'&q=a+b&e=%7E"
    )


def test_headers_and_bodies_are_sent_as_built(server: str) -> None:
    body = b'{"limit": 3}'
    response = _run(
        _send(
            method="POST",
            url=f"{server}/search",
            content=body,
            headers={"Content-Type": "application/json", "Accept": "application/geo+json"},
        )
    )
    seen = SEEN[-1]
    assert response.status_code == 201 and seen["method"] == "POST" and seen["body"] == body
    headers = seen["headers"]
    assert headers["content-type"] == "application/json"
    assert headers["accept"] == "application/geo+json"
    assert headers["content-length"] == str(len(body))
    assert headers["user-agent"].startswith("mqs/")  # the gateway's own
    assert "cookie" not in headers  # no cookies kept from earlier answers


def test_a_streamed_request_body_is_sent_whole(server: str) -> None:
    async def parts() -> Any:
        for part in (b"one,", b"two,", b"three"):
            yield part

    async def send() -> httpx.Response:
        async with http_client() as client:
            request = client.build_request("POST", f"{server}/upload", content=parts())
            return await client.send(request)

    assert _run(send()).status_code == 201
    assert SEEN[-1]["body"] == b"one,two,three"


def test_a_compressed_answer_is_decoded_by_httpx(server: str) -> None:
    response = _run(_send(method="GET", url=f"{server}/gzip"))
    assert response.json() == {"zipped": True}


def test_failures_are_httpx_errors(server: str) -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{closed.getsockname()[1]}/x"
    with pytest.raises(httpx.ConnectError):
        _run(_send(method="GET", url=refused))
    with pytest.raises(httpx.ReadTimeout):
        _run(_send(method="GET", url=f"{server}/slow", timeout=httpx.Timeout(0.3)))
    with pytest.raises(httpx.RemoteProtocolError):
        _run(_send(method="GET", url=f"{server}/cut"))
    with pytest.raises(httpx.UnsupportedProtocol):
        _run(_send(method="GET", url="ftp://127.0.0.1/x"))
