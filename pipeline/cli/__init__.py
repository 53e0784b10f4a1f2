"""The `vpipe` command: parse, call one stage, format. One module per command family; `app` holds the
group that turns every error into one line and its exit code."""

from __future__ import annotations

from .app import main
from .inspect import doctor, metrics, preview, status, verify
from .jobs import assemble, retry_failed, run, split, stylize
from .models import models_group, styles_command
from .train import train_style

for command in (run, split, stylize, retry_failed, assemble, status, metrics, verify, doctor, preview, models_group, train_style,
                styles_command):
    main.add_command(command)

__all__ = ["main"]
