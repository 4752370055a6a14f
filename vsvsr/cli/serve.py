"""``vsvsr serve``: a local web page to pick a video, preview any frame and run the upscale.

Open the address it prints. The page lists the videos under ``--root`` (nothing outside it is
reachable), takes uploads up to ``--max-upload``, shows bicubic vs vsvsr for any frame
(computed exactly, on demand) and runs jobs with the same code as ``vsvsr upscale``, one at a
time by default (``--jobs N`` for more, ``--queue M`` waiting), each in its own process. The
jobs and their logs are kept in ``ROOT/.vsvsr-serve.sqlite`` across restarts. It listens on
127.0.0.1 only, unless ``--host`` says otherwise: there is no login, so anyone who can reach
the port can read and write the served folder.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

from vsvsr.utils.lazy import lazy_import

NAME = "serve"
HELP = "a local web page: preview frames, run upscale jobs with progress"
log = logging.getLogger(__name__)
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_bytes(text: str) -> int:
    """``500M``, ``2G``, ``1048576`` -> bytes (binary units)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", text.lower())
    if not m:
        raise argparse.ArgumentTypeError(f"bad size {text!r}: use e.g. 500M or 2G")
    value = int(float(m.group(1)) * _UNITS[m.group(2)])
    if value < 1:
        raise argparse.ArgumentTypeError(f"size {text!r} must be positive")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8765, help="TCP port (default 8765; 0: any)")
    p.add_argument("--root", type=Path, default=Path("."),
                   help="the folder the page may browse, read and write (default: here)")
    p.add_argument("--jobs", type=int, default=1,
                   help="upscale jobs running at once (default 1)")
    p.add_argument("--queue", type=int, default=4,
                   help="jobs that may wait for a slot; more are refused (default 4)")
    p.add_argument("--max-upload", type=parse_bytes, default=2 * 1024**3, metavar="SIZE",
                   help="largest upload, e.g. 500M (default 2G)")
    p.add_argument("--db", type=Path, default=None,
                   help="job store file (default ROOT/.vsvsr-serve.sqlite)")


def run(args: argparse.Namespace) -> int:
    from vsvsr.web.app import create_app
    from vsvsr.web.settings import ServeSettings

    uvicorn = lazy_import("uvicorn", "vsvsr serve")
    settings = ServeSettings(root=args.root, host=args.host, port=args.port, jobs=args.jobs,
                             queue=args.queue, max_upload=args.max_upload, db=args.db)
    app = create_app(settings)
    if args.host not in LOCAL_HOSTS:
        print(f"vsvsr serve: WARNING: listening on {args.host}, not only on this machine; the "
              "page has no login, so anyone who can reach this port can read, upload and "
              f"overwrite files in {app.state.root.path} and run jobs", file=sys.stderr)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"vsvsr serve: serving {app.state.root.path} at http://{host}:{args.port}/ "
          f"({settings.jobs} job(s) at once, {settings.queue} waiting; Ctrl-C stops)",
          file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning",
                timeout_graceful_shutdown=5)
    return 0
