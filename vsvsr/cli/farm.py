"""``vsvsr farm INPUT OUTPUT``: ``vsvsr upscale`` split into scene chunks run in parallel on Ray.

The input is cut into chunks of about --chunk-frames frames that start at reset points (frame
0, scene changes found with --scene-detect, frames of a --cuts list), so every chunk computes
exactly the frames one continuous ``vsvsr upscale`` run with the same options would. One Ray
task per chunk (on this machine by default, or on a cluster with --address) encodes it; the
chunks are joined with ffmpeg's concat demuxer (no re-encode) and the source's audio is muxed
in. A manifest in the work folder makes an interrupted run resumable; a worker that dies is
retried. It takes ``vsvsr upscale``'s options, with the same names and meanings.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from vsvsr.cli import upscale as upscale_cmd
from vsvsr.cli._common import positive_int

NAME = "farm"
HELP = "upscale in parallel scene chunks on Ray (this machine or a cluster), exactly"


def add_arguments(p: argparse.ArgumentParser) -> None:
    upscale_cmd.add_arguments(p)
    farm = p.add_argument_group("farm (Ray)")
    farm.add_argument("--chunk-frames", type=positive_int, default=1000,
                      help="most frames per chunk; scenes are packed into chunks up to this "
                           "(default 1000). A longer scene stays whole unless --warmup is given")
    farm.add_argument("--address", default=None,
                      help="Ray cluster to use: auto, HOST:6379 or ray://HOST:10001 "
                           "(default: start a local instance on this machine)")
    farm.add_argument("--connect-timeout", type=float, default=30.0, metavar="SECONDS",
                      help="give up on --address after this long (default 30)")
    farm.add_argument("--num-cpus", type=positive_int, default=None,
                      help="CPUs of the local instance (default: all cores)")
    farm.add_argument("--num-gpus", type=int, default=None,
                      help="GPUs of the local instance (default: all)")
    farm.add_argument("--cpus-per-task", type=float, default=1.0,
                      help="CPUs each chunk reserves (default 1); --threads 0 means this many "
                           "inference threads")
    farm.add_argument("--gpus-per-task", type=float, default=0.0,
                      help="GPUs each chunk reserves; fractions let chunks share a GPU, e.g. 0.5 "
                           "(default 0)")
    farm.add_argument("--retries", type=int, default=3,
                      help="retries of a chunk whose worker died (default 3)")
    farm.add_argument("--work-dir", type=Path, default=None,
                      help="folder for the manifest and chunks (default OUTPUT.farm beside "
                           "OUTPUT); on a cluster it must be shared by every machine")
    farm.add_argument("--send-chunks", action="store_true",
                      help="workers send finished chunks to this machine through Ray instead of "
                           "writing them into --work-dir (when the workers share no storage with "
                           "it; the input must still be at the same path on every machine)")
    farm.add_argument("--restart", action="store_true",
                      help="discard an earlier run's manifest and chunks and start over")
    farm.add_argument("--keep-chunks", action="store_true",
                      help="keep the work folder after joining")
    farm.add_argument("--report", type=Path, default=None,
                      help="JSON report file (default OUTPUT.farm.json beside OUTPUT)")


def run(args: argparse.Namespace) -> int:
    from vsvsr.farm.driver import FarmOptions, run_farm

    t0 = time.perf_counter()
    opts = FarmOptions(job=upscale_cmd.options_from_args(args), chunk_frames=args.chunk_frames,
                       work_dir=args.work_dir, address=args.address, num_cpus=args.num_cpus,
                       num_gpus=args.num_gpus, cpus_per_task=args.cpus_per_task,
                       gpus_per_task=args.gpus_per_task, retries=args.retries,
                       restart=args.restart, keep_chunks=args.keep_chunks, report=args.report,
                       send_chunks=args.send_chunks,
                       connect_timeout=args.connect_timeout)
    report = run_farm(opts)
    approx = report["approximate_chunks"]
    print(f"vsvsr farm: wrote {report['output']} ({report['frames']} frames, "
          f"{report['chunks_run']} of {report['chunks_total']} chunks run on "
          f"{len(report['workers'])} workers, {report['retries']} retries, "
          f"{time.perf_counter() - t0:.1f} s; audio: {report['audio']})"
          + (f"; APPROXIMATE chunks (mid-scene warm-up): {approx}" if approx else "")
          + f"; report: {opts.report_path}")
    return 0
