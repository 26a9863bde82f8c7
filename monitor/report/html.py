"""The advisory history as one self-contained HTML file (pure rendering).

:func:`render_report` takes a :class:`~monitor.report.history.History` and returns the page: CSS,
script and SVG charts inline, nothing fetched from anywhere, so it opens from a file, a mail
attachment or a server alike. Every text from a source is escaped by the template (autoescape
everywhere); links are made for http(s) addresses only; the page's own script is the only one
its Content-Security-Policy lets run (by its hash), and it reads the page's data from ``data-``
attributes, never from source text embedded in the script.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from importlib import resources

import jinja2
from markupsafe import Markup

from monitor.alerts.render import SEVERITY, badge_colours
from monitor.report.history import History
from monitor.report.view import page_of

TEMPLATE = "report.html.j2"


def render_report(history: History) -> str:
    """The report about ``history`` as an HTML document."""
    script = _asset("report.js")
    return (
        _environment()
        .get_template(TEMPLATE)
        .render(
            page=page_of(history),
            style=Markup(_style()),
            script=Markup(script),
            csp=content_security_policy(script),
        )
    )


def content_security_policy(script: str) -> str:
    """Nothing loaded from anywhere; only the inline ``script`` runs; inline styles and data:
    images are allowed."""
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return (
        f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )


@functools.cache
def _style() -> str:
    """The stylesheet, with the class colours of the alerts' badges."""
    colours = "".join(
        f".c-{change_class.value}{{--bg:{background};--fg:{foreground}}}"
        for change_class in SEVERITY
        for background, foreground in [badge_colours(change_class)]
    )
    return _asset("report.css") + colours


@functools.cache
def _asset(name: str) -> str:
    return resources.files("monitor.report").joinpath("templates", name).read_text(encoding="utf-8")


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("monitor.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
