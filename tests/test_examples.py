"""The shipped federation files and the README stay true to what the gateway accepts and serves.

Every example an operator may copy (``examples/*.yaml``, ``docker/federation.yaml``, the
Kubernetes ConfigMap's file) passes ``mqs config check``; the EOSC example's access rules admit
whom its comments say; the README's HTTP API table names every route the app serves and its
command-line section every ``mqs`` subcommand and flag.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
import yaml

from mqs.auth.policy import hidden_backends, visible
from mqs.auth.principal import Principal, groups_of
from mqs.cli import main, parser
from mqs.config import load_config
from mqs.openapi import demo_config, openapi_document

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
VO_MEMBER = "urn:mace:egi.eu:group:vo.example.eu:role=member#aai.egi.eu"


def _configmap_federation(tmp_path: Path) -> Path:
    """The federation file inside ``docker/k8s/configmap.yaml``, as a file of its own."""
    configmap = yaml.safe_load((ROOT / "docker" / "k8s" / "configmap.yaml").read_text())
    path = tmp_path / "configmap-federation.yaml"
    path.write_text(configmap["data"]["federation.yaml"])
    return path


@pytest.mark.parametrize(
    "path", [pytest.param(p, id=p.name) for p in EXAMPLES] + [ROOT / "docker" / "federation.yaml"]
)
def test_example_passes_config_check(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(path)]) == 0, capsys.readouterr().err
    assert ": OK (" in capsys.readouterr().out


def test_kubernetes_configmap_passes_config_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "check", str(_configmap_federation(tmp_path))]) == 0
    assert ": OK (" in capsys.readouterr().out


def test_examples_include_the_eosc_federation() -> None:
    assert {p.name for p in EXAMPLES} >= {"demo.yaml", "eosc.yaml"}


def _user(*entitlements: str) -> Principal:
    return Principal(
        key="user@egi.eu",
        issuer="https://aai.egi.eu/auth/realms/egi",
        subject="user",
        entitlements=frozenset(entitlements),
        groups=groups_of(entitlements),
    )


def test_eosc_example_rules_admit_whom_they_say() -> None:
    config = load_config(ROOT / "examples" / "eosc.yaml")
    serving = {cid: [b.id for b in bs] for cid, bs in config.routing().items()}
    ids = list(config.collections)
    # anonymous: only the collection without a rule, and not from the community mirror
    assert visible(config.auth, ids, None, serving) == ("sentinel-2-l2a",)
    assert hidden_backends(config.auth, None) == {"cesnet"}
    # any signed-in user: also sentinel-1-grd; a VO member: everything
    assert visible(config.auth, ids, _user(), serving) == ("sentinel-1-grd", "sentinel-2-l2a")
    assert set(visible(config.auth, ids, _user(VO_MEMBER), serving)) == set(ids)
    cesnet_member = "urn:mace:egi.eu:group:vo.cesnet.cz:role=member#aai.egi.eu"
    assert hidden_backends(config.auth, _user(cesnet_member)) == frozenset()


def test_eosc_example_names_credentials_never_holds_them() -> None:
    config = load_config(ROOT / "examples" / "eosc.yaml")
    auth = {b.id: b.auth for b in config.backends}
    cesnet, cdse = auth["cesnet"], auth["cdse"]
    assert cesnet is not None and cesnet.type == "basic" and cesnet.password_env
    assert cdse is not None and cdse.type == "oauth2" and cdse.oauth2_grant == "password"
    assert auth["element84"] is None
    assert config.auth.rate_limit is not None and config.auth.issuers[0].introspection
    text = (ROOT / "examples" / "eosc.yaml").read_text()
    assert not re.search(r"^\s*(password|secret|token|client_secret)\s*:", text, re.M)


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end > 0 else None]


def _template(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def test_readme_http_api_table_names_every_route() -> None:
    documented = {
        _template(p) for p in re.findall(r"(?<![\w.])(/[\w{}./-]*)", _section("HTTP API"))
    }
    served = {_template(p) for p in openapi_document(demo_config())["paths"]}
    served |= {"/metrics", "/api", "/api.html"}  # not in the OpenAPI document itself
    assert served - documented == set()


def _commands(p: argparse.ArgumentParser, prefix: str = "mqs") -> dict[str, list[str]]:
    """``mqs ...`` command line -> its flags, for every (sub)command."""
    found: dict[str, list[str]] = {}
    flags: list[str] = []
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.update(_commands(sub, f"{prefix} {name}"))
        else:
            flags += [o for o in action.option_strings if o.startswith("--") and o != "--help"]
    if not any(k.startswith(prefix + " ") for k in found):
        found[prefix] = flags
    return found


def test_readme_command_line_section_names_every_subcommand_and_flag() -> None:
    section = _section("Command line")
    for command, flags in _commands(parser()).items():
        assert f"`{command}" in section, command
        for flag in flags:
            assert flag in section, f"{command} {flag}"
