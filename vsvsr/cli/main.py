"""The ``vsvsr`` command: one entry point, one module per subcommand.

Each subcommand module has ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args)``,
and imports its heavy dependencies inside ``run``, so ``vsvsr --help``, ``vsvsr info`` and
``vsvsr models`` work (and say what is missing) on an install without them.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import signal
import sys
from collections.abc import Iterator, Sequence
from types import FrameType

from vsvsr import __version__
from vsvsr.cli import (
    bench,
    build,
    compare,
    demo,
    doctor,
    export,
    farm,
    info,
    models,
    overfit,
    serve,
    train,
    upscale,
)
from vsvsr.cli import eval as eval_cmd
from vsvsr.cli._common import configure_logging, is_vapoursynth_error
from vsvsr.errors import VsvsrError

SUBCOMMANDS = (upscale, farm, demo, bench, eval_cmd, compare, export, build, info, models, train,
               overfit, doctor, serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vsvsr", description="Temporally stable recurrent video super-resolution.",
        epilog="Run 'vsvsr COMMAND --help' for a command's options.")
    parser.add_argument("--version", action="version", version=f"vsvsr {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log messages (-v: info, -vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMANDS:
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter,
                           add_help=module is not train)
        module.add_arguments(p)
        p.set_defaults(run=module.run)
    return parser


class _Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an interrupt so that the same clean-up runs."""


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise _Terminated(f"signal {signum}")


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Let SIGTERM (``kill``, ``timeout``) clean up like Ctrl-C: ffmpeg stopped, no partial file."""
    try:
        old = signal.signal(signal.SIGTERM, _terminate) \
            if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL else None
    except ValueError:  # not the main thread: leave signals alone
        old = None
    try:
        yield
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


def _unprefixed(exc: BaseException, command: str) -> str:
    """The message without the ``vsvsr COMMAND:`` that library code (usable on its own) puts
    first and that :func:`main` prints anyway."""
    text = str(exc)
    prefix = f"vsvsr {command}: "
    return text[len(prefix):] if text.startswith(prefix) else text


_OUR_ERROR_LINE = re.compile(r"^vsvsr(?:\.\w+)+Error: ", re.M)


def _vsvsr_error_in(text: str) -> str | None:
    """The message of a vsvsr error raised inside a frame request, or None.

    VapourSynth hands such an error back as a ``vs.Error`` holding the whole Python traceback;
    the user needs its last ``vsvsr...Error: message`` line, not the traceback.
    """
    found = list(_OUR_ERROR_LINE.finditer(text))
    if not found:
        return None
    return text[found[-1].end():].strip()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # 'vsvsr [-v] train ...' hands every later argument, options included, to the trainer.
    split = train.split_argv(args_list)
    if split is not None:
        head, rest = split
        args = parser.parse_args(head)
        args.train_argv = rest
    else:
        args = parser.parse_args(args_list)
    configure_logging(args.verbose)
    try:
        with _sigterm_as_interrupt():
            return int(args.run(args) or 0)
    except KeyboardInterrupt as exc:
        what = "terminated" if isinstance(exc, _Terminated) else "interrupted"
        print(f"\nvsvsr {args.command}: {what}; nothing half-written was kept",
              file=sys.stderr)
        return 128 + (signal.SIGTERM if isinstance(exc, _Terminated) else signal.SIGINT)
    except VsvsrError as exc:
        print(f"vsvsr {args.command}: error: {_unprefixed(exc, args.command)}", file=sys.stderr)
        return 1
    except Exception as exc:
        if is_vapoursynth_error(exc):
            ours = _vsvsr_error_in(str(exc))
            if ours is not None:  # ours, raised while VapourSynth asked for a frame
                print(f"vsvsr {args.command}: error: {ours}", file=sys.stderr)
            else:
                print(f"vsvsr {args.command}: VapourSynth error: {_unprefixed(exc, args.command)}",
                      file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
