"""The fault suite (benchmarks/faults.py), every scenario as a test: a misbehaving HTTP server on
127.0.0.1 answers a real check of a seed source; the check is recorded with its reason, nothing
changes, nothing is alerted, and the next good answer is compared with the last good snapshot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _postgres_url
from tests.support.benchmarks import load

faults = load("faults", "faults.py")
CONTROLS: dict[tuple[str, int], Any] = {}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("faults")


def scenario(fault: Any, workdir: Path, database: str | None = None) -> Any:
    key = (fault.source, fault.start)
    pages = faults.seed_pages(*key)
    if (database, key) not in CONTROLS:
        CONTROLS[database, key] = faults.control(pages, database, workdir)
    return faults.run_fault(fault, pages, CONTROLS[database, key], database, workdir)


@pytest.mark.parametrize("fault", faults.FAULTS, ids=[f.name for f in faults.FAULTS])
def test_fault_is_recorded_and_changes_nothing(fault: Any, workdir: Path) -> None:
    row = scenario(fault, workdir)

    assert row.problems == []
    assert set(row.outcomes) <= fault.outcomes and len(row.outcomes) == fault.checks
    assert row.changes == 0 and row.change_alerts == 0
    assert row.snapshots_kept and row.next_good_matches


POSTGRES_FAULTS = ("truncated-html", "invalid-utf8", "5xx-burst", "bot-challenge")


@pytest.mark.postgres
@pytest.mark.parametrize("name", POSTGRES_FAULTS)
def test_fault_on_postgresql(name: str, workdir: Path) -> None:
    [fault] = [f for f in faults.FAULTS if f.name == name]

    row = scenario(fault, workdir, _postgres_url())

    assert row.problems == []


def test_the_table_names_every_fault_and_the_exit_code_says_whether_all_held(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert faults.main(["--only", "empty-200", "--only", "redirect-loop"]) == 0

    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:6] == ["fault", "source", "outcome", "reason", "changes", "alerts"]
    assert any(line.startswith("empty-200 ") and " failed " in line for line in lines)
    assert any(line.startswith("redirect-loop ") and "too many redirects" in line for line in lines)
    assert "2 of 2 faults held; 0 changes and 0 change alerts" in out


def test_an_unknown_fault_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        faults.main(["--only", "no-such-fault"])

    assert exit_.value.code == 2
    assert "unknown fault(s) no-such-fault" in capsys.readouterr().err
