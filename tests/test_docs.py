"""The README is part of the interface: its commands, its examples and CI agree with the code."""

from __future__ import annotations

import re
from pathlib import Path

import click
import yaml

from monitor.cli import cli
from monitor.config import loads

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_command() -> None:
    first_block = _code_blocks("sh")[0].strip().splitlines()
    assert len(first_block) == 2
    run_command, test_command = first_block
    # The main job: the offline replay of the Mali seed, which tests/test_replay.py runs too.
    assert run_command.endswith("monitor replay seeds/mali-2025-11")
    assert (ROOT / "seeds" / "mali-2025-11" / "timeline.yaml").is_file()
    assert README.index(first_block[0]) < README.index("## ")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci.splitlines()


def _commands(group: click.Group, prefix: str = "monitor") -> list[str]:
    names = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            names += _commands(command, f"{prefix} {name}")
        else:
            names.append(f"{prefix} {name}")
    return names


def test_every_command_is_documented_and_has_help() -> None:
    for name in _commands(cli):
        assert f"`{name}" in README, f"{name} is not in README.md"
    for command in cli.commands.values():
        assert command.help


def test_yaml_examples_in_readme_are_valid() -> None:
    blocks = _code_blocks("yaml")
    assert blocks
    env = {"SMTP_USER": "u", "SMTP_PASS": "p"}
    for block in blocks:
        config = loads(
            block.replace("https://...", "https://example.org/x"), path=Path("README.md"), environ=env
        )
        assert yaml.safe_load(block)
        assert config.sources or config.alerts


def test_every_config_key_is_documented() -> None:
    from monitor.config import AlertChannel, Config, Defaults, Service, SourceConfig

    for prefix, model in (
        ("", Config),
        ("defaults.", Defaults),
        ("sources[].", SourceConfig),
        ("alerts[].", AlertChannel),
        ("service.", Service),
    ):
        for name in model.model_fields:
            if name not in ("path", "defaults", "sources", "alerts", "service"):
                assert f"`{prefix}{name}`" in README, f"{prefix}{name} is not documented in README.md"


def test_every_kind_has_a_page_whose_examples_validate() -> None:
    from monitor.sources import REGISTRY

    for kind in REGISTRY:
        page = ROOT / "docs" / "kinds" / f"{kind}.md"
        if kind == "html":
            assert f"`{kind}`" in README
            continue
        assert page.is_file(), f"{page} is missing"
        assert f"docs/kinds/{kind}.md" in README, f"README.md does not link {page.name}"
        examples = re.findall(r"```yaml\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.DOTALL)
        assert examples, f"{page} has no YAML example"
        for example in examples:
            data = yaml.safe_load(example)
            if isinstance(data, list):
                data = {"sources": data}
            elif "sources" not in data:
                data = {"sources": [data]}
            config = loads(yaml.safe_dump(data), path=page, environ={})
            assert any(source.kind == kind for source in config.sources), (
                f"{page}: no {kind} source in example"
            )
