"""``vsvsr bench``: the filter against the bare engine on tiny sizes."""

# ruff: noqa: F811  (pytest fixtures imported from _cli_fixtures are parameters here)
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import vapoursynth as vs
from _cli_fixtures import cli_model  # noqa: F401  (pytest fixture)

import vsvsr
from vsvsr.cli.bench import BareLoop, bench_size, content_clip, model_inputs
from vsvsr.cli.main import main
from vsvsr.runtime.select import open_engine


def test_bench_prints_a_table_with_the_ratio(cli_model, tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench.json"
    assert main(["bench", "--model", str(cli_model), "--sizes", "32x24,48x32", "--frames", "2",
                 "--rounds", "2", "--warmup", "1", "--threads", "1", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "filter/bare" in text and "32x24" in text and "48x32" in text
    data = json.loads(out.read_text())
    assert [r["size"] for r in data["rows"]] == ["32x24", "48x32"]
    for row in data["rows"]:
        assert row["filter_fps"] > 0 and row["bare_fps"] > 0
        assert row["ratio"] == row["filter_fps"] / row["bare_fps"]
        assert len(row["filter_fps_all"]) == len(row["bare_fps_all"]) == 2
    assert data["rows"][0]["output_size"] == "64x48"


def test_bench_rgbs_input(cli_model) -> None:
    row = bench_size(str(cli_model), "ort", 1, (32, 24), "rgbs", 2, 1, 0)
    assert row.input_format == "RGBS" and row.ratio > 0


def test_bare_loop_does_the_same_work_as_the_filter(cli_model) -> None:
    """The bare loop computes exactly the filter's frames: the comparison is like for like."""
    clip = content_clip((32, 24), "rgbs", 4)
    inputs = model_inputs(clip, 4)
    out = vsvsr.recurrent(clip, str(cli_model), "ort", threads=1)
    with open_engine(str(cli_model), "ort", threads=1) as engine:
        bare = BareLoop(engine, inputs)
        for n, frame in enumerate(out.frames()):
            bare.run(1)
            got = np.stack([np.asarray(frame[p]) for p in range(3)])
            assert bare.sr is not None
            np.testing.assert_array_equal(got, np.clip(bare.sr[0], 0, 1), err_msg=f"frame {n}")
    assert clip.format.id == vs.RGBS


def test_segment_length_is_picked_from_the_speed(cli_model) -> None:
    row = bench_size(str(cli_model), "ort", 1, (32, 24), "yuv420p8", None, 1, 0,
                     segment_seconds=0.05)
    assert 2 <= row.frames <= 200 and len(row.filter_fps_all) == 1
