"""The `vpipe` command: parse, call one stage, format. One module per command family, imported when one
of its commands runs (`app.COMMANDS`); `app` holds the group that turns every error into one line and
its exit code."""

from __future__ import annotations

from .app import main

__all__ = ["main"]
