"""Source kinds, one module each; importing this package registers them all."""

from __future__ import annotations

import importlib
import pkgutil

from monitor.sources.base import REGISTRY, Source, build, register

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["REGISTRY", "Source", "build", "register"]
