"""The ``vsvsr`` command: one entry point, one module per subcommand.

Each subcommand module has ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args)``,
and imports its heavy dependencies inside ``run``, so ``vsvsr --help``, ``vsvsr info`` and
``vsvsr models`` work (and say what is missing) on an install without them.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Iterator, Sequence
from types import FrameType

from vsvsr import __version__
from vsvsr.cli import bench, build, demo, export, farm, info, models, overfit, train, upscale
from vsvsr.cli import eval as eval_cmd
from vsvsr.cli._common import configure_logging, is_vapoursynth_error
from vsvsr.errors import VsvsrError

SUBCOMMANDS = (upscale, farm, demo, bench, eval_cmd, export, build, info, models, train, overfit)


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
        print(f"vsvsr {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if is_vapoursynth_error(exc):
            print(f"vsvsr {args.command}: VapourSynth error: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
