"""What ``vsvsr serve`` adds to a job, and what a preview costs (docs/serve.md's figures).

On the built-in sample (60 frames, 256x144 -> 512x288, rvsr-x2, libx264 crf 18): alternating
rounds of ``vsvsr upscale`` (a fresh process) and the same job through the served app (a fresh
worker process), wall time from start to file, medians and their ratio; then preview times of a
fresh server: a frame far from its reset point with and without scene detection, and a frame
the previous preview passed through (kept in the filter's cache).

    PYTHONPATH=. .venv/bin/python scripts/serve_overhead.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--model", default="rvsr-x2")
    args = ap.parse_args()

    from starlette.testclient import TestClient

    from vsvsr.sample.clip import write_sample
    from vsvsr.web.app import create_app
    from vsvsr.web.settings import ServeSettings

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sample = write_sample(root, 2, hr_video=False).lr_video.name
        cli, served = [], []
        with TestClient(create_app(ServeSettings(root=root))) as c:
            def run_cli(i: int) -> None:
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "vsvsr", "upscale", str(root / sample),
                                str(root / f"cli{i}.mkv"), "--model", args.model,
                                "--no-progress"], check=True, capture_output=True)
                cli.append(time.perf_counter() - t0)

            def run_served(i: int) -> None:
                t0 = time.perf_counter()
                job = c.post("/api/jobs", json={"input": sample, "output": f"web{i}.mkv",
                                                "model": args.model}).json()
                while (j := c.get(f"/api/jobs/{job['id']}").json())["state"] in ("queued",
                                                                                   "running"):
                    time.sleep(0.05)
                served.append(time.perf_counter() - t0)
                assert j["state"] == "done", j["error"]

            for i in range(args.rounds):  # alternate which goes first
                for run in (run_cli, run_served) if i % 2 == 0 else (run_served, run_cli):
                    run(i)
        previews = {}
        with TestClient(create_app(ServeSettings(root=root))) as c:
            for label, frame, scene in (("frame 59, no scene detection (59 frames back)", 59,
                                         False),
                                        ("frame 59, scene detection (reset at 45)", 59, True),
                                        ("frame 58 next (in the filter's cache)", 58, True)):
                p = c.post("/api/preview", json={"input": sample, "model": args.model,
                                                 "scene_detect": scene, "frame": frame}).json()
                previews[label] = round(p["seconds"]["vsvsr"], 3)
    report = {"rounds": args.rounds, "cli_s": [round(x, 2) for x in cli],
              "served_s": [round(x, 2) for x in served],
              "median_cli_s": round(statistics.median(cli), 2),
              "median_served_s": round(statistics.median(served), 2),
              "served_over_cli": round(statistics.median(served) / statistics.median(cli), 3),
              "preview_vsvsr_s": previews}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
