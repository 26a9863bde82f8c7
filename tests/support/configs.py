"""Configurations the alert tests share."""

from __future__ import annotations

from pathlib import Path

from monitor.config import Config, loads
from tests.support.httpserver import LocalServer


def uk_mali_config(server: LocalServer, alerts: str) -> Config:
    """The UK's Mali page served by ``server``, and the ``alerts`` section given (YAML list items)."""
    text = f"""
defaults: {{timeout: 2s}}
sources:
  - {{id: uk-mali, kind: html, url: "{server.url("/mali")}", countries: [ML], publisher: UK FCDO,
      options: {{select: .advice}}}}
alerts:
{alerts}
"""
    return loads(text, path=Path("t.yaml"), environ={})
