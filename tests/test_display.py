"""Unit tests of monitor.display: text made safe for terminals and for Markdown."""

from __future__ import annotations

import html
import re

from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from monitor.display import markdown_text, printable

# CommonMark with the extensions chat services add (tables, strikethrough) and bare links.
MARKDOWN = MarkdownIt("commonmark").enable(["table", "strikethrough"])
TAG = re.compile(r"<[^>]+>")


def rendered_text(markdown: str) -> tuple[str, set[str]]:
    """The visible text of rendered Markdown (whitespace folded) and the tags it used."""
    out = MARKDOWN.render(markdown)
    tags = {m.group().split()[0].strip("</>") for m in TAG.finditer(out)}
    text = html.unescape(TAG.sub(" ", out)).replace("\u2060", "").replace("\u00a0", " ")
    return " ".join(text.split()), tags


def test_injected_markdown_and_html_render_as_text() -> None:
    text = (
        "Leave *now* [click](javascript:alert(1)) <script>x</script> ![i](x) `code` ~~gone~~\n"
        "# Heading\n- item\n1. item\n> quote\n    indented\n===\n| a | b |\n|---|---|\n| c | d |"
    )
    shown, tags = rendered_text(markdown_text(text))

    assert tags <= {"p", "br"}
    assert shown == " ".join(text.split())


def test_links_stay_links_and_mentions_notify_nobody() -> None:
    text = "Official page: https://www.gov.uk/foreign-travel-advice/mali?a=1#b_c @everyone @here"
    markdown = markdown_text(text)

    assert "https://www.gov.uk/foreign-travel-advice/mali?a=1#b_c" in markdown
    assert "@everyone" not in markdown and "@here" not in markdown
    assert rendered_text(markdown)[0] == text


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=200))
def test_any_text_renders_as_itself(text: str) -> None:
    shown, tags = rendered_text(markdown_text(text))

    assert tags <= {"p", "br"}
    assert shown == " ".join(text.replace("\u2060", "").replace("\u00a0", " ").split())


def test_printable_replaces_what_a_terminal_would_obey() -> None:
    assert printable("a\x1b[2Jb\x07c\x9bd\te\nf") == "a\ufffd[2Jb\ufffdc\ufffdd\te\nf"
