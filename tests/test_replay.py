"""End to end: the Mali seed replayed through the real service, offline, on both backends.

The seed's files are served on 127.0.0.1 in simulated time; the service fetches them over HTTP,
stores, diffs, classifies and delivers alerts through apprise to a real SMTP server and a real
webhook on 127.0.0.1, each with its own routing rules; then the report is written.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from monitor.models import ChangeClass
from monitor.replay.run import ReplayOptions, ReplayResult, replay
from monitor.replay.timeline import load_timeline
from monitor.store import Store
from tests.support.receiver import WebhookReceiver
from tests.support.smtp import SmtpServer

SEED = Path(__file__).resolve().parents[1] / "seeds" / "mali-2025-11"
FROM_TO = "from=monitor@example.org&to=security@example.org&mode=insecure"

C, S, H, R = ChangeClass.CRITICAL, ChangeClass.SEVERE, ChangeClass.HEIGHTENED, ChangeClass.RELAXED
# The alerts of autumn 2025, in order (publishers' dates): the story the replay must tell.
EXPECTED = [
    ("US State Department", S),  # 24 Oct: authorized departure
    ("US Embassy Bamako", C),  # 28 Oct: depart immediately (generic rss kind)
    ("Auswärtiges Amt", C),  # 29 Oct: leave
    ("US State Department", C),  # 30 Oct: ordered departure
    ("UK FCDO", C),  # 30 Oct: leave by commercial flight
    ("France Diplomatie", H),  # 4 Nov: vigilance accrue
    ("CMA CGM", S),  # 4-5 Nov: suspension
    ("CMA CGM", R),  # 6 Nov: decision not to suspend
    ("MSC", S),  # 6 Nov: suspension
    ("France Diplomatie", C),  # 7 Nov: leave as soon as possible
    ("MSC", R),  # 10 Nov: resumption
]
# Routing: the security desk's mail takes critical changes about Mali; the freight desk's
# webhook takes carriers' changes from severe up (and so the relaxations that undo them).
CHANNELS = """\
alerts:
  - name: security-mail
    url: "mailto://127.0.0.1:{smtp}?{from_to}"
    min_class: critical
    countries: [ML]
  - name: freight-hook
    url: "json://127.0.0.1:{hook}/hook"
    min_class: severe
    kinds: [msc, cma-cgm]
"""
MAIL_GETS = [i for i, (_, cls) in enumerate(EXPECTED) if cls is C]
HOOK_GETS = [i for i, (publisher, _) in enumerate(EXPECTED) if publisher in ("CMA CGM", "MSC")]


def test_the_expected_alerts_are_the_seeds_own() -> None:
    """The list above and the seed's timeline tell the same story."""
    timeline = load_timeline(SEED)
    publishers = {source.id: source.publisher for source in timeline.sources}
    story = [
        (publishers[sid], cls) for _, sid, cls in timeline.changes_expected() if cls is not ChangeClass.NOISE
    ]
    assert story == EXPECTED


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_replay_alerts_in_order_and_each_channel_gets_what_its_rules_select(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    database = None if backend == "sqlite" else str(request.getfixturevalue("postgres_url"))
    with SmtpServer() as smtp, WebhookReceiver() as hook:
        channels = tmp_path / "channels.yaml"
        channels.write_text(CHANNELS.format(smtp=smtp.port, hook=hook.port, from_to=FROM_TO))
        printed = []
        options = ReplayOptions(out=tmp_path / "out", database=database, speed=None, alerts_from=channels)
        result = replay(SEED, options, on_fired=printed.append)

        assert [(f.publisher, f.change_class) for f in result.fired] == EXPECTED
        assert printed == result.fired  # told as they fired, in that order
        assert [f.when for f in result.fired] == sorted(f.when for f in result.fired)
        # Date-only republishes were recorded, and alerted nobody.
        assert result.quiet == {"noise": 6}
        assert result.failed_checks == 0

        mail_rows = [i for i, fired in enumerate(result.fired) if "security-mail" in fired.channels]
        hook_rows = [i for i, fired in enumerate(result.fired) if "freight-hook" in fired.channels]
        assert mail_rows == MAIL_GETS and hook_rows == HOOK_GETS
        mails = smtp.wait_for(len(MAIL_GETS))
        posts = hook.wait_for(len(HOOK_GETS))
        assert len(smtp.mails) == len(MAIL_GETS) and len(hook.posts) == len(HOOK_GETS)
    assert result.deliveries == {"security-mail": {"sent": 5}, "freight-hook": {"sent": 4}}
    subjects = [mail.message["Subject"] for mail in mails]
    for subject, row in zip(subjects, MAIL_GETS, strict=True):
        publisher, cls = EXPECTED[row]
        assert publisher in subject and cls.value in subject.lower(), subject
    titles = [post.json["title"] for post in posts]
    for title, row in zip(titles, HOOK_GETS, strict=True):
        publisher, cls = EXPECTED[row]
        assert publisher in title and cls.value in title.lower(), title
    _assert_stored(result, database or f"sqlite:///{tmp_path / 'out' / 'monitor.db'}")


def _assert_stored(result: ReplayResult, database: str) -> None:
    """Everything went through the database, in simulated time; the report tells the story."""
    with Store.open(database) as store:
        changes = store.changes()
        alerts = store.outbox.alerts()
    assert len(changes) == len(EXPECTED) + 6
    timeline = result.timeline
    assert all(timeline.start <= c.detected_at <= timeline.end for c in changes)
    assert all(a.sent_at is not None and timeline.start <= a.sent_at <= timeline.end for a in alerts)
    # Every change was seen within one check interval (2 h simulated) of its publication.
    expected_at = [(at, sid) for at, sid, cls in timeline.changes_expected()]
    seen_at = sorted((c.detected_at, c.source_id) for c in changes)
    for (published, sid), (detected, seen_sid) in zip(expected_at, seen_at, strict=True):
        assert sid == seen_sid and published <= detected <= published + ReplayOptions.every
    page = result.report.read_text(encoding="utf-8")
    assert page.lower().startswith("<!doctype html>")
    for publisher in {p for p, _ in EXPECTED}:
        assert publisher in page


def test_cli_replay_prints_each_alert_and_where_the_report_is(tmp_path: Path) -> None:
    with WebhookReceiver() as hook:
        done = subprocess.run(
            [
                *(sys.executable, "-m", "monitor", "replay", str(SEED)),
                *("--speed", "max", "--out", str(tmp_path / "out")),
                *("--alert", f"json://127.0.0.1:{hook.port}/all"),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        # The default threshold (heightened) takes every escalation, and so every relaxation.
        assert len(hook.wait_for(len(EXPECTED))) == len(EXPECTED)
    lines = done.stdout.splitlines()
    fired = [line for line in lines if "(seen " in line]
    assert len(fired) == len(EXPECTED)
    for line, (publisher, cls) in zip(fired, EXPECTED, strict=True):
        assert f" {cls.value} " in line and publisher in line and line.endswith("-> alert-1")
    assert fired[0].lstrip().startswith("24 Oct 2025") and fired[-1].lstrip().startswith("10 Nov 2025")
    assert "11 alerts; 6 other changes recorded without an alert (6 noise)" in done.stdout
    assert "Channel alert-1: 11 sent" in done.stdout
    report = Path(lines[-1].removeprefix("Report: "))
    assert lines[-1].startswith("Report: ") and report == (tmp_path / "out" / "report.html").resolve()
    assert report.is_file()
    written = (tmp_path / "out" / "monitor.yaml").read_text()
    assert "http://127.0.0.1:" in written and "https://" not in written.split("alerts:")[0]


def test_the_replay_benchmark_runs_on_any_seed(tmp_path: Path) -> None:
    """Smoke test of benchmarks/replay.py on a three-day seed of one carrier (a user's own seed,
    in effect): the suspension and its reversal, and nothing else."""
    import runpy
    import shutil
    from datetime import timedelta

    seed = tmp_path / "cma-week"
    shutil.copytree(SEED / "cma-cgm", seed / "cma-cgm")
    (seed / "timeline.yaml").write_text(
        """\
title: CMA CGM and Mali, early November 2025
start: "2025-11-04T00:00:00+01:00"
end: "2025-11-07T00:00:00Z"
sources:
  - id: cma-cgm
    kind: cma-cgm
    url: https://www.cma-cgm.com/news
    content_type: text/html; charset=utf-8
    countries: [ML]
    snapshots:
      - {from: "2025-10-29T09:00:00Z", file: 2025-10-29.html}
      - {from: "2025-11-05T08:00:00Z", file: 2025-11-05.html, expect: severe}
      - {from: "2025-11-06T13:00:00Z", file: 2025-11-06.html, expect: relaxed}
""",
        encoding="utf-8",
    )
    benchmark = runpy.run_path(str(SEED.parents[1] / "benchmarks" / "replay.py"), run_name="bench")
    result = benchmark["measure"](None, timedelta(hours=1), seed=seed)
    assert [(f.publisher, f.change_class, f.detected_at.hour) for f in result.fired] == [
        ("CMA CGM", S, 8),
        ("CMA CGM", R, 13),
    ]
    assert result.checks == 3 * 24 + 1 + 1  # 23:00 on the 3rd (UTC) to the end, inclusive
