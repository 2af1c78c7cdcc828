"""What sign-in costs per request: ``GET /backends`` anonymous, with a JWT, with an opaque token.

Runs a gateway (one STAC emulator, never asked by ``/backends``) trusting the test issuer of
``tests/oidc_issuer.py`` on loopback, warms the caches (JWKS, userinfo, introspection) and
times sequential requests from one client. Prints the median and p95 latency of each case and
the issuer requests they caused (after warm-up: none expected).

    .venv/bin/python benchmarks/auth_overhead.py [--requests 500]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from oidc_issuer import VO_MEMBER, serving_issuers  # noqa: E402

from mqs.app import create_app  # noqa: E402
from mqs.config import Settings, parse_config  # noqa: E402
from mqs.serving import bound_socket, serving_in_thread, url_of  # noqa: E402


def timed(client: httpx.Client, headers: dict[str, str], count: int) -> list[float]:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        response = client.get("/backends", headers=headers)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.text
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500)
    count = parser.parse_args().requests
    with serving_issuers(1) as (issuer,):
        os.environ["MQS_BENCH_CLIENT_ID"] = issuer.client_id
        os.environ["MQS_BENCH_CLIENT_SECRET"] = issuer.client_secret
        introspection = {
            "client_id_env": "MQS_BENCH_CLIENT_ID",
            "client_secret_env": "MQS_BENCH_CLIENT_SECRET",
        }
        config = parse_config(
            {
                "collections": {"sentinel-2-l2a": {}},
                "backends": [
                    {
                        "id": "a",
                        "kind": "stac",
                        "url": "http://127.0.0.1:9",
                        "collections": ["sentinel-2-l2a"],
                    }
                ],
                "auth": {
                    "issuers": [
                        {
                            "url": issuer.url,
                            "audience": "mqs",
                            "userinfo": True,
                            "introspection": introspection,
                        }
                    ],
                    "collections": {"sentinel-2-l2a": {"entitlements": [VO_MEMBER]}},
                },
            }
        )
        sock = bound_socket()
        app = create_app(config, Settings(token_secret="bench"))
        with serving_in_thread([(app, sock)]), httpx.Client(base_url=url_of(sock)) as client:
            sub = issuer.user(entitlements=[VO_MEMBER]).sub
            cases = {
                "anonymous": {},
                "jwt (RS256)": {"Authorization": f"Bearer {issuer.token(sub)}"},
                "jwt (ES256)": {"Authorization": f"Bearer {issuer.token(sub, alg='ES256')}"},
                "opaque": {"Authorization": f"Bearer {issuer.opaque_token(sub)}"},
            }
            for headers in cases.values():
                timed(client, headers, 20)  # warm-up: JWKS, userinfo, introspection cached
            before = sum(issuer.counts.values())
            results: dict[str, list[float]] = {name: [] for name in cases}
            for _ in range(count):  # interleaved: every case sees the same machine load
                for name, headers in cases.items():
                    results[name] += timed(client, headers, 1)
            print(f"{count} sequential GET /backends per case, interleaved (ms)")
            for name, times in results.items():
                times.sort()
                p95 = times[int(len(times) * 0.95)]
                print(f"  {name:12} median {statistics.median(times):6.2f}  p95 {p95:6.2f}")
            print(f"issuer requests after warm-up: {sum(issuer.counts.values()) - before}")


if __name__ == "__main__":
    main()
