"""Who may see what (pure): the ``auth.collections`` and ``auth.backends`` rules applied to a user.

- no rule for a collection: everyone who may use the gateway (anonymous users too, unless
  ``anonymous: false``);
- a rule: a signed-in user holding any of its ``entitlements`` or belonging to any of its
  ``groups``; a rule listing neither admits any signed-in user;
- a backend rule hides that backend from users it does not admit: its items (and its copies of
  products other backends hold) are left out of what they get, and a collection served only by
  hidden backends is hidden too.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from mqs.auth.config import AccessRule, AuthConfig
from mqs.auth.errors import Forbidden, Unauthorized
from mqs.auth.principal import Principal


def admits(rule: AccessRule, principal: Principal | None) -> bool:
    if principal is None:
        return False
    if not rule.entitlements and not rule.groups:
        return True
    return bool(principal.entitlements.intersection(rule.entitlements)) or bool(
        principal.groups.intersection(rule.groups)
    )


def hidden_backends(config: AuthConfig, principal: Principal | None) -> frozenset[str]:
    """The backends whose rules do not admit the user."""
    return frozenset(bid for bid, rule in config.backends.items() if not admits(rule, principal))


def may_see(
    config: AuthConfig,
    collection: str,
    principal: Principal | None,
    serving: Collection[str] = (),
) -> bool:
    """Whether the user may see ``collection`` (served by the backends ``serving``)."""
    if principal is None and not config.anonymous:
        return False
    rule = config.collections.get(collection)
    if rule is not None and not admits(rule, principal):
        return False
    hidden = hidden_backends(config, principal)
    return not serving or any(bid not in hidden for bid in serving)


def check(
    config: AuthConfig,
    collection: str,
    principal: Principal | None,
    serving: Collection[str] = (),
) -> None:
    """Returns when ``principal`` may see ``collection``: else 401 (no user) or 403."""
    if may_see(config, collection, principal, serving):
        return
    if principal is None:
        raise Unauthorized("this collection needs a signed-in user: send a bearer token")
    raise Forbidden("your entitlements do not include this collection")


def visible(
    config: AuthConfig,
    collections: Iterable[str],
    principal: Principal | None,
    serving: Mapping[str, Collection[str]] | None = None,
) -> tuple[str, ...]:
    """The collections of ``collections`` the user may see, in their order."""
    serving = serving or {}
    return tuple(c for c in collections if may_see(config, c, principal, serving.get(c, ())))
