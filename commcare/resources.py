"""Shipped defaults in ``data/``: found inside the installed package, or beside it in a checkout."""

from __future__ import annotations

from functools import cache
from pathlib import Path


@cache
def data_dir() -> Path:
    here = Path(__file__).resolve().parent
    installed = here / "data"
    return installed if installed.is_dir() else here.parent / "data"


@cache
def load_toml(name: str) -> dict:
    """A TOML file of ``data/`` (``name`` without the suffix, may contain ``/``)."""
    import tomli  # tomli rather than tomllib: the project's required shape names it

    with open(data_dir() / f"{name}.toml", "rb") as fh:
        return tomli.load(fh)
