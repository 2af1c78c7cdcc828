"""A DHuS emulator or a gateway in front of it, in its own process (tests/test_download_memory.py).

``python tests/serve_download.py emulator PORT SIZE`` serves one Sentinel-2 product whose
download is SIZE bytes, behind HTTP Basic (``MQS_TEST_DHUS_USER``/``MQS_TEST_DHUS_PASSWORD``);
``python tests/serve_download.py gateway PORT URL`` serves a gateway whose one backend is the
emulator at URL, with the same credentials from the environment. Each listens on 127.0.0.1:PORT
(0: any free port), prints its URL on the first line of stdout, then serves until terminated.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from factories import series

from adapters.dhus.emulator import create_emulator
from mqs.app import create_app
from mqs.config import Settings, parse_config
from mqs.serving import bound_socket, make_server, url_of

USER_ENV, PASSWORD_ENV = "MQS_TEST_DHUS_USER", "MQS_TEST_DHUS_PASSWORD"


def emulator(size: int) -> Any:
    credentials = (os.environ[USER_ENV], os.environ[PASSWORD_ENV])
    return create_emulator(series(1), credentials=credentials, product_size=size)


def gateway(backend_url: str) -> Any:
    config = parse_config(
        {
            "collections": {"sentinel-2-l2a": {"title": "S2 L2A"}},
            "cache": {"search_ttl_s": 0, "item_ttl_s": 0},
            "backends": [
                {
                    "id": "cesnet",
                    "kind": "dhus",
                    "url": backend_url,
                    "collections": ["sentinel-2-l2a"],
                    "auth": {
                        "type": "basic",
                        "username_env": USER_ENV,
                        "password_env": PASSWORD_ENV,
                    },
                }
            ],
        }
    )
    return create_app(config, Settings(token_secret="memory-test"))


def main() -> None:
    role, port, arg = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    app = emulator(int(arg)) if role == "emulator" else gateway(arg)
    sock = bound_socket(port=port)
    print(url_of(sock), flush=True)
    make_server(app, sock).run(sockets=[sock])


if __name__ == "__main__":
    main()
