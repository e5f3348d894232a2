"""The deploy kit (deploy/, docs/deploy.md): the systemd unit runs the server with options it knows and values it
accepts, keeps secrets off the command line, and the Grafana data source points at the unit's query HTTP port."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from cnosdb_jaeger_storage.config import Config, ConfigError, build_parser, load_config, split_addr

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy" / "cnosdb-jaeger-storage.service"
GRAFANA = ROOT / "deploy" / "grafana-datasource.yaml"
PROGRAM = "cnosdb-jaeger-storage"
SECRET_FLAGS = {"--cnosdb-password", "--receiver-password"}  # `ps` shows a command line to every user


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """A systemd unit file: sections of (key, value) in order (keys may repeat), `\\` continuations joined."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    logical: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not logical and (not line or line[0] in "#;"):
            continue
        if line.endswith("\\"):
            logical.append(line[:-1].strip())
            continue
        line = " ".join([*logical, line]).strip()
        logical = []
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None, f"not 'key=value' in a section: {line!r}"
        current.append((key.strip(), value.strip()))
    assert not logical, "the file ends in a continuation"
    return sections


def values(section: list[tuple[str, str]], key: str) -> list[str]:
    return [v for k, v in section if k == key]


def exec_argv(value: str) -> list[str]:
    """ExecStart's words, without systemd's prefixes (-, @, :, +, !); no $VARIABLE or %specifier to expand."""
    value = value.lstrip("-@:+!")
    assert "$" not in value and "%" not in value, f"ExecStart would be expanded by systemd: {value!r}"
    return shlex.split(value)


def known_flags() -> set[str]:
    return {option for action in build_parser()._actions for option in action.option_strings}


def check_command(argv: list[str]) -> tuple[list[str], Config | None]:
    """Problems of one ExecStart command line, and the configuration it gives (no environment)."""
    problems = []
    if Path(argv[0]).name != PROGRAM:
        problems.append(f"runs {argv[0]!r}, not {PROGRAM}")
    if not Path(argv[0]).is_absolute():
        problems.append(f"{argv[0]!r} is not an absolute path")
    flags = {word.partition("=")[0] for word in argv[1:] if word.startswith("-")}
    problems += [f"unknown flag {flag}" for flag in sorted(flags - known_flags())]
    problems += [f"secret on the command line: {flag}" for flag in sorted(flags & SECRET_FLAGS)]
    config = None
    try:
        config = load_config(argv[1:], environ={})
    except ConfigError as exc:
        problems.append(f"refused: {exc}")
    except SystemExit:  # argparse: unknown flag or unreadable value, already reported on stderr
        problems.append(f"argparse refused {argv[1:]}")
    return problems, config


def unit_problems(text: str) -> list[str]:
    """What is wrong with the unit for a real CnosDB; empty when nothing is."""
    service = parse_unit(text).get("Service", [])
    starts = values(service, "ExecStart")
    if len(starts) != 1:
        return [f"{len(starts)} ExecStart lines, not 1"]
    problems, config = check_command(exec_argv(starts[0]))
    if config is not None and config.embedded:
        problems.append("no --cnosdb-url: this unit is for a real CnosDB")
    if config is not None and not config.query_http_addr:
        problems.append("no --query-http-addr: Grafana has nothing to read")
    expected = {"Restart": "on-failure", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
                "ProtectHome": "yes", "PrivateTmp": "yes", "EnvironmentFile": "-/etc/cnosdb-jaeger-storage/env"}
    for key, value in expected.items():
        if value not in values(service, key):
            problems.append(f"{key}={value} missing")
    users = values(service, "User")
    if not users or users[-1] in ("", "root", "0") or values(service, "DynamicUser"):
        problems.append("no dedicated User=")
    return problems


def unit_config() -> Config:
    [start] = values(parse_unit(UNIT.read_text())["Service"], "ExecStart")
    return load_config(exec_argv(start)[1:], environ={})


def test_the_unit_runs_the_server_with_flags_it_knows_and_values_it_accepts() -> None:
    assert unit_problems(UNIT.read_text()) == []
    config = unit_config()
    assert config.cnosdb_url == "http://127.0.0.1:8902"
    assert config.cnosdb_password == ""  # from the environment file


@pytest.mark.parametrize(("old", "new", "problem"), [
    ("--query-http-addr :16686", "--query-http-adr :16686", "unknown flag --query-http-adr"),
    ("--grpc-addr :17271", "--grpc-addr 17271", "refused: --grpc-addr"),
    ("--ttl 7d", "--ttl 7d --cnosdb-password hunter2", "secret on the command line: --cnosdb-password"),
    ("--cnosdb-wait 60", "--cnosdb-wait soon", "argparse refused"),
    ("--cnosdb-url http://127.0.0.1:8902 \\", "\\", "no --cnosdb-url"),
    ("bin/cnosdb-jaeger-storage", "bin/cnosdb-lite", "not cnosdb-jaeger-storage"),
    ("Restart=on-failure", "Restart=no", "Restart=on-failure missing"),
    ("User=cnosdb-jaeger", "User=root", "no dedicated User="),
])
def test_a_broken_unit_is_caught(old: str, new: str, problem: str) -> None:
    text = UNIT.read_text()
    head, found, tail = text.rpartition(old)  # the last: the header comment comes first
    assert found
    problems = unit_problems(head + new + tail)
    assert any(problem in p for p in problems), problems


def test_the_embedded_variant_in_the_units_comment_keeps_its_data_in_the_state_directory() -> None:
    drop_in = [line.lstrip("#").strip() for line in UNIT.read_text().splitlines()
               if re.match(r"#\s+(ExecStart|StateDirectory)=", line)]
    starts = [line.partition("=")[2] for line in drop_in if line.startswith("ExecStart=")]
    assert starts[0] == "" and len(starts) == 2  # an empty ExecStart= first: a drop-in adds to the list otherwise
    problems, config = check_command(exec_argv(starts[1]))
    assert problems == [] and config is not None and config.embedded
    [state] = [line.partition("=")[2] for line in drop_in if line.startswith("StateDirectory=")]
    assert config.data_dir == f"/var/lib/{state}"
    listeners = ("grpc_addr", "otlp_grpc_addr", "otlp_http_addr", "query_http_addr", "admin_addr")
    assert {name: getattr(config, name) for name in listeners} == {
        name: getattr(unit_config(), name) for name in listeners}


def uncommented(text: str) -> str:
    """The YAML with its commented-out settings (`# key: ...`, kept indented) switched on."""
    return re.sub(r"(?m)^(\s*)# ?(\s*[A-Za-z][A-Za-z0-9]*:(?: .*)?)$", r"\1\2", text)


def test_the_grafana_data_source_reads_the_units_query_http_port() -> None:
    provisioning = yaml.safe_load(GRAFANA.read_text())
    assert provisioning["apiVersion"] == 1
    [source] = provisioning["datasources"]
    assert source["type"] == "jaeger" and source["access"] == "proxy"
    url = re.fullmatch(r"http://([^/:]+):(\d+)/?", source["url"])
    assert url, source["url"]
    assert int(url.group(2)) == split_addr(unit_config().query_http_addr)[1]


def test_the_grafana_data_sources_optional_auth_and_tenant_header_are_as_grafana_expects() -> None:
    [source] = yaml.safe_load(uncommented(GRAFANA.read_text()))["datasources"]
    assert source["basicAuth"] is True and source["basicAuthUser"]
    assert source["secureJsonData"]["basicAuthPassword"]
    assert source["jsonData"]["httpHeaderName1"] == Config().tenant_header
    assert source["secureJsonData"]["httpHeaderValue1"]


def test_the_deploy_guide_is_linked_and_its_links_resolve() -> None:
    guide = ROOT / "docs" / "deploy.md"
    assert "(docs/deploy.md)" in (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", guide.read_text()):
        if "://" not in target:
            assert (guide.parent / target).exists(), target
