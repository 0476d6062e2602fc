"""The ``coldstart`` command line: the only place where strings become classes.

Each sub-module registers its commands on the shared Typer ``app``:
``data`` (datasets, split, evaluate), ``pretrain``, ``distill``, ``elicit``,
``bench`` (bench, report, tune) and ``demo``. Errors print one line and exit with 2 for bad
usage or input, 1 otherwise; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import logging
import sys

import typer

from recsys_coldstart.exceptions import ColdStartError, DataError

app = typer.Typer(
    name="coldstart",
    help="Cold-start recommendation toolkit: datasets, splits, models, evaluation, elicitation, reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_STATE = {"debug": False}


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
          verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details.")) -> None:
    """Cold-start recommendation toolkit."""
    _STATE["debug"] = debug
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")


def _register() -> None:
    from recsys_coldstart.cli import bench, data, demo, distill, elicit, pretrain

    for mod in (data, pretrain, distill, elicit, bench, demo):
        mod.register(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``coldstart``; returns the exit code."""
    _register()
    args = sys.argv[1:] if argv is None else argv
    _STATE["debug"] = "--debug" in args
    _STATE["argv"] = list(args)  # for `pretrain --nproc N`, which re-launches itself through torchrun
    try:
        rc = app(args=args, standalone_mode=False)
    except SystemExit as e:
        return int(e.code or 0)
    except typer.Exit as e:
        return int(getattr(e, "exit_code", 0) or 0)
    except typer.Abort as e:
        # click turns *any* EOFError raised by a command into Abort: that is a failure, not Ctrl-C.
        cause = e.__cause__ or e.__context__
        if isinstance(cause, EOFError):
            if _STATE["debug"]:
                raise cause from None
            typer.echo(f"error: EOFError: {_one_line(cause) or 'unexpected end of file'} "
                       "(run with --debug for the traceback)", err=True)
            return 1
        typer.echo("aborted", err=True)
        return 1
    except typer.TyperException as e:  # click usage errors: bad option, missing argument, no args
        if hasattr(e, "show"):
            e.show()
        code = getattr(e, "exit_code", 2)
        return 0 if type(e).__name__ == "NoArgsIsHelpError" else int(code)
    except (DataError, FileNotFoundError, ValueError, KeyError) as e:
        if _STATE["debug"]:
            raise
        typer.echo(f"error: {_one_line(e)}", err=True)
        return 2
    except ColdStartError as e:
        if _STATE["debug"]:
            raise
        typer.echo(f"error: {_one_line(e)}", err=True)
        return 1
    except Exception as e:  # noqa: BLE001 - the CLI's last line of defence
        if _STATE["debug"]:
            raise
        typer.echo(f"error: {type(e).__name__}: {_one_line(e)} (run with --debug for the traceback)", err=True)
        return 1
    return int(rc) if isinstance(rc, int) else 0


def _one_line(e: BaseException) -> str:
    msg = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    return " ".join(msg.split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
