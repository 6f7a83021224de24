"""The app's own page templates: autoescaped Jinja2, apart from marketing's message templates."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates

pages = Jinja2Templates(directory=Path(__file__).parent / "templates")
