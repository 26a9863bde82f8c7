"""The alert renderer: subjects, bodies, digests, failure and test messages. Pure code."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from monitor.alerts.render import (
    AlertView,
    HealthView,
    country_name,
    format_utc,
    health_subject,
    render_alert,
    render_digest,
    render_failure,
    render_health,
    render_test,
    subject,
)
from monitor.health import Transition
from monitor.models import ChangeClass

MALI_URL = "https://www.diplomatie.gouv.fr/fr/conseils-aux-voyageurs/conseils-par-pays-destination/mali/"
ATTACKS = (
    "attacks: “Les trajets par la route sont formellement déconseillés : plusieurs routes nationales "
    "ont été la cible d’attaques ces dernières semaines.”"
)
THREE_ADDED = """--- advice
+++ advice
@@ -3,2 +3,5 @@
 Contexte
+Il est demandé aux Français de quitter temporairement le pays.
+Les trajets par la route sont formellement déconseillés.
+Les vols commerciaux restent disponibles.
 Sécurité"""


def view(**changes: Any) -> AlertView:
    """The France Diplomatie critical change for Mali, with ``changes`` applied."""
    base = AlertView(
        alert_id="change-42-ops-email",
        change_class=ChangeClass.CRITICAL,
        country="ML",
        source_id="fr-mali-alertes",
        publisher="France Diplomatie",
        title="Mali – Départ temporaire recommandé",
        url=MALI_URL,
        reasons=("nationals urged to leave", ATTACKS),
        diff=THREE_ADDED,
        level_before=4,
        level_after=4,
        label_before="formellement déconseillé",
        label_after="formellement déconseillé",
        updated_at=datetime(2025, 11, 7, tzinfo=UTC),
        detected_at=datetime(2025, 11, 7, 9, 12, tzinfo=UTC),
    )
    return replace(base, **changes)


def diff_of(added: int, removed: int = 0) -> str:
    old = [f"old line {n}" for n in range(removed)]
    new = [f"new line {n}" for n in range(added)]
    body = [f"@@ -1,{removed + 1} +1,{added + 1} @@", " context"]
    body += [f"-{line}" for line in old] + [f"+{line}" for line in new]
    return "\n".join(["--- advice", "+++ advice", *body])


def test_country_names_prefer_common_names() -> None:
    assert country_name("ML") == "Mali"
    assert country_name("BO") == "Bolivia"
    assert country_name("IR") == "Iran"
    assert country_name("CI") == "Côte d'Ivoire"
    assert country_name("ml") == "Mali"


def test_unknown_countries_keep_their_code() -> None:
    assert country_name("XK") == "XK"
    assert country_name(None) == "Unknown country"
    assert country_name("") == "Unknown country"


def test_subject_of_the_france_critical_change() -> None:
    assert subject(view()) == "[CRITICAL] Mali — France Diplomatie: nationals urged to leave"


def test_subject_keeps_the_label_before_a_quoted_sentence() -> None:
    assert subject(view(reasons=(ATTACKS,))) == "[CRITICAL] Mali — France Diplomatie: attacks"


def test_subject_shortens_a_long_reason_at_a_word_boundary() -> None:
    reason = "the ministry now advises against all travel to the northern and central regions of the country"
    gist = subject(view(reasons=(reason,))).split(": ", 1)[1]
    assert gist == "the ministry now advises against all travel to the northern…"
    assert len(gist) <= 60
    assert reason.startswith(gist.removesuffix("…"))


def test_subject_drops_a_word_cut_by_the_limit() -> None:
    reason = "the ministry now advises against all travel to the northernmost regions of the country"
    gist = subject(view(reasons=(reason,))).split(": ", 1)[1]
    assert gist == "the ministry now advises against all travel to the…"


def test_subject_keeps_a_word_that_ends_at_the_limit() -> None:
    reason = "x" * 50 + " complete" + " and more words after it"
    gist = subject(view(reasons=(reason,))).split(": ", 1)[1]
    assert gist == "x" * 50 + " complete…"


def test_subject_falls_back_to_the_title_without_reasons() -> None:
    expected = "[CRITICAL] Mali — France Diplomatie: Mali – Départ temporaire recommandé"
    assert subject(view(reasons=())) == expected


def test_subject_never_contains_line_breaks() -> None:
    tricky = view(publisher="France\r\nDiplomatie", reasons=("nationals\nurged\r\nto leave\r\nBcc: x@y",))
    line = subject(tricky)
    assert "\n" not in line
    assert "\r" not in line
    assert line == "[CRITICAL] Mali — France Diplomatie: nationals urged to leave Bcc: x@y"


def test_unchanged_level_is_said_once() -> None:
    assert "Level: 4 (formellement déconseillé) (unchanged)\n" in render_alert(view()).text


def test_level_change_uses_the_publisher_labels() -> None:
    text = render_alert(
        view(
            level_before=3,
            level_after=4,
            label_before="Level 3: Reconsider Travel",
            label_after="Level 4: Do Not Travel",
        )
    ).text
    assert "Level: 3 (Level 3: Reconsider Travel) → 4 (Level 4: Do Not Travel)\n" in text


def test_level_without_labels_and_unknown_level() -> None:
    no_labels = view(level_before=None, level_after=2, label_before=None, label_after=None)
    assert "Level: unknown → 2\n" in render_alert(no_labels).text
    nothing = view(level_before=None, level_after=None, label_before=None, label_after=None)
    assert "Level:" not in render_alert(nothing).text


def test_alert_text_lists_the_facts_in_order() -> None:
    text = render_alert(view()).text
    order = [
        "[CRITICAL] Mali — France Diplomatie\n",
        "Level: ",
        "Why:\n• nationals urged to leave\n• " + ATTACKS + "\n",
        "What changed:\n+ Il est demandé aux Français de quitter temporairement le pays.\n",
        f"Official page: {MALI_URL}\n",
        "Published by France Diplomatie: 7 Nov 2025 00:00 UTC\nDetected: 7 Nov 2025 09:12 UTC\n",
        "Alert id: change-42-ops-email\n",
    ]
    positions = [text.index(part) for part in order]
    assert positions == sorted(positions)
    assert text.startswith(order[0])


def test_diff_excerpt_keeps_only_added_and_removed_lines() -> None:
    text = render_alert(view()).text
    excerpt = text.split("What changed:\n", 1)[1].split("\n\n", 1)[0]
    assert excerpt.splitlines() == [
        "+ Il est demandé aux Français de quitter temporairement le pays.",
        "+ Les trajets par la route sont formellement déconseillés.",
        "+ Les vols commerciaux restent disponibles.",
    ]
    for header in ("advice", "@@", "Contexte", "Sécurité"):
        assert header not in excerpt


def test_diff_excerpt_caps_lines_and_counts_the_rest() -> None:
    text = render_alert(view(diff=diff_of(added=9, removed=3))).text
    excerpt = text.split("What changed:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert excerpt[:3] == ["- old line 0", "- old line 1", "- old line 2"]
    assert excerpt[3:8] == [f"+ new line {n}" for n in range(5)]
    assert excerpt[8:] == ["… and 4 more lines"]


def test_diff_excerpt_reads_hunk_counts_not_just_prefixes() -> None:
    diff = "--- a\n+++ a\n@@ -1,2 +1,1 @@\n--- a removed dashed line\n kept\n+++ added later"
    excerpt = render_alert(view(diff=diff)).text.split("What changed:\n", 1)[1].split("\n\n", 1)[0]
    assert excerpt.splitlines() == ["- -- a removed dashed line"]


def test_diff_excerpt_cuts_long_lines() -> None:
    long_line = " ".join(["déconseillé"] * 40)
    text = render_alert(view(diff=f"@@ -1 +1 @@\n+{long_line}")).text
    shown = next(line for line in text.splitlines() if line.startswith("+ "))
    assert shown.endswith("…")
    assert len(shown.removeprefix("+ ")) <= 200


def test_no_diff_lines_means_no_what_changed_section() -> None:
    assert "What changed" not in render_alert(view(diff="")).text


def test_text_body_is_plain_and_tidy() -> None:
    text = render_alert(view(level_before=None, level_after=None, label_before=None, label_after=None)).text
    assert not re.search(r"<[a-zA-Z/!][^>]*>", text)
    assert "\n\n\n" not in text
    assert all(line == line.rstrip() for line in text.splitlines())
    assert "&amp;" not in render_alert(view(url="https://example.org/?a=1&b=2")).text


def test_html_is_a_complete_self_contained_document() -> None:
    html = render_alert(view()).html
    assert html.startswith("<!doctype html>")
    assert '<meta charset="utf-8">' in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "max-width:640px" in html
    assert f'<a href="{MALI_URL}"' in html
    for forbidden in ("<style", "<script", "<img", "<link", "src="):
        assert forbidden not in html


def test_html_escapes_page_text() -> None:
    hostile = view(reasons=("<script>alert(1)</script>",), title="Mali <b>bold</b>")
    html = render_alert(hostile).html
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html


def test_html_escapes_the_ampersand_of_a_url() -> None:
    html = render_alert(view(url="https://example.org/advice?country=ml&lang=fr")).html
    assert 'href="https://example.org/advice?country=ml&amp;lang=fr"' in html
    assert "country=ml&lang" not in html


def test_html_links_only_web_addresses() -> None:
    html = render_alert(view(url="javascript:alert(1)")).html
    assert "href=" not in html
    assert "javascript:alert(1)" in html


def test_html_marks_added_and_removed_lines() -> None:
    html = render_alert(view(diff=diff_of(added=1, removed=1))).html
    assert "<s>old line 0</s>" in html
    assert "new line 0</li>" in html
    assert "#ecfdf3" in html and "#fef2f2" in html


@pytest.mark.parametrize(
    ("change_class", "colour"),
    [
        (ChangeClass.CRITICAL, "#7f1d1d"),
        (ChangeClass.RELAXED, "#15803d"),
        (ChangeClass.HEIGHTENED, "#f59e0b"),
    ],
)
def test_html_badge_colour_follows_the_class(change_class: ChangeClass, colour: str) -> None:
    html = render_alert(view(change_class=change_class)).html
    assert f"background:{colour}" in html
    assert f">{change_class.upper()}</span>" in html


def test_dates_are_shown_in_utc_from_any_zone() -> None:
    paris = timezone(timedelta(hours=1))
    text = render_alert(view(detected_at=datetime(2025, 11, 7, 10, 12, tzinfo=paris))).text
    assert "Detected: 7 Nov 2025 09:12 UTC\n" in text
    assert (
        format_utc(datetime(2025, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=2))))
        == "31 Dec 2024 22:30 UTC"
    )


def test_missing_publication_time_is_said() -> None:
    assert "Published by France Diplomatie: not stated\n" in render_alert(view(updated_at=None)).text


def test_digest_orders_by_severity_then_detection_time() -> None:
    morning = datetime(2025, 11, 6, 8, 0, tzinfo=UTC)
    views = [
        view(alert_id="u", change_class=ChangeClass.UPDATE, detected_at=morning),
        view(alert_id="s2", change_class=ChangeClass.SEVERE, detected_at=morning + timedelta(hours=2)),
        view(alert_id="r", change_class=ChangeClass.RELAXED, detected_at=morning),
        view(alert_id="s1", change_class=ChangeClass.SEVERE, detected_at=morning + timedelta(hours=1)),
        view(alert_id="h", change_class=ChangeClass.HEIGHTENED, detected_at=morning),
    ]
    message = render_digest("ops-email", "6 Nov 2025 (UTC)", views)
    assert message.title == "[DIGEST] 5 advisory changes, highest SEVERE — 6 Nov 2025 (UTC)"
    headings = [line for line in message.text.splitlines() if line.startswith("[")]
    assert [h.split("]")[0] for h in headings] == ["[SEVERE", "[SEVERE", "[HEIGHTENED", "[RELAXED", "[UPDATE"]
    assert "Alert ids: s1, s2, h, r, u\n" in message.text
    assert message.html.index("Alert ids: s1, s2, h, r, u") > 0


def test_digest_shows_two_reasons_per_change() -> None:
    message = render_digest("ops-email", "6 Nov 2025 (UTC)", [view(reasons=("first", "second", "third"))])
    assert message.title == "[DIGEST] 1 advisory change, highest CRITICAL — 6 Nov 2025 (UTC)"
    assert "• first\n• second\n" in message.text
    assert "third" not in message.text
    assert f"Official page: {MALI_URL}\nDetected: 7 Nov 2025 09:12 UTC\n" in message.text
    assert "\n\n\n" not in message.text


def test_empty_digest_still_renders() -> None:
    message = render_digest("ops-email", "6 Nov 2025 (UTC)", [])
    assert message.title == "[DIGEST] no advisory changes — 6 Nov 2025 (UTC)"
    assert "Alert ids" not in message.text


def test_failure_report_names_the_channel_and_the_alert() -> None:
    message = render_failure(view(), "ops-email", "SMTP 550 <mailbox unavailable>")
    expected = "[DELIVERY FAILED] ops-email: [CRITICAL] Mali — France Diplomatie: nationals urged to leave"
    assert message.title == expected
    assert "channel ops-email" in message.text
    assert "Error: SMTP 550 <mailbox unavailable>\n" in message.text
    assert "Alert id: change-42-ops-email" in message.text
    assert "ops-email" in message.html
    assert "SMTP 550 &lt;mailbox unavailable&gt;" in message.html


def test_test_message_names_the_channel_and_time() -> None:
    message = render_test("team-chat", datetime(2025, 11, 7, 10, 5, tzinfo=timezone(timedelta(hours=1))))
    assert message.title == "Advisory monitor: test message"
    assert "team-chat" in message.text
    assert "7 Nov 2025 09:05 UTC" in message.text
    assert "team-chat" in message.html


# --- source health ------------------------------------------------------------------------------

FEED_URL = "https://travel.state.gov/_res/rss/TAsTWs.xml"
BROKE = datetime(2025, 11, 7, 9, 12, tzinfo=UTC)


def health(**changes: Any) -> HealthView:
    """The US State Department feed failing three times in a row, with ``changes`` applied."""
    base = HealthView(
        alert_id="health-7-ops-email",
        source_id="us-state",
        publisher="US State Department",
        state=Transition.UNHEALTHY,
        reason="3 checks in a row failed; last: HTTP 500 Internal Server Error",
        at=BROKE,
        unhealthy_since=None,
        last_success_at=datetime(2025, 11, 7, 8, 40, tzinfo=UTC),
        last_error="HTTP 500 Internal Server Error",
        url=FEED_URL,
    )
    return replace(base, **changes)


def recovery(**changes: Any) -> HealthView:
    return health(
        **{
            "alert_id": "health-8-ops-email",
            "state": Transition.RECOVERED,
            "reason": None,
            "at": BROKE + timedelta(hours=2, minutes=10),
            "unhealthy_since": BROKE,
            **changes,
        }
    )


def test_health_subjects_name_the_state_the_source_and_the_gist() -> None:
    assert health_subject(health()) == (
        "[source unhealthy] us-state — US State Department: 3 checks in a row failed"
    )
    assert health_subject(recovery()) == (
        "[source recovered] us-state — US State Department: works again after 2 h 10 min"
    )
    stale = health(reason="no successful check for 50 min (more than 3× its interval of 15 min)")
    assert health_subject(stale).endswith(": no successful check for 50 min")
    assert health_subject(health(reason="the publisher refused the request: HTTP 403 Forbidden")).endswith(
        ": the publisher refused the request: HTTP 403 Forbidden"
    )
    assert health_subject(recovery(unhealthy_since=None)).endswith(": works again")
    assert health_subject(health(reason=None)).endswith(": stopped working")


def test_a_health_subject_names_a_source_without_publisher_once_and_stays_one_line() -> None:
    assert health_subject(health(publisher="us-state")).startswith("[source unhealthy] us-state: ")
    tricky = health(publisher="US\r\nState", reason="line one\nBcc: x@y; details")
    line = health_subject(tricky)
    assert "\n" not in line and "\r" not in line
    assert line == "[source unhealthy] us-state — US State: line one Bcc: x@y"
    long = health_subject(health(reason="x " * 80))
    assert len(long.split(": ", 1)[1]) <= 60


def test_unhealthy_message_text_lists_the_facts_in_order() -> None:
    message = render_health(health())
    assert message.title == health_subject(health())
    assert message.text == (
        "[SOURCE UNHEALTHY] us-state — US State Department\n"
        "The source stopped working: its changes may go unnoticed until it works again.\n"
        "\n"
        "Why: 3 checks in a row failed; last: HTTP 500 Internal Server Error\n"
        "\n"
        "Unhealthy since: 7 Nov 2025 09:12 UTC\n"
        "Last successful check: 7 Nov 2025 08:40 UTC\n"
        "Last error: HTTP 500 Internal Server Error\n"
        "\n"
        f"Source: {FEED_URL}\n"
        "\n"
        "Alert id: health-7-ops-email\n"
    )


def test_recovery_message_says_how_long_the_source_was_unhealthy() -> None:
    text = render_health(recovery()).text
    assert text == (
        "[SOURCE RECOVERED] us-state — US State Department\n"
        "The source works again, after 2 h 10 min unhealthy.\n"
        "\n"
        "Unhealthy since: 7 Nov 2025 09:12 UTC\n"
        "Works again since: 7 Nov 2025 11:22 UTC\n"
        "Last error before it worked again: HTTP 500 Internal Server Error\n"
        "\n"
        f"Source: {FEED_URL}\n"
        "\n"
        "Alert id: health-8-ops-email\n"
    )
    unknown = render_health(recovery(unhealthy_since=None, last_error=None)).text
    assert "The source works again.\n" in unknown
    assert "Unhealthy since: not known\n" in unknown
    assert "Last error" not in unknown


def test_a_source_never_checked_successfully_says_never() -> None:
    text = render_health(health(last_success_at=None)).text
    assert "Last successful check: never\n" in text


def test_health_html_is_self_contained_escaped_and_coloured_by_state() -> None:
    hostile = health(reason="<script>alert(1)</script>", last_error="HTTP 500 <b>oops</b>")
    html = render_health(hostile).html
    assert html.startswith("<!doctype html>")
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;oops&lt;/b&gt;" in html
    assert f'<a href="{FEED_URL}"' in html
    assert "background:#b45309" in html and ">SOURCE UNHEALTHY</span>" in html
    assert "Alert id: health-7-ops-email" in html
    recovered = render_health(recovery()).html
    assert "background:#15803d" in recovered and ">SOURCE RECOVERED</span>" in recovered
    assert "Works again since: 7 Nov 2025 11:22 UTC" in recovered
    for forbidden in ("<style", "<img", "<link", "src="):
        assert forbidden not in html
    assert "href=" not in render_health(health(url="javascript:alert(1)")).html


def test_failure_report_about_a_health_alert() -> None:
    message = render_failure(health(), "ops-email", "SMTP 550 <mailbox unavailable>")
    assert message.title == (
        "[DELIVERY FAILED] ops-email: [source unhealthy] us-state — US State Department: "
        "3 checks in a row failed"
    )
    assert "Error: SMTP 550 <mailbox unavailable>\n" in message.text
    assert "Why: 3 checks in a row failed; last: HTTP 500 Internal Server Error\n" in message.text
    assert f"Source: {FEED_URL}\n" in message.text
    assert message.text.rstrip().endswith("Alert id: health-7-ops-email")
    assert "SMTP 550 &lt;mailbox unavailable&gt;" in message.html
    assert ">SOURCE UNHEALTHY</span>" in message.html
