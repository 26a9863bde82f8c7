"""A page that tries to inject markup and script, checked for real over HTTP: what it says is
shown as text in the report, the Atom feed, the alert email and the alert webhook."""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa
from bs4 import BeautifulSoup
from click.testing import CliRunner
from lxml import etree
from markdown_it import MarkdownIt

from monitor.alerts.delivery import view_of
from monitor.alerts.render import render_alert
from monitor.cli import cli
from monitor.config import load
from monitor.pipeline import utcnow
from monitor.report.atom import render_feed
from monitor.report.history import Window
from monitor.report.html import render_report
from monitor.report.load import load_history
from monitor.store import Store
from tests.support.httpserver import LocalServer
from tests.support.receiver import WebhookReceiver

SCRIPT = '<script>alert("x")</script>'
IMAGE = "<img src=x onerror=alert(1)>"
BROKEN = "</td></tr></table><h1>broken"
PAGE = """<!doctype html><html><head><title>Mali &lt;b&gt;advice&lt;/b&gt;</title></head><body>
<nav><a href="/">Home</a></nav>
<div class="advice"><p>Level 2: Exercise increased caution in Mali.</p>{extra}</div>
</body></html>"""
HOSTILE = (
    "<p>Leave Mali now. {script} {image} {broken}</p>"
    '<p><a href="javascript:alert(1)">Details</a> [more](javascript:alert(2)) <div><p>unclosed'
).format(
    script=SCRIPT.replace("<", "&lt;").replace(">", "&gt;"),
    image=IMAGE.replace("<", "&lt;").replace(">", "&gt;"),
    broken=BROKEN.replace("<", "&lt;").replace(">", "&gt;"),
)


def assert_inert_html(html: str, *, own_scripts: int = 0) -> BeautifulSoup:
    """No markup from the page became markup: scripts, handlers and javascript: links."""
    soup = BeautifulSoup(html, "html.parser")
    assert len(soup.find_all("script")) == own_scripts
    for tag in soup.find_all(True):
        assert not [name for name in tag.attrs if name.lower().startswith("on")], tag
        for name in ("href", "src", "action", "xlink:href"):
            value = tag.get(name)
            assert not (isinstance(value, str) and value.strip().lower().startswith("javascript:")), tag
    assert not soup.find_all("h1", string="broken")
    assert soup.find(string=lambda text: SCRIPT in text) is not None
    return soup


def write_config(folder: Path, server: LocalServer, alerts: str) -> Path:
    """A configuration watching the server's /mali page, alerting the channels ``alerts`` lists."""
    path = folder / "monitor.yaml"
    path.write_text(
        f"database: sqlite:///{folder / 'monitor.db'}\n"
        "defaults: {timeout: 5s}\n"
        "sources:\n"
        f'  - {{id: evil, kind: html, url: "{server.url("/mali")}", countries: [ML],'
        " options: {select: .advice}}\n"
        f"alerts:\n{alerts}"
    )
    return path


def test_hostile_page_text_stays_text_everywhere(tmp_path: Path) -> None:
    with LocalServer() as server, WebhookReceiver() as hook:
        server.route("/mali", PAGE.format(extra=""))
        config_path = write_config(
            tmp_path,
            server,
            f'  - {{name: hook, url: "json://127.0.0.1:{hook.port}/hook", min_class: noise}}\n'
            # A service that renders Markdown, as Slack, Discord or Teams do.
            f'  - {{name: chat, url: "json://127.0.0.1:{hook.port}/md?format=markdown", min_class: noise}}\n',
        )
        runner = CliRunner()
        first = runner.invoke(cli, ["--config", str(config_path), "check"])
        assert first.exit_code == 0, first.output
        server.route("/mali", PAGE.format(extra=HOSTILE + " @everyone *bold* ~~gone~~"))
        second = runner.invoke(cli, ["--config", str(config_path), "check"])
        assert second.exit_code == 0, second.output
        hook.wait_for(2, timeout=10)
        post = next(p for p in hook.posts if p.path.startswith("/hook"))
        chat = next(p for p in hook.posts if p.path.startswith("/md"))

    # The webhook's text message carries the page's words as they are (plain text, no markup).
    assert SCRIPT in post.json["message"]
    # The Markdown one renders as that same text: no link, no emphasis, no HTML, no mention.
    rendered = MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(chat.json["message"])
    assert_inert_html(rendered)
    shown = BeautifulSoup(rendered, "html.parser")
    assert {tag.name for tag in shown.find_all(True)} <= {"p", "br"}
    plain = post.json["message"].replace("change-1-hook", "change-1-chat")
    assert " ".join(shown.get_text().replace("\u2060", "").split()) == " ".join(plain.split())
    assert "@everyone" not in chat.json["message"]

    config = load(config_path)
    with Store.open(config.database) as store:
        history = load_history(store, config, Window(), utcnow())
        [change] = history.changes
        details = store.outbox.details([change.id])[change.id]
    assert any(SCRIPT in reason for reason in change.reasons) or SCRIPT in change.diff

    email = render_alert(view_of(details, "change-1-hook", config)).html
    assert_inert_html(email)

    report = render_report(history)
    soup = assert_inert_html(report, own_scripts=1)  # the report's own, and no other
    [own] = soup.find_all("script")
    assert SCRIPT not in (own.string or "") and "Leave Mali" not in (own.string or "")

    feed = render_feed(
        history, country="ML", feed_url="http://127.0.0.1/feeds/ML.atom", report_url="http://127.0.0.1/"
    )
    tree = etree.fromstring(feed)
    assert not tree.xpath("//*[local-name()='script']")
    assert not [h for h in tree.xpath("//@href") if h.strip().lower().startswith("javascript:")]
    # An entry's content is HTML carried as text: as HTML, the page's words are text in it.
    [content] = tree.xpath("//*[local-name()='content']")
    assert content.get("type") == "html"
    assert_inert_html(content.text)


TERMINAL = "\x1b]0;owned\x07\x1b[2J"
MARKUP = "[/b] [link=javascript:alert(3)]click[/link] [bold red]"
PAGE_FOR_TERMINAL = """<!doctype html><html><body><div class="advice">
<p>Level 2: Exercise increased caution in Mali.</p>{extra}</div></body></html>"""


def test_terminal_output_shows_page_text_and_errors_as_they_are(tmp_path: Path) -> None:
    """Rich markup in a page or an error is printed as text (it used to be read as markup, and a
    stray closing tag stopped the command), and control characters never reach the terminal."""
    with LocalServer() as server:
        server.route("/mali", PAGE_FOR_TERMINAL.format(extra=""))
        config_path = write_config(
            tmp_path,
            server,
            '  - {name: hook, url: "json://127.0.0.1:9/hook", min_class: noise, max_attempts: 1}\n',
        )
        runner = CliRunner()
        runner.invoke(cli, ["--config", str(config_path), "check"])
        hostile = f"<p>Leave Mali now. {MARKUP} {TERMINAL}</p>"
        server.route("/mali", PAGE_FOR_TERMINAL.format(extra=hostile))
        outputs = {"check": runner.invoke(cli, ["--config", str(config_path), "check"])}
    with Store.open(f"sqlite:///{tmp_path / 'monitor.db'}") as store, store.engine.begin() as conn:
        # What a channel's server answered is part of the error the outbox keeps.
        conn.execute(sa.text("UPDATE alerts SET last_error = :error"), {"error": f"said {MARKUP} {TERMINAL}"})
    for name, args in {
        "history": ["history"],
        "sources": ["sources"],
        "status": ["status"],
        "alerts": ["alerts", "list"],
    }.items():
        outputs[name] = runner.invoke(cli, ["--config", str(config_path), *args])

    for name, result in outputs.items():
        assert result.exception is None or isinstance(result.exception, SystemExit), (name, result.output)
        assert "\x1b" not in result.output and "\x07" not in result.output, name
    for name in ("check", "alerts"):
        # Table cells wrap long texts: compared without spaces and cell borders.
        compact = re.sub(r"[\s│]", "", outputs[name].output)
        assert "[/b][link=javascript:alert(3)]click[/link][boldred]" in compact, name
    assert "LeaveMalinow." in re.sub(r"[\s│]", "", outputs["history"].output)
