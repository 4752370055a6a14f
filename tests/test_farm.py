"""vsvsr farm on a real local Ray instance (one per module, 2 CPUs): the chunks joined equal a
single-process ``vsvsr upscale`` frame for frame (FFV1), also when a worker is killed mid-chunk
and when the driver is interrupted and run again; changed settings are refused."""

# ruff: noqa: F811  (pytest fixtures imported from _cli_fixtures are parameters here)
from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
from pathlib import Path

import numpy as np
import pytest
from _cli_fixtures import cli_model, decode, ffmpeg  # noqa: F401  (pytest fixtures)

from vsvsr.cli.upscale import UpscaleOptions, upscale
from vsvsr.encode.ffmpeg import probe
from vsvsr.encode.pipe import EncodeSettings
from vsvsr.farm import tasks
from vsvsr.farm.driver import FarmOptions, run_farm
from vsvsr.farm.manifest import Manifest, ManifestError

ray = pytest.importorskip("ray")

SCENE = 6  # frames per scene of the test clip: 4 scenes, hard cuts at 6, 12, 18
FRAMES = 4 * SCENE
FFV1 = EncodeSettings(codec="ffv1", crf=None, preset=None)


@pytest.fixture(scope="module", autouse=True)
def ray_instance():
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING,
             log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def scenes_input(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in sample at 64x48 (4 photos, hard cuts) with a sine audio track."""
    from vsvsr.sample import SampleSpec, write_sample

    folder = tmp_path_factory.mktemp("farm_in")
    lr = write_sample(folder, 2, spec=SampleSpec(width=128, height=96, frames_per_scene=SCENE),
                      hr_video=False).lr_video
    out = folder / "scenes.mkv"
    subprocess.run([ffmpeg(), "-hide_banner", "-loglevel", "error", "-i", str(lr), "-f", "lavfi",
                    "-i", "sine=frequency=440:sample_rate=48000", "-t", f"{FRAMES / 24:.4f}",
                    "-c:v", "copy", "-c:a", "aac", str(out)], check=True)
    return out


def job(src: Path, out: Path, model: Path, **kw) -> UpscaleOptions:
    base = {"input": src, "output": out, "model": str(model), "threads": 1,
            "scene_detect": True, "encode": FFV1, "progress": False}
    return UpscaleOptions(**{**base, **kw})


@pytest.fixture(scope="module")
def single_run(scenes_input: Path, cli_model: Path, tmp_path_factory) -> list:
    """The reference: one in-process ``vsvsr upscale --scene-detect``."""
    out = tmp_path_factory.mktemp("single") / "single.mkv"
    upscale(job(scenes_input, out, cli_model))
    return decode(out)


def assert_same_frames(got: list, want: list) -> None:
    assert len(got) == len(want)
    for n, (g, w) in enumerate(zip(got, want, strict=True)):
        for gp, wp in zip(g, w, strict=True):
            np.testing.assert_array_equal(gp, wp, err_msg=f"frame {n}")


def farm(src: Path, out: Path, model: Path, chunk_frames: int = SCENE, **kw) -> dict:
    fields = {f.name for f in dataclasses.fields(FarmOptions)}
    farm_kw = {k: v for k, v in kw.items() if k in fields}
    job_kw = {k: v for k, v in kw.items() if k not in fields}
    return run_farm(FarmOptions(job=job(src, out, model, **job_kw), chunk_frames=chunk_frames,
                                **farm_kw))


def test_two_workers_equal_the_single_process_run(scenes_input, cli_model, single_run,
                                                  tmp_path: Path) -> None:
    out = tmp_path / "farm.mkv"
    report = farm(scenes_input, out, cli_model)
    assert_same_frames(decode(out), single_run)
    assert [(c["start"], c["end"]) for c in report["chunk_list"]] == \
        [(0, 6), (6, 12), (12, 18), (18, 24)]
    assert report["chunks_run"] == 4 and report["retries"] == 0
    assert sum(w["frames"] for w in report["workers"].values()) == FRAMES
    assert report["approximate_chunks"] == []
    assert [(s.kind, s.codec) for s in probe(out)] == [("video", "ffv1"), ("audio", "aac")]
    assert not (tmp_path / "farm.mkv.farm").exists()  # work folder removed
    assert (tmp_path / "farm.mkv.farm.json").is_file()


def test_a_worker_killed_mid_chunk_is_retried_and_the_output_is_still_identical(
        scenes_input, cli_model, single_run, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(tasks.FAULT_ENV, "exit:2:3")  # chunk 2 dies after 3 frames, once
    out = tmp_path / "farm.mkv"
    report = farm(scenes_input, out, cli_model)
    assert report["retries"] == 1
    assert [c["attempts"] for c in report["chunk_list"]] == [1, 1, 2, 1]
    assert (tmp_path / "farm.mkv.farm").exists() is False  # partial chunk file not left
    assert_same_frames(decode(out), single_run)


def test_an_interrupted_driver_resumes_with_only_the_rest(scenes_input, cli_model, single_run,
                                                           tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "farm.mkv"
    real = Manifest.mark_done

    def interrupt_after_first(self, index, **kw):
        real(self, index, **kw)
        raise KeyboardInterrupt

    monkeypatch.setattr(Manifest, "mark_done", interrupt_after_first)
    with pytest.raises(KeyboardInterrupt):
        farm(scenes_input, out, cli_model)
    monkeypatch.setattr(Manifest, "mark_done", real)
    assert not out.exists()
    work = tmp_path / "farm.mkv.farm"
    manifest = Manifest.load(work)
    assert manifest is not None and sum(r.done for r in manifest.chunks) == 1
    # Other settings against the old manifest: refused, naming the change.
    with pytest.raises(ManifestError, match="scene_detect: True -> False.*--restart"):
        farm(scenes_input, out, cli_model, scene_detect=False, cuts=(6, 12, 18))
    report = farm(scenes_input, out, cli_model)
    assert report["chunks_skipped"] == 1 and report["chunks_run"] == 3
    assert_same_frames(decode(out), single_run)


def test_restart_discards_an_old_manifest(scenes_input, cli_model, tmp_path: Path) -> None:
    out = tmp_path / "farm.mkv"
    farm(scenes_input, out, cli_model, keep_chunks=True, chunk_frames=24)
    assert (tmp_path / "farm.mkv.farm" / "manifest.json").is_file()
    with pytest.raises(ManifestError, match="chunk_frames: 24 -> 12"):
        farm(scenes_input, out, cli_model, overwrite=True, chunk_frames=12)
    report = farm(scenes_input, out, cli_model, overwrite=True, restart=True, chunk_frames=12)
    assert report["chunks_run"] == 2 and report["chunks_skipped"] == 0


def test_a_cut_list_gives_the_same_frames_as_upscale_with_that_list(
        scenes_input, cli_model, tmp_path: Path) -> None:
    cuts = (5, 13)  # not the real cuts: resets are where the user says
    ref = tmp_path / "single.mkv"
    upscale(job(scenes_input, ref, cli_model, scene_detect=False, cuts=cuts))
    out = tmp_path / "farm.mkv"
    report = farm(scenes_input, out, cli_model, scene_detect=False, cuts=cuts, chunk_frames=8)
    assert [(c["start"], c["end"]) for c in report["chunk_list"]] == [(0, 5), (5, 13), (13, 24)]
    assert_same_frames(decode(out), decode(ref))


def test_warmup_splits_a_long_scene_and_reports_it_approximate(scenes_input, cli_model,
                                                               tmp_path: Path, caplog) -> None:
    out = tmp_path / "farm.mkv"
    with caplog.at_level(logging.WARNING):
        report = farm(scenes_input, out, cli_model, scene_detect=False, warmup=2, chunk_frames=8)
    assert [(c["start"], c["end"], c["exact"]) for c in report["chunk_list"]] == \
        [(0, 8, True), (8, 16, False), (16, 24, False)]
    assert report["approximate_chunks"] == [1, 2]
    assert "APPROXIMATE" in caplog.text
    assert len(decode(out)) == FRAMES


def test_a_worker_that_cannot_see_the_input_names_its_host(tmp_path: Path) -> None:
    """Through Ray: the worker's own error reaches the driver, naming host and path."""
    from vsvsr.farm import cluster
    from vsvsr.farm.driver import _get

    _, inspect, _, _ = cluster.remote_functions(ray, cpus=1, gpus=0, retries=0)
    opts = UpscaleOptions(input=tmp_path / "not-shared.mkv", output=tmp_path / "o.mkv")
    with pytest.raises(tasks.WorkerError, match=rf"worker {tasks.host()} cannot open the input "
                       r".*not-shared.mkv.*shared storage"):
        _get(ray, inspect.remote(opts))


def test_a_lossy_codec_into_mp4_joins_every_frame_with_the_audio(scenes_input, cli_model,
                                                                  tmp_path: Path) -> None:
    out = tmp_path / "farm.mp4"
    report = farm(scenes_input, out, cli_model, encode=EncodeSettings(codec="libx264", crf=20))
    assert report["chunks_run"] == 4 and report["audio"] == "copy"
    assert len(decode(out)) == FRAMES
    assert [(s.kind, s.codec) for s in probe(out)] == [("video", "h264"), ("audio", "aac")]


def test_the_command_line_takes_upscale_options_and_a_cut_file(scenes_input, cli_model,
                                                               tmp_path: Path, capsys) -> None:
    from vsvsr.cli.main import main

    cuts = tmp_path / "cuts.txt"
    cuts.write_text("# my cuts\n10\n")
    out = tmp_path / "farm.mkv"
    args = [str(scenes_input), str(out), "--model", str(cli_model), "--codec", "ffv1",
            "--threads", "1", "--cuts", str(cuts), "--no-progress"]
    assert main(["farm", *args, "--chunk-frames", "12", "--report", str(tmp_path / "r.json")]) == 0
    assert "2 of 2 chunks run" in capsys.readouterr().out
    report = json.loads((tmp_path / "r.json").read_text())
    assert [(c["start"], c["end"]) for c in report["chunk_list"]] == [(0, 10), (10, 24)]
    ref = tmp_path / "single.mkv"
    assert main(["upscale", *args[:1], str(ref), *args[2:]]) == 0
    assert_same_frames(decode(out), decode(ref))
    cuts.write_text("30\n")  # past the end of the 24-frame clip
    assert main(["farm", *args, "-y", "--restart"]) == 1
    assert "frame 30 is outside the clip" in capsys.readouterr().err


def test_relative_paths_work_although_workers_run_elsewhere(scenes_input, cli_model,
                                                            tmp_path: Path, monkeypatch) -> None:
    import shutil

    shutil.copy(scenes_input, tmp_path / "in.mkv")
    shutil.copy(cli_model, tmp_path / "model.onnx")
    monkeypatch.chdir(tmp_path)  # the Ray workers started in another folder
    report = farm(Path("in.mkv"), Path("out.mkv"), Path("model.onnx"), chunk_frames=12)
    assert report["chunks_run"] == 2 and len(decode(tmp_path / "out.mkv")) == FRAMES


def test_resources_the_cluster_lacks_are_refused_instead_of_waiting(scenes_input, cli_model,
                                                                    tmp_path: Path) -> None:
    from vsvsr.farm.cluster import ClusterError

    with pytest.raises(ClusterError, match="--gpus-per-task 0.5 but the Ray cluster has 0 GPUs"):
        farm(scenes_input, tmp_path / "o.mkv", cli_model, gpus_per_task=0.5)
    with pytest.raises(ClusterError, match="--cpus-per-task 4 but the Ray cluster has 2 CPUs"):
        farm(scenes_input, tmp_path / "o.mkv", cli_model, cpus_per_task=4)


def test_chunks_sent_through_ray_equal_the_single_process_run(scenes_input, cli_model,
                                                              single_run, tmp_path: Path) -> None:
    """--send-chunks: workers encode into their own temporary folders and send the bytes."""
    out = tmp_path / "farm.mkv"
    report = farm(scenes_input, out, cli_model, send_chunks=True, keep_chunks=True)
    assert report["chunks_run"] == 4
    assert_same_frames(decode(out), single_run)
    manifest = Manifest.load(tmp_path / "farm.mkv.farm")
    assert manifest is not None and all(manifest.is_done(r) for r in manifest.chunks)


@pytest.mark.slow
def test_a_driver_killed_with_sigkill_resumes_and_the_output_is_identical(cli_model,
                                                                         tmp_path: Path) -> None:
    """The real thing: ``vsvsr farm`` in its own process, ``kill -9`` once the manifest records a
    chunk, then the same job again (here in-process on the module's Ray)."""
    import signal
    import sys
    import time

    from vsvsr.sample import SampleSpec, write_sample

    src = write_sample(tmp_path, 2, spec=SampleSpec(width=512, height=288, frames_per_scene=15),
                       hr_video=False).lr_video
    out = tmp_path / "farm.mkv"
    manifest = tmp_path / "farm.mkv.farm" / "manifest.json"
    cmd = [sys.executable, "-m", "vsvsr", "farm", str(src), str(out), "--model", str(cli_model),
           "--scene-detect", "--codec", "ffv1", "--threads", "1", "--chunk-frames", "15",
           "--num-cpus", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if manifest.is_file() and '"done": true' in manifest.read_text():
                break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    loaded = Manifest.load(manifest.parent)
    assert loaded is not None and not out.exists()
    done = sum(loaded.is_done(r) for r in loaded.chunks)
    assert 1 <= done < 4
    report = farm(src, out, cli_model, chunk_frames=15)
    assert report["chunks_skipped"] == done and report["chunks_run"] == 4 - done
    ref = tmp_path / "single.mkv"
    upscale(job(src, ref, cli_model))
    assert_same_frames(decode(out), decode(ref))
    assert not (tmp_path / "farm.mkv.farm").exists()
