"""Authentication and access errors: STAC error bodies with the RFC 6750 challenge.

Descriptions are gateway phrases; they never contain a token, a claim value or a secret.
"""

from __future__ import annotations

import math

from mqs.errors import MQSError

REALM = "mqs"


class Unauthorized(MQSError):
    """No token where one is needed (``invalid_token`` is None) or a token that is refused."""

    status = 401
    code = "Unauthorized"

    def __init__(self, description: str, invalid_token: bool = False) -> None:
        super().__init__(description)
        self.invalid_token = invalid_token
        challenge = f'Bearer realm="{REALM}"'
        if invalid_token:
            safe = description.replace('"', "'")
            challenge += f', error="invalid_token", error_description="{safe}"'
        self.headers = {"WWW-Authenticate": challenge}


class Forbidden(MQSError):
    """A valid token whose user lacks the entitlement, group or assurance asked for."""

    status = 403
    code = "Forbidden"

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.headers = {"WWW-Authenticate": f'Bearer realm="{REALM}", error="insufficient_scope"'}


class IssuerUnavailable(MQSError):
    """The issuer (discovery, JWKS, introspection, userinfo) could not be asked: try later."""

    status = 503
    code = "ServiceUnavailable"

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.headers = {"Retry-After": "5"}


class RateLimited(MQSError):
    status = 429
    code = "TooManyRequests"

    def __init__(self, retry_after_s: float) -> None:
        seconds = max(1, math.ceil(retry_after_s))
        super().__init__(f"rate limit exceeded: retry after {seconds} s")
        self.headers = {"Retry-After": str(seconds)}
