"""The `vpipe` group: the only place errors become exit codes (one line, never a traceback)."""

from __future__ import annotations

import importlib
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any, NoReturn

import click

from ..errors import DISK_FULL_HINT, DiskFullError, VpipeError, is_disk_full
from ..job import jobs_dir


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"vpipe: error: {message}", err=True)
    sys.exit(code)


def _reader_left() -> NoReturn:
    """`vpipe status | head`: the reader closed the pipe; stop quietly, as other tools do (141: SIGPIPE's code)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # what is still buffered goes nowhere at exit, not into a warning
    os.dup2(devnull, sys.stderr.fileno())
    sys.exit(141)


# Each command's module and function: a module is imported when one of its commands runs (or --help
# lists them all), so a command does not pay for the others' imports.
COMMANDS = {"run": "jobs:run", "split": "jobs:split", "stylize": "jobs:stylize", "retry-failed": "jobs:retry_failed",
            "assemble": "jobs:assemble", "status": "inspect:status", "metrics": "inspect:metrics",
            "verify": "inspect:verify", "doctor": "inspect:doctor", "preview": "inspect:preview",
            "models": "models:models_group", "train-style": "train:train_style", "styles": "models:styles_command"}


class Group(click.Group):
    """Turns every known error into one line and its exit code; never a traceback for the user. Its
    commands are `COMMANDS`, in the order listed there."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, function = COMMANDS[name].split(":")
        command: click.Command = getattr(importlib.import_module(f"{__package__}.{module}"), function)
        return command

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Also --help, --version and the last flush at exit: a closed pipe is quiet wherever it is met."""
        try:
            try:
                return super().main(*args, **kwargs)
            finally:
                sys.stdout.flush()
        except BrokenPipeError:
            _reader_left()
        except SystemExit as exc:  # click's own answer to a closed pipe (while printing --help): exit 1
            if exc.code == 1 and "PacifyFlushWrapper" in type(sys.stdout).__name__:
                _reader_left()
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VpipeError as exc:
            _fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except BrokenPipeError:
            _reader_left()
        except click.UsageError as exc:  # a bad option: one line too, like every other error
            hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
            _fail(exc.format_message() + hint, exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as exc:  # a bug: one line here, the traceback on request
            if is_disk_full(exc):  # e.g. the log or the manifest could not grow
                _fail(f"no space left on the device ({exc}); {DISK_FULL_HINT}", DiskFullError.exit_code)
            if os.environ.get("VPIPE_DEBUG"):
                traceback.print_exc()
            _fail(f"internal error ({type(exc).__name__}: {exc}); set VPIPE_DEBUG=1 for the traceback", 1)


def _base(ctx: click.Context) -> Path:
    return jobs_dir(ctx.obj.get("jobs_dir"))


def base(ctx: click.Context) -> Path:
    """The jobs folder: --jobs-dir, $VPIPE_JOBS_DIR, else ./jobs."""
    return jobs_dir(ctx.obj.get("jobs_dir"))


@click.group(cls=Group)
@click.option("--jobs-dir", type=click.Path(file_okay=False, path_type=Path), envvar="VPIPE_JOBS_DIR",
              help="Where jobs live (default ./jobs).")
@click.option("--offline", is_flag=True,
              help="Never download: a missing catalogue model is an error saying where to place it "
                   "(also VPIPE_OFFLINE=1). By default a run fetches a missing catalogue model first.")
@click.version_option(package_name="vpipe")
@click.pass_context
def main(ctx: click.Context, jobs_dir: Path | None, offline: bool) -> None:
    """Resumable batch video stylization: split, stylize, retry-failed, assemble."""
    ctx.ensure_object(dict)
    ctx.obj["jobs_dir"] = jobs_dir
    if offline:
        from ..models import store  # here: only --offline needs the model store

        os.environ[store.OFFLINE_ENV] = "1"  # read where a model is obtained (models.store.offline)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops as cleanly as Ctrl-C
