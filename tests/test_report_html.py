"""The HTML history report (pure), read back with an HTML parser: the header, the current-state
matrix, each country's timeline and changes, the sources' health, the filters, hostile source
text, and the paging of a large history."""

from __future__ import annotations

import base64
import hashlib
import runpy
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import lxml.html
import pytest
from bs4 import BeautifulSoup, Tag

from monitor.models import ChangeClass
from monitor.report.chart import LEFT, WIDTH, Axis, ticks
from monitor.report.history import History, Window
from monitor.report.html import render_report
from monitor.report.rows import diff_excerpt, reason
from monitor.report.view import CHUNK_ROWS, LIVE_ROWS
from tests.support.histories import (
    HOSTILE,
    JS_URL,
    MSC,
    UK,
    US,
    at,
    change,
    hostile_history,
    mali_history,
)

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("critical", "severe", "heightened", "relaxed", "update", "noise")
SCRIPT = '<script>alert("x")</script>'
BROKEN = "</td></tr></table><h1>broken"


def parse(history: History) -> BeautifulSoup:
    return BeautifulSoup(render_report(history), "html.parser")


def found(soup: BeautifulSoup | Tag, selector: str) -> Tag:
    tag = soup.select_one(selector)
    assert tag is not None, selector
    return tag


def text(tag: Tag) -> str:
    return " ".join(tag.get_text(" ").split())


def benchmark() -> dict[str, Any]:
    return runpy.run_path(str(ROOT / "benchmarks" / "report.py"), run_name="benchmark")


@pytest.fixture(scope="module")
def mali() -> BeautifulSoup:
    return parse(mali_history())


def rows(soup: BeautifulSoup | Tag) -> list[Tag]:
    return soup.select("ol.changes > li.change")


# --- the page ------------------------------------------------------------------------------------


def test_the_page_needs_nothing_from_the_network(mali: BeautifulSoup) -> None:
    assert not mali.select("[src]")
    assert not mali.select("link[rel=stylesheet]")
    hrefs = [str(a["href"]) for a in mali.select("[href]")]
    assert all(h.startswith(("#", "https://", "data:")) for h in hrefs), hrefs
    styles = " ".join(style.get_text() for style in mali.select("style"))
    assert "@import" not in styles and "url(" not in styles


def test_only_the_report_script_may_run_and_no_referrer_is_sent(mali: BeautifulSoup) -> None:
    [script] = mali.select("script")
    assert script["id"] == "report-script"
    digest = base64.b64encode(hashlib.sha256(script.get_text().encode()).digest()).decode()
    csp = str(found(mali, 'meta[http-equiv="Content-Security-Policy"]')["content"])
    assert "default-src 'none'" in csp
    assert f"script-src 'sha256-{digest}'" in csp
    assert "img-src data:" in csp and "style-src 'unsafe-inline'" in csp
    assert found(mali, 'meta[name="referrer"]')["content"] == "no-referrer"


def test_header_names_the_time_the_window_and_the_counts(mali: BeautifulSoup) -> None:
    header = text(found(mali, "header.top"))
    assert "Travel advisory history" in header
    assert "Generated 12 Nov 2025 12:00 UTC" in header
    assert "Window all stored history" in header
    assert "Changes 8" in header and "Countries 1" in header and "Sources 4" in header
    assert "critical 3" in header and "noise 1" in header


# --- the current state ---------------------------------------------------------------------------


def test_matrix_has_a_row_per_country_and_a_column_per_source(mali: BeautifulSoup) -> None:
    matrix = found(mali, "table.matrix")
    heads = [text(th) for th in matrix.select("thead th")]
    assert heads == [
        "Country",
        "UK FCDO uk-mali",
        "US State Department us-state",
        "France Diplomatie fr-mali",
        "MSC msc",
    ]
    [row] = matrix.select("tbody tr")
    assert found(row, "th a")["href"] == "#country-ML"
    assert text(found(row, "th")) == "Mali (ML)"
    assert found(mali, "section#country-ML")


def test_cells_show_the_level_the_label_and_the_last_change(mali: BeautifulSoup) -> None:
    uk, us, fr, msc = found(mali, "table.matrix tbody tr").select("td")
    assert text(uk) == "4 Advise against all travel changed 30 Oct 2025"  # the 8 Nov change was noise
    assert found(uk, ".lvl")["class"] == ["lvl", "l4"]
    assert text(us) == "4 Level 4: Do Not Travel changed 30 Oct 2025"
    assert text(fr) == "4 Formellement déconseillé changed 7 Nov 2025"
    assert text(msc) == "Resumed Resumption of bookings to and from Mali changed 10 Nov 2025"
    assert "n-resumption" in found(msc, ".lvl")["class"]


def test_a_cell_without_change_says_since_when_and_one_without_record_is_empty() -> None:
    history = mali_history()
    quiet = replace(
        history,
        countries=("ML", "NE"),
        changes=tuple(c for c in history.changes if c.source_id != "uk-mali"),
    )
    soup = parse(quiet)
    mali_row, niger_row = soup.select("table.matrix tbody tr")
    assert text(mali_row.select("td")[0]) == "4 Advise against all travel since 20 Oct 2025"
    assert [text(td) for td in niger_row.select("td")] == ["—"] * 4
    assert text(found(soup, "section#country-NE")).endswith("No change in this window.")


def test_a_carrier_without_a_notice_says_so() -> None:
    soup = parse(mali_history(Window(until=at(5))))
    msc = found(soup, "table.matrix tbody tr").select("td")[3]
    assert text(msc) == "No notice since 20 Oct 2025"
    assert "n-none" in found(msc, ".lvl")["class"]


# --- the timeline --------------------------------------------------------------------------------


def test_timeline_has_a_step_line_per_leveled_source_and_a_marker_per_change(mali: BeautifulSoup) -> None:
    svg = found(mali, "section#country-ML svg.timeline")
    assert [path["data-source"] for path in svg.select("path.step")] == ["uk-mali", "us-state", "fr-mali"]
    assert all(str(path["d"]).startswith("M") for path in svg.select("path.step"))
    markers = svg.select("circle[data-class]")
    assert sorted(str(m["data-class"]) for m in markers) == sorted(
        c.change_class.value for c in mali_history().changes
    )
    titles = {text(m) for m in markers}
    assert (
        "critical · US State Department · 30 Oct 2025 09:00 UTC · staff departure: authorized → ordered"
        in titles
    )
    legend = text(found(mali, "section#country-ML figcaption.legend"))
    assert "UK FCDO" in legend and "France Diplomatie" in legend


def test_carrier_notices_are_a_lane_below_the_levels(mali: BeautifulSoup) -> None:
    [lane] = mali.select("section#country-ML svg.timeline g.lane")
    assert lane["data-source"] == "msc"
    segments = lane.select("rect.seg")
    assert [seg["class"][1] for seg in segments] == ["n-suspension", "n-resumption"]
    assert text(segments[0]) == "Suspended: Suspension of bookings to and from Mali (from 6 Nov 2025)"
    assert "Suspended" in [text(t) for t in lane.select("text.seg-text")]
    carrier_markers = lane.find_parent("svg").select('circle[data-source="msc"]')  # type: ignore[union-attr]
    lane_top = float(str(segments[0]["y"]))
    assert all(float(str(m["cy"])) > lane_top for m in carrier_markers)


def test_the_window_start_sets_the_left_edge_and_earlier_points_the_starting_level() -> None:
    soup = parse(mali_history(Window(since=at(1))))
    svg = found(soup, "section#country-ML svg.timeline")
    # UK's last level before the window (30 Oct) is drawn from the left edge.
    uk = found(svg, 'path.step[data-source="uk-mali"]')
    assert str(uk["d"]).startswith(f"M{LEFT:.1f} ")
    assert len(svg.select("circle[data-class]")) == 5
    assert [int(str(li["data-id"])) for li in rows(soup)] == [8, 7, 6, 5, 4]
    assert "Window 1 Nov 2025 09:00 UTC – now" in text(found(soup, "header.top"))


def test_the_window_end_sets_the_state_and_the_changes_shown() -> None:
    soup = parse(mali_history(Window(since=at(20, month=10), until=at(5))))
    assert [int(str(li["data-id"])) for li in rows(soup)] == [4, 3, 2, 1]
    fr = found(soup, "table.matrix tbody tr").select("td")[2]
    assert text(fr) == "4 Formellement déconseillé changed 4 Nov 2025"
    # Nothing is drawn beyond the right edge, which is the window's end.
    for path in soup.select("path.step"):
        assert str(path["d"]).endswith(f"H{WIDTH - 14:.1f}")
    header = text(found(soup, "header.top"))
    assert "Window 20 Oct 2025 09:00 UTC – 5 Nov 2025 09:00 UTC" in header


# --- the changes ---------------------------------------------------------------------------------


def test_changes_are_listed_newest_first(mali: BeautifulSoup) -> None:
    listed = rows(found(mali, "section#country-ML"))
    assert [int(str(li["data-id"])) for li in listed] == [8, 7, 6, 5, 4, 3, 2, 1]
    assert [li["data-class"] for li in listed][:3] == ["relaxed", "noise", "critical"]
    assert [li["data-source"] for li in listed][:2] == ["msc", "uk-mali"]


def test_a_change_shows_times_source_class_levels_reasons_link_and_delivery(mali: BeautifulSoup) -> None:
    us = found(mali, 'li.change[data-id="2"]')
    meta = text(found(us, ".meta"))
    assert "CRITICAL" in meta
    assert "Detected 30 Oct 2025 09:00 UTC" in meta
    assert "Published 30 Oct 2025 08:20 UTC" in meta
    assert "US State Department (us-state)" in meta
    assert text(found(us, ".levels")) == "Level: 4 Level 4: Do Not Travel → 4 Level 4: Do Not Travel"
    reasons = [text(li) for li in us.select(".reasons li")]
    assert reasons[0] == "staff departure: authorized → ordered"
    assert text(found(us, ".reasons q")) == "Ordered departure of non-emergency staff and family members."
    assert found(us, ".title a")["href"] == "https://travel.state.gov/"
    delivery = text(found(us, ".delivery"))
    assert "1 sent, 0 failed, 0 pending" in delivery
    assert "publisher → detection: 40 min" in delivery and "detection → first alert: 4 s" in delivery


def test_missing_publisher_time_and_failed_alerts_are_shown(mali: BeautifulSoup) -> None:
    assert "Published —" in text(found(mali, 'li.change[data-id="4"] .meta'))
    failed = found(mali, 'li.change[data-id="6"] .delivery')
    assert text(found(failed, ".failed")) == "1 failed"
    assert "detection → first alert: —" in text(failed)


def test_diff_lines_are_marked_added_and_removed_with_the_changed_words(mali: BeautifulSoup) -> None:
    us = found(mali, 'li.change[data-id="2"] .diff')
    removed, added = us.select("p")
    assert removed["class"] == ["removed"] and added["class"] == ["added"]
    assert [text(d) for d in removed.select("del")] == ["Authorized", "staff."]
    assert [text(i) for i in added.select("ins")] == ["Ordered", "staff and family members."]
    uk = found(mali, 'li.change[data-id="3"] .diff')
    [line] = uk.select("p")
    assert line["class"] == ["added"] and not line.select("ins")
    assert text(line) == "If you are in Mali, you should leave by commercial means now."


def test_a_carrier_change_names_its_notice(mali: BeautifulSoup) -> None:
    suspension = found(mali, 'li.change[data-id="5"]')
    assert text(found(suspension, ".notice")) == "Suspended: Suspension of bookings to and from Mali"
    assert not suspension.select(".levels")


def test_changes_without_a_watched_country_go_to_other() -> None:
    history = mali_history()
    extra = (
        change(9, MSC, at(11), ChangeClass.UPDATE, countries=()),
        change(10, US, at(11, 10), ChangeClass.UPDATE, countries=("NE",)),
        change(11, UK, at(11, 11), ChangeClass.SEVERE, countries=("ML", "NE")),
    )
    soup = parse(replace(history, changes=history.changes + extra))
    other = found(soup, "section#other")
    assert text(found(other, "h2")) == "Other changes"
    assert [int(str(li["data-id"])) for li in rows(other)] == [10, 9]
    assert [int(str(li["data-id"])) for li in rows(found(soup, "section#country-ML"))][:1] == [11]
    assert soup.select('nav a[href="#other"]')


# --- health and filters ----------------------------------------------------------------------------


def test_health_table_events_and_alert_counts(mali: BeautifulSoup) -> None:
    health = found(mali, "section#health")
    table_rows = health.select("table.health tbody tr")
    assert [tr["data-source"] for tr in table_rows] == ["uk-mali", "us-state", "fr-mali", "msc"]
    msc = text(table_rows[3])
    assert "MSC (msc), every 1 h" in msc
    assert "ok" in msc and "12 Nov 2025 11:55 UTC unchanged" in msc
    events = [text(li) for li in health.select("ul.events li")]
    assert events == [
        "5 Nov 2025 11:00 UTC France Diplomatie: recovered",
        "5 Nov 2025 09:00 UTC France Diplomatie: unhealthy blocked: HTTP 403 (bot challenge)",
    ]
    assert text(found(health, ".alerts")) == "5 sent · 1 failed · 0 pending"
    assert text(found(health, ".alerts .failed")) == "1 failed"


def test_an_unhealthy_blocked_source_is_highlighted() -> None:
    history = mali_history()
    failing = replace(
        history.sources[2],
        health="unhealthy",
        health_reason="3 checks in a row failed",
        health_since=at(12, 10),
        last_outcome="blocked",
        last_error="HTTP 403",
        consecutive_failures=3,
        active=False,
    )
    soup = parse(replace(history, sources=(*history.sources[:2], failing, history.sources[3])))
    row = found(soup, 'table.health tr[data-source="fr-mali"]')
    assert row["class"] == ["unhealthy", "blocked"]
    assert text(found(row, ".tag.blocked")) == "blocked"
    cells = text(row)
    assert "unhealthy" in cells and "3 checks in a row failed since 12 Nov 2025 10:00 UTC" in cells
    assert "no longer configured" in cells and "blocked HTTP 403" in cells
    assert text(found(row, "td.num.bad")) == "3"


def test_filters_offer_every_class_and_every_source(mali: BeautifulSoup) -> None:
    boxes = mali.select("#filters input[type=checkbox]")
    assert [b["value"] for b in boxes if b["data-filter"] == "class"] == list(CLASSES)
    assert [b["value"] for b in boxes if b["data-filter"] == "source"] == [
        "uk-mali",
        "us-state",
        "fr-mali",
        "msc",
    ]
    assert all(b.has_attr("checked") for b in boxes)
    assert text(found(mali, "#filters .shown")) == "8 of 8 changes shown"


# --- hostile source text -----------------------------------------------------------------------------


def test_hostile_source_text_stays_text() -> None:
    html = render_report(hostile_history())
    soup = BeautifulSoup(html, "html.parser")
    assert [script.get("id") for script in soup.find_all("script")] == ["report-script"]
    own = soup.find("script")
    assert own is not None and "alert" not in own.get_text()
    for tag in soup.find_all(True):
        assert not [name for name in tag.attrs if name.lower().startswith("on")], tag
        for name in ("href", "src", "action", "xlink:href"):
            value = tag.get(name)
            assert not (isinstance(value, str) and value.strip().lower().startswith("javascript:")), tag
    assert soup.find(string=lambda s: SCRIPT in s) is not None
    assert soup.find(string=lambda s: BROKEN in s) is not None
    assert not soup.find_all("h1", string="broken")
    assert [h1.get_text() for h1 in soup.find_all("h1")] == ["Travel advisory history"]
    assert not soup.find_all("img")
    # The javascript: page address is shown, not linked.
    entry = found(soup, 'li.change[data-id="1"]')
    assert not entry.select(".title a") and text(found(entry, ".url")) == JS_URL
    assert found(soup, "table.health tbody th").find("a") is None
    # The SVG's texts and the matrix cell stayed where they belong.
    assert soup.find("title", string=lambda s: bool(s) and "</svg>" in s) is None
    assert len(soup.select("svg.timeline")) == 1
    assert (
        text(found(soup, "table.matrix tbody td")) == "4 </svg><script>alert(2)</script> changed 3 Nov 2025"
    )
    assert HOSTILE in text(found(soup, "section#health"))


# --- a large history ---------------------------------------------------------------------------------


def test_a_large_history_is_paged_per_country() -> None:
    history = benchmark()["large_history"](10_000)
    assert len(history.changes) == 10_000
    detected = {c.id: c.detected_at for c in history.changes}
    root = lxml.html.fromstring(render_report(history))
    sections = root.xpath("//section[@class='country']")
    assert len(sections) == 20
    for section in sections:
        [changes] = section.xpath(".//ol[@class='changes']")
        live = changes.xpath("./li[@class='change']")
        chunks = changes.xpath("./template[@class='older']")
        assert len(live) == LIVE_ROWS
        sizes = [len(chunk.xpath("./li[@class='change']")) for chunk in chunks]
        assert sizes == [CHUNK_ROWS] * 4 + [500 - LIVE_ROWS - 4 * CHUNK_ROWS]
        times = [detected[int(li.get("data-id"))] for li in changes.xpath(".//li[@class='change']")]
        assert len(times) == 500 and times == sorted(times, reverse=True)
        assert section.xpath(".//button[@class='show-older']")
    live_rows = root.xpath("//ol[@class='changes']/li[@class='change']")
    assert len(live_rows) == 20 * LIVE_ROWS


def test_the_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    benchmark()["main"](["-n", "100", "--no-browser"])
    output = capsys.readouterr().out
    assert "100 changes, 20 countries, 5 sources" in output and "render_report: median" in output


# --- the pieces --------------------------------------------------------------------------------------


def test_a_reason_with_a_quote_is_split_and_any_other_is_a_label() -> None:
    split = reason("leave now: “Leave by commercial means.”")
    assert (split.label, split.quote) == ("leave now", "Leave by commercial means.")
    plain = reason("staff departure: authorized → ordered")
    assert (plain.label, plain.quote) == ("staff departure: authorized → ordered", None)


def test_an_edit_in_a_long_line_keeps_the_words_around_it() -> None:
    words = " ".join(f"word{i}" for i in range(200))
    removed, added = diff_excerpt(f"-{words}\n+{words.replace('word100 ', 'changed ')}\n")
    assert not removed.added and added.added
    marked = [p.text for p in added.pieces if p.changed]
    assert marked == ["changed "]
    shown = "".join(p.text for p in added.pieces)
    assert shown.startswith("… ") and shown.endswith(" …") and len(shown) < 200
    assert "word99 changed word101" in shown


def test_unlike_lines_are_shown_whole() -> None:
    removed, added = diff_excerpt("-Une vigilance accrue est demandée.\n+Leave now by any means.\n")
    assert [p.changed for p in removed.pieces + added.pieces] == [False, False]


@pytest.mark.parametrize(
    ("span", "labels"),
    [
        (
            timedelta(hours=5),
            ["7 Nov 09:00", "7 Nov 10:00", "7 Nov 11:00", "7 Nov 12:00", "7 Nov 13:00", "7 Nov 14:00"],
        ),
        (timedelta(days=20), ["10 Nov", "17 Nov", "24 Nov"]),
        (timedelta(days=400), ["Jan 2026", "Mar 2026", "May 2026", "Jul 2026", "Sep 2026", "Nov 2026"]),
        (timedelta(days=3000), ["2026", "2028", "2030", "2032", "2034"]),
    ],
)
def test_ticks_fall_on_round_moments(span: timedelta, labels: list[str]) -> None:
    start = at(7, 9)
    shown = ticks(Axis(start, start + span))
    assert [tick.label for tick in shown] == labels
    assert all(LEFT <= tick.x <= WIDTH for tick in shown)
