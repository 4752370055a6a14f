"""vsvsr farm without Ray: chunk planning at reset points, cut lists, the manifest, the concat
list, and the errors that come before any worker runs."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vsvsr.encode.concat import concat_list
from vsvsr.farm.manifest import ChunkRecord, Manifest, ManifestError
from vsvsr.farm.plan import Chunk, PlanError, plan_chunks, scenes
from vsvsr.recurrence.reset_points import CutListError, check_in_range, read_cut_list


def ranges(plan) -> list[tuple[int, int, bool]]:
    return [(c.start, c.end, c.exact) for c in plan.chunks]


def test_scenes_split_the_range_at_reset_points_inside_it() -> None:
    assert scenes([0, 10, 25, 40], 0, 50) == [(0, 10), (10, 25), (25, 40), (40, 50)]
    assert scenes([0, 10, 25, 40], 12, 30) == [(12, 25), (25, 30)]
    assert scenes([0], 0, 7) == [(0, 7)]


def test_scenes_are_packed_into_chunks_that_start_at_reset_points() -> None:
    plan = plan_chunks([0, 10, 20, 30, 45, 50], 0, 60, 25)
    assert ranges(plan) == [(0, 20, True), (20, 45, True), (45, 60, True)]
    assert plan.long_scenes == () and plan.approximate == ()
    assert [c.index for c in plan.chunks] == [0, 1, 2]
    # Every chunk starts at a reset point (or the range start) and they tile the range.
    assert all(c.start in {0, 10, 20, 30, 45, 50} for c in plan.chunks)


def test_a_scene_longer_than_the_limit_stays_whole_and_says_so(caplog) -> None:
    with caplog.at_level(logging.WARNING):
        plan = plan_chunks([0, 5, 50], 0, 60, 10)
    assert ranges(plan) == [(0, 5, True), (5, 50, True), (50, 60, True)]
    assert plan.long_scenes == ((5, 50),)
    assert "as long as the scene" in caplog.text and "--warmup" in caplog.text


def test_with_warmup_a_long_scene_is_split_and_the_pieces_are_marked_approximate(caplog) -> None:
    with caplog.at_level(logging.WARNING):
        plan = plan_chunks([0, 5, 30], 0, 32, 10, warmup=4)
    assert ranges(plan) == [(0, 5, True), (5, 15, True), (15, 25, False), (25, 30, False),
                            (30, 32, True)]
    assert [c.index for c in plan.approximate] == [2, 3]
    assert "approximate" in caplog.text


def test_bad_chunk_options_are_refused() -> None:
    with pytest.raises(PlanError, match="at least 1"):
        plan_chunks([0], 0, 10, 0)
    with pytest.raises(PlanError, match="empty frame range"):
        plan_chunks([0], 5, 5, 10)
    with pytest.raises(PlanError, match="bad range"):
        Chunk(index=0, start=3, end=3)


def test_cut_lists_are_read_and_bad_ones_refused(tmp_path: Path) -> None:
    good = tmp_path / "cuts.txt"
    good.write_text("# scene cuts\n120\n300, 301\n  \n900 # last\n")
    assert read_cut_list(good) == (120, 300, 301, 900)
    unsorted = tmp_path / "unsorted.txt"
    unsorted.write_text("10\n5\n")
    with pytest.raises(CutListError, match="strictly increasing, but 5 follows 10"):
        read_cut_list(unsorted)
    repeated = tmp_path / "rep.txt"
    repeated.write_text("10 10")
    with pytest.raises(CutListError, match="strictly increasing"):
        read_cut_list(repeated)
    junk = tmp_path / "junk.txt"
    junk.write_text("10\n00:01:02\n")
    with pytest.raises(CutListError, match="line 2: '00:01:02' is not a frame number"):
        read_cut_list(junk)
    with pytest.raises(CutListError, match="cannot read"):
        read_cut_list(tmp_path / "missing.txt")
    with pytest.raises(CutListError, match="frame 24 is outside the clip, which has 24 frames"):
        check_in_range((3, 24), 24, "--cuts")


def _manifest(tmp_path: Path, **settings) -> Manifest:
    base = {"codec": "ffv1", "crf": 18.0, "cuts": [3, 9], "model": "m.onnx"}
    base.update(settings)
    chunks = [ChunkRecord.for_chunk(c) for c in plan_chunks([0, 3, 9], 0, 12, 4).chunks]
    return Manifest(work_dir=tmp_path, settings=base, num_frames=12,
                    source={"num_frames": 12}, chunks=chunks)


def test_manifest_round_trips_and_knows_which_chunks_are_really_done(tmp_path: Path) -> None:
    m = _manifest(tmp_path)
    m.save()
    path = m.chunk_path(m.chunks[1])
    path.write_bytes(b"x" * 10)
    m.mark_done(1, host="h", seconds=1.5)
    loaded = Manifest.load(tmp_path)
    assert loaded is not None and loaded.hash == m.hash
    assert [loaded.is_done(r) for r in loaded.chunks] == [False, True, False]
    path.write_bytes(b"x" * 5)  # changed since: not done any more
    assert not loaded.is_done(loaded.chunks[1])
    path.unlink()
    assert not loaded.is_done(loaded.chunks[1])
    assert json.loads((tmp_path / "manifest.json").read_text())["chunks"][1]["host"] == "h"
    assert not list(tmp_path.glob("*.tmp"))  # written atomically


def test_changed_settings_are_refused_naming_what_changed(tmp_path: Path) -> None:
    m = _manifest(tmp_path)
    m.save()
    loaded = Manifest.load(tmp_path)
    assert loaded is not None
    loaded.check_settings(dict(m.settings))  # same: fine
    with pytest.raises(ManifestError, match=r"crf: 18.0 -> 20.0.*--restart"):
        loaded.check_settings({**m.settings, "crf": 20.0})
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="--restart"):
        Manifest.load(tmp_path)


def test_concat_list_quotes_paths(tmp_path: Path) -> None:
    text = concat_list([tmp_path / "a.mkv", tmp_path / "it's.mkv"]).decode()
    assert text.splitlines()[0] == f"file '{tmp_path / 'a.mkv'}'"
    assert text.splitlines()[1] == f"file '{tmp_path}/it'\\''s.mkv'"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_address_that_refuses_fails_fast_and_clearly() -> None:
    pytest.importorskip("ray")
    from vsvsr.farm.cluster import ClusterError, ray_session

    t0 = time.perf_counter()
    with pytest.raises(ClusterError, match="does not answer.*ray start --head"), \
            ray_session(address=f"ray://127.0.0.1:{_closed_port()}", timeout=2):
        pass
    assert time.perf_counter() - t0 < 5


def test_an_address_that_never_answers_fails_within_the_timeout(tmp_path: Path) -> None:
    """A black-hole address (the TCP connect may hang, or be accepted by a middlebox and then
    never answered): the command gives up after --connect-timeout, in its own process."""
    pytest.importorskip("ray")
    src = tmp_path / "in.mkv"
    src.write_bytes(b"")
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "vsvsr", "farm", str(src), str(tmp_path / "o.mkv"),
                          "--address", "10.255.255.1:6379", "--connect-timeout", "2"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 1, res.stderr
    assert "10.255.255.1:6379 does not answer" in res.stderr
    assert time.perf_counter() - t0 < 20


def test_farm_refuses_bad_combinations_before_starting_anything(tmp_path: Path) -> None:
    from vsvsr.cli.main import main

    src = tmp_path / "in.mkv"
    src.write_bytes(b"")
    out = tmp_path / "out.mkv"
    out.write_bytes(b"old")
    assert main(["farm", str(src), str(out), "--no-progress"]) == 1  # exists, no -y
    assert out.read_bytes() == b"old"
    assert main(["farm", str(src), str(tmp_path / "o2.mkv"), "--state-dir", str(tmp_path)]) == 1
    assert main(["farm", str(src), str(tmp_path / "o3.mkv"), "--address", "auto",
                 "--num-cpus", "2"]) == 1


def test_farm_says_how_to_install_ray(tmp_path: Path) -> None:
    src = tmp_path / "in.mkv"
    src.write_bytes(b"")
    code = ("import sys\nsys.modules['ray'] = None\nfrom vsvsr.cli.main import main\n"
            "sys.exit(main(sys.argv[1:]))")
    res = subprocess.run([sys.executable, "-c", code, "farm", str(src), str(tmp_path / "o.mkv"),
                          "--model", "rvsr-x2"], capture_output=True, text=True, timeout=120,
                         check=False)
    assert res.returncode == 1 and "pip install 'vsvsr[cluster]'" in res.stderr, res.stderr


def test_an_unknown_backend_or_model_fails_before_ray_starts(tmp_path: Path) -> None:
    from vsvsr.cli.upscale import UpscaleOptions
    from vsvsr.errors import BackendUnavailableError, UnknownModelError
    from vsvsr.farm.driver import FarmOptions

    src = tmp_path / "in.mkv"
    src.write_bytes(b"")
    job = UpscaleOptions(input=src, output=tmp_path / "o.mkv", backend="warp-drive")
    with pytest.raises(BackendUnavailableError, match="unknown backend"):
        FarmOptions(job=job).settings()
    job = UpscaleOptions(input=src, output=tmp_path / "o.mkv", model="no-such-model")
    with pytest.raises(UnknownModelError, match="unknown model"):
        FarmOptions(job=job).settings()


def test_the_settings_hash_ignores_options_the_codec_does_not_take(tmp_path: Path) -> None:
    from vsvsr.cli.upscale import UpscaleOptions
    from vsvsr.encode.pipe import EncodeSettings
    from vsvsr.farm.driver import FarmOptions
    from vsvsr.farm.manifest import settings_hash

    src = tmp_path / "in.mkv"
    src.write_bytes(b"")

    def digest(**enc) -> str:
        job = UpscaleOptions(input=src, output=tmp_path / "o.mkv", encode=EncodeSettings(**enc))
        return settings_hash(FarmOptions(job=job).settings())

    assert digest(codec="ffv1", crf=18, preset="medium") == digest(codec="ffv1", crf=None,
                                                                    preset=None)
    assert digest(codec="libx264", crf=18) != digest(codec="libx264", crf=20)
    assert digest(codec="libx264", preset="slow") != digest(codec="libx264", preset="fast")
