"""The files the dashlet page is made of (served by the API, listed in the OpenAPI document)."""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
PAGE = HERE / "page.html"
STATIC = {name: HERE / "static" / name for name in ("app.js", "app.css", "icon.svg")}
