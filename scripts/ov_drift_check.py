"""Does the recurrent state drift in OpenVINO bf16? Per-frame Y-PSNR, bf16 vs f32, long sequences.

For each shipped model and each long-sequence kind (300 frames of camera motion over a real
evaluation frame, as docs/pibptt.md uses), the model runs continuously with OpenVINO f32,
OpenVINO bf16 and ONNX Runtime f32 (the reference backend); the table gives, per run, the mean
Y-PSNR and the largest per-frame |bf16 - f32| Y-PSNR difference (the target: <= 0.05 dB on every
frame). Writes ``--out`` (JSON with every per-frame value) and prints a Markdown table.

    python scripts/ov_drift_check.py --source ../shared/data/real/realbasicvsr_demo_000 \
        --threads 2 --out docs/openvino/drift.json
    python scripts/ov_drift_check.py --source ../shared/data/real/realbasicvsr_demo_000 \
        --threads 2 --real --kinds --out docs/openvino/drift-real.json   # the real clips
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vsvsr.evaluation.data import (  # noqa: E402
    LONG_KINDS,
    folder_sequence,
    long_eval_sequence,
    real_clip_folders,
)
from vsvsr.evaluation.models import open_upscaler  # noqa: E402
from vsvsr.evaluation.report import evaluate_sequence  # noqa: E402
from vsvsr.training.sequences import find_images, load_photo  # noqa: E402
from vsvsr.utils.atomic import atomic_write_bytes  # noqa: E402

RUNS = (("openvino", "f32"), ("openvino", "bf16"), ("ort", "auto"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", type=Path, required=True, help="photo folder or image")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--models", nargs="+", default=["rvsr-x2", "rvsr-x4"])
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--size", default="256x144", help="HR frame size WxH")
    p.add_argument("--presize", type=int, default=1)
    p.add_argument("--kinds", nargs="*", default=list(LONG_KINDS))
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--real", action="store_true",
                   help="also the real evaluation clips (vsvsr eval's default sequences)")
    args = p.parse_args(argv)
    w, h = (int(v) for v in args.size.split("x"))
    photos = find_images([args.source])
    report: dict[str, object] = {"frames": args.frames, "size": [w, h], "runs": {}}
    lines = ["| model | sequence | OV f32 mean | OV bf16 mean | ORT f32 mean | max abs(bf16 - f32) "
             "per frame | mean (bf16 - f32) | max abs(OV f32 - ORT) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    t0 = time.time()
    for model in args.models:
        ups = []
        for backend, precision in RUNS:
            up = open_upscaler(model, backend=backend, threads=args.threads, precision=precision)
            up.label = f"{backend}-{precision}"
            ups.append(up)
        seqs = [(kind, k) for k, kind in enumerate(args.kinds)]
        if args.real:
            seqs += [(f"real:{f.name}", f) for f in real_clip_folders()]
        for kind, k in seqs:
            if isinstance(k, Path):
                seq = folder_sequence(k, ups[0].scale)
            else:
                image = load_photo(photos[k % len(photos)], args.presize).permute(1, 2, 0).numpy()
                seq = long_eval_sequence(image, kind, args.frames, (w, h), ups[0].scale, seed=k,
                                         source=str(photos[k % len(photos)]))
            res = evaluate_sequence(ups, seq, with_tof=False)
            f32, bf16, ort = (np.array(r.y_psnr) for r in res.runs)
            d = bf16 - f32
            report["runs"][f"{model}/{kind}"] = {  # type: ignore[index]
                "ov_f32": f32.tolist(), "ov_bf16": bf16.tolist(), "ort_f32": ort.tolist(),
                "max_abs_diff": float(np.abs(d).max()), "mean_diff": float(d.mean()),
                "last100_diff": float(d[-100:].mean()), "first100_diff": float(d[:100].mean())}
            lines.append(f"| {model} | {kind} | {f32.mean():.3f} | {bf16.mean():.3f} | "
                         f"{ort.mean():.3f} | {np.abs(d).max():.4f} | {d.mean():+.4f} | "
                         f"{np.abs(f32 - ort).max():.4f} |")
            print(lines[-1], f"({time.time() - t0:.0f} s)", flush=True)
        for up in ups:
            up.close()
    atomic_write_bytes(args.out, json.dumps(report).encode())
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
