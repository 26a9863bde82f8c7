"""Histories built in memory for the pure tests of the report, the exports and the feeds.

``mali_history()`` follows the autumn 2025 Mali story across a ministry with levels (UK FCDO),
one with a level and staff departure (US State), France's and a carrier's notices.
``hostile_history()`` carries source text that tries to inject markup and script everywhere a
source's text is shown.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from monitor.models import ChangeClass, NoticeStatus
from monitor.report.history import (
    ChangeEntry,
    HealthEventView,
    History,
    NoticeView,
    Point,
    SourceView,
    Window,
)

GENERATED = datetime(2025, 11, 12, 12, 0, tzinfo=UTC)
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
JS_URL = "javascript:alert(document.cookie)"


def at(day: int, hour: int = 9, month: int = 11) -> datetime:
    return datetime(2025, month, day, hour, 0, tzinfo=UTC)


def source(id_: str, kind: str, publisher: str, url: str, **over: object) -> SourceView:
    view = SourceView(
        id=id_,
        kind=kind,
        publisher=publisher,
        url=url,
        active=True,
        countries=("ML",),
        interval=timedelta(minutes=15),
        health="ok",
        health_reason=None,
        health_since=None,
        last_check_at=GENERATED - timedelta(minutes=5),
        last_outcome="unchanged",
        last_error=None,
        consecutive_failures=0,
        last_success_at=GENERATED - timedelta(minutes=5),
    )
    return replace(view, **over)  # type: ignore[arg-type]


def change(
    id_: int, src: SourceView, detected: datetime, change_class: ChangeClass, **over: object
) -> ChangeEntry:
    entry = ChangeEntry(
        id=id_,
        source_id=src.id,
        kind=src.kind,
        publisher=src.publisher,
        key="ML",
        countries=("ML",),
        detected_at=detected,
        published_at=detected - timedelta(minutes=40),
        change_class=change_class,
        reasons=(),
        diff="",
        level_before=None,
        level_after=None,
        label_before=None,
        label_after=None,
        title="Mali travel advice",
        url=src.url,
        notice=None,
        alerts_sent=1,
        alerts_failed=0,
        alerts_pending=0,
        first_sent_at=detected + timedelta(seconds=4),
    )
    return replace(entry, **over)  # type: ignore[arg-type]


def point(src: SourceView, when: datetime, level: int | None, label: str | None, **over: object) -> Point:
    return replace(Point(src.id, "ML", "ML", when, level, label, None), **over)  # type: ignore[arg-type]


UK = source("uk-mali", "uk-fcdo", "UK FCDO", "https://www.gov.uk/foreign-travel-advice/mali")
US = source("us-state", "us-state", "US State Department", "https://travel.state.gov/")
FR = source(
    "fr-mali",
    "fr-diplomatie",
    "France Diplomatie",
    "https://www.diplomatie.gouv.fr/fr/conseils-aux-voyageurs/conseils-par-pays-destination/mali/",
)
MSC = source(
    "msc", "msc", "MSC", "https://www.msc.com/en/newsroom/customer-advisories", interval=timedelta(hours=1)
)

SUSPENSION = NoticeView(
    "mali-suspension",
    "Suspension of bookings to and from Mali",
    "https://www.msc.com/en/newsroom/customer-advisories/2025/november/mali-suspension",
    NoticeStatus.SUSPENSION,
    at(6, 8),
)
RESUMPTION = NoticeView(
    "mali-resumption",
    "Resumption of bookings to and from Mali",
    "https://www.msc.com/en/newsroom/customer-advisories/2025/november/mali-resumption",
    NoticeStatus.RESUMPTION,
    at(10, 8),
)

US_DIFF = (
    "--- before\n+++ after\n@@ -1,2 +1,2 @@\n"
    "-Level 4: Do Not Travel. Authorized departure of non-emergency staff.\n"
    "+Level 4: Do Not Travel. Ordered departure of non-emergency staff and family members.\n"
)
UK_DIFF = (
    "--- before\n+++ after\n@@ -1,1 +1,2 @@\n"
    " FCDO advises against all travel to Mali.\n"
    "+If you are in Mali, you should leave by commercial means now.\n"
)
FR_DIFF = (
    "--- before\n+++ after\n@@ -1,1 +1,1 @@\n"
    "-Une vigilance accrue est demandée.\n"
    "+Il est recommandé aux ressortissants français de prévoir un départ temporaire dès que possible.\n"
)


def mali_history(window: Window | None = None) -> History:
    points = (
        point(UK, at(20, month=10), 4, "Advise against all travel"),
        point(US, at(20, month=10), 4, "Level 4: Do Not Travel"),
        point(FR, at(20, month=10), 4, "Formellement déconseillé"),
        point(MSC, at(20, month=10), None, None),
        point(US, at(24, month=10), 4, "Level 4: Do Not Travel"),
        point(US, at(30, month=10), 4, "Level 4: Do Not Travel"),
        point(UK, at(30, month=10), 4, "Advise against all travel"),
        point(FR, at(4), 4, "Formellement déconseillé"),
        point(MSC, at(6), None, None, notice=SUSPENSION),
        point(FR, at(7), 4, "Formellement déconseillé"),
        point(MSC, at(10), None, None, notice=RESUMPTION),
    )
    changes = (
        change(
            1,
            US,
            at(24, month=10),
            ChangeClass.SEVERE,
            reasons=("staff departure: authorized",),
            level_before=4,
            level_after=4,
            label_before="Level 4: Do Not Travel",
            label_after="Level 4: Do Not Travel",
        ),
        change(
            2,
            US,
            at(30, month=10),
            ChangeClass.CRITICAL,
            reasons=(
                "staff departure: authorized → ordered",
                "ordered departure: “Ordered departure of non-emergency staff and family members.”",
            ),
            diff=US_DIFF,
            level_before=4,
            level_after=4,
            label_before="Level 4: Do Not Travel",
            label_after="Level 4: Do Not Travel",
        ),
        change(
            3,
            UK,
            at(30, month=10, hour=14),
            ChangeClass.CRITICAL,
            reasons=("leave now: “If you are in Mali, you should leave by commercial means now.”",),
            diff=UK_DIFF,
            level_before=4,
            level_after=4,
            label_before="Advise against all travel",
            label_after="Advise against all travel",
        ),
        change(4, FR, at(4), ChangeClass.HEIGHTENED, reasons=("vigilance accrue",), published_at=None),
        change(
            5,
            MSC,
            at(6),
            ChangeClass.SEVERE,
            reasons=("service suspended: “Suspension of bookings to and from Mali”",),
            title=SUSPENSION.title,
            url=SUSPENSION.url,
            notice=SUSPENSION,
        ),
        change(
            6,
            FR,
            at(7),
            ChangeClass.CRITICAL,
            reasons=("leave now: “prévoir un départ temporaire dès que possible”",),
            diff=FR_DIFF,
            level_before=4,
            level_after=4,
            label_before="Formellement déconseillé",
            label_after="Formellement déconseillé",
            alerts_sent=0,
            alerts_failed=1,
            first_sent_at=None,
        ),
        change(7, UK, at(8), ChangeClass.NOISE, reasons=("dates only",), alerts_sent=0, first_sent_at=None),
        change(
            8,
            MSC,
            at(10),
            ChangeClass.RELAXED,
            reasons=("service resumed: “Resumption of bookings to and from Mali”",),
            title=RESUMPTION.title,
            url=RESUMPTION.url,
            notice=RESUMPTION,
        ),
    )
    events = (
        HealthEventView("fr-mali", at(5), "unhealthy", "blocked: HTTP 403 (bot challenge)"),
        HealthEventView("fr-mali", at(5, 11), "recovered", None),
    )
    return History(
        generated_at=GENERATED,
        window=window or Window(),
        sources=(UK, US, FR, MSC),
        countries=("ML",),
        points=points,
        changes=changes,
        health_events=events,
        alerts={"pending": 0, "sent": 5, "failed": 1},
    )


def hostile_history() -> History:
    """A source whose every text field tries to inject markup, script or a javascript: link."""
    evil = source(
        "evil",
        "html",
        HOSTILE,
        JS_URL,
        health="unhealthy",
        health_reason=HOSTILE,
        last_outcome="blocked",
        last_error=HOSTILE,
    )
    notice = NoticeView("n1", HOSTILE, JS_URL, NoticeStatus.SUSPENSION, at(3))
    entry = change(
        1,
        evil,
        at(3),
        ChangeClass.CRITICAL,
        reasons=(f"leave now: “{HOSTILE}”", "](javascript:alert(1)) **bold** <b>bold</b>"),
        diff=f"--- before\n+++ after\n@@ -1,1 +1,1 @@\n-<p>old</p>\n+{HOSTILE}<a href='{JS_URL}'>x</a>\n",
        label_before=HOSTILE,
        label_after="</td></tr></table><h1>broken",
        level_before=2,
        level_after=4,
        title=HOSTILE,
        url=JS_URL,
        notice=notice,
    )
    return History(
        generated_at=GENERATED,
        window=Window(),
        sources=(evil,),
        countries=("ML",),
        points=(
            point(evil, at(1), 2, HOSTILE),
            point(evil, at(3), 4, "</svg><script>alert(2)</script>", notice=notice),
        ),
        changes=(entry,),
        health_events=(HealthEventView("evil", at(2), "unhealthy", HOSTILE),),
        alerts={"pending": 0, "sent": 0, "failed": 0},
    )
