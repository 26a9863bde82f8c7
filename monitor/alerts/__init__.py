"""Alerts: routing, rendering and durable delivery of changes through apprise."""

from __future__ import annotations
