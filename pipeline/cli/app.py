"""The `vpipe` group: the only place errors become exit codes (one line, never a traceback)."""

from __future__ import annotations

import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any, NoReturn

import click

from ..errors import DISK_FULL_HINT, DiskFullError, VpipeError, is_disk_full
from ..job import jobs_dir
from ..models import store


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"vpipe: error: {message}", err=True)
    sys.exit(code)


class Group(click.Group):
    """Turns every known error into one line and its exit code; never a traceback for the user."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VpipeError as exc:
            _fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except BrokenPipeError:  # `vpipe status | head`: the reader left; stop quietly, as other tools do
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(141)
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
        os.environ[store.OFFLINE_ENV] = "1"  # read where a model is obtained (models.store.offline)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops as cleanly as Ctrl-C
