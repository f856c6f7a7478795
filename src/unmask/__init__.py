"""unmask: diffusion language models, loaded without remote code, decoded exactly and fast.

``unmask.load(path)`` and ``unmask.generate(model, prompt_ids, **params)`` are the stable API;
they are imported lazily so that ``import unmask`` (and ``unmask --help``) stays instant.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "generate", "load", "save"]


def __getattr__(name: str) -> Any:
    if name in ("load", "generate", "save"):
        from unmask import api

        return getattr(api, name)
    raise AttributeError(f"module 'unmask' has no attribute {name!r}")
