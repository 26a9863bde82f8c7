"""Contract and golden-file tests for every registered source kind.

Each kind keeps cases under ``tests/fixtures/kinds/<kind>/<case>/``: ``source.yaml`` (the
source's configuration stanza, optionally with ``content_type``), ``input.*`` (the payload as
the publisher serves it) and ``expected.json`` (the normalised records). Regenerate the
expected files with ``pytest tests/test_kinds.py --update-golden`` and review the diff.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from monitor.config import SourceConfig
from monitor.sources import REGISTRY, build

FIXTURES = Path(__file__).parent / "fixtures" / "kinds"
CASES = sorted(p for p in FIXTURES.glob("*/*") if p.is_dir())


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_kind_contract(kind: str) -> None:
    cls = REGISTRY[kind]
    assert cls.kind == kind
    assert cls.title and cls.__doc__ and cls.__doc__.strip()
    assert issubclass(cls.Options, BaseModel)
    assert cls.Options.model_config.get("extra") == "forbid"
    assert cls.Options.model_config.get("frozen") is True
    assert any((FIXTURES / kind).glob("*/source.yaml")), f"kind {kind!r} has no fixtures in {FIXTURES / kind}"


def _parse_case(case: Path) -> list[dict[str, Any]]:
    stanza = yaml.safe_load((case / "source.yaml").read_text(encoding="utf-8"))
    content_type = stanza.pop("content_type", None)
    config = SourceConfig.model_validate(stanza)
    [payload] = case.glob("input.*")
    records = build(config).parse(payload.read_bytes(), content_type=content_type, url=config.url)
    return [record.to_json() for record in records]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.name}" for c in CASES])
def test_golden(case: Path, request: pytest.FixtureRequest) -> None:
    actual = _parse_case(case)
    expected_path = case / "expected.json"
    if request.config.getoption("--update-golden"):
        expected_path.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert expected_path.exists(), f"{expected_path} is missing: run pytest --update-golden and review it"
    assert actual == json.loads(expected_path.read_text(encoding="utf-8"))
