"""``vsvsr serve`` through Starlette's test client: paths, uploads, preview, the job life cycle.

Jobs run for real: a worker process runs ``vsvsr upscale``'s code with real ffmpeg on small
testsrc2 clips with a tiny random-weight model copied into the served folder.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from _cli_fixtures import cli_model, leftovers, make_video  # noqa: F401  (fixture)

pytest.importorskip("starlette", reason="vsvsr serve needs pip install 'vsvsr[web]'")
from starlette.testclient import TestClient  # noqa: E402

from vsvsr.web.app import create_app  # noqa: E402
from vsvsr.web.paths import PathError, Root  # noqa: E402
from vsvsr.web.settings import ServeSettings  # noqa: E402
from vsvsr.web.store import FINAL, JobStore  # noqa: E402

LONG = 3000  #: frames of the clip that jobs are cancelled in (64x48: many seconds of work)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("web_clips")
    return {"short": make_video(folder / "short.mkv", frames=12),
            "long": make_video(folder / "long.mkv", frames=LONG, audio=None)}


@pytest.fixture
def root(tmp_path: Path, clips: dict[str, Path], cli_model: Path) -> Path:  # noqa: F811
    r = tmp_path / "root"
    (r / "sub").mkdir(parents=True)
    shutil.copy(clips["short"], r / "clip.mkv")
    shutil.copy(clips["long"], r / "long.mkv")
    shutil.copy(cli_model, r / "tiny.onnx")
    return r


def client(root: Path, **kw) -> TestClient:
    return TestClient(create_app(ServeSettings(root=root, **kw)))


def job_body(**kw) -> dict:
    return {"input": "clip.mkv", "output": "out.mkv", "model": "tiny.onnx", "codec": "ffv1",
            **kw}


def wait(c: TestClient, job_id: int, until=lambda j: j["state"] in FINAL,
         timeout: float = 180) -> dict:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        job = c.get(f"/api/jobs/{job_id}").json()
        if until(job):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not get there in {timeout} s: {job}")


def png(data_url: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))))


# -- paths ---------------------------------------------------------------------------------
def test_root_refuses_paths_outside(tmp_path: Path) -> None:
    (tmp_path / "root" / "in").mkdir(parents=True)
    (tmp_path / "secret.mkv").write_bytes(b"x")
    (tmp_path / "root" / "in" / "a.mkv").write_bytes(b"x")
    (tmp_path / "root" / "escape.mkv").symlink_to(tmp_path / "secret.mkv")
    (tmp_path / "root" / "escape_dir").symlink_to(tmp_path)
    (tmp_path / "root" / "inside.mkv").symlink_to(tmp_path / "root" / "in" / "a.mkv")
    r = Root(tmp_path / "root")
    assert r.file("in/a.mkv") == (tmp_path / "root" / "in" / "a.mkv").resolve()
    assert r.file("./in//a.mkv") == r.file("in/a.mkv")
    assert r.file("inside.mkv") == r.file("in/a.mkv")  # a link that stays inside is fine
    for bad, why in [("/etc/passwd", "absolute"), ("../secret.mkv", "'..'"),
                     ("in/../../secret.mkv", "'..'"), ("escape.mkv", "outside"),
                     ("escape_dir/secret.mkv", "outside"), ("in\\a.mkv", "bad path"),
                     ("~/x.mkv", "absolute"), (".vsvsr-serve.sqlite", "'.'"),
                     ("in/a.mkv\x00", "bad path"), ("nope.mkv", "does not exist")]:
        with pytest.raises(PathError, match=why):
            r.file(bad)
    names = [e.name for e in r.listing()]
    assert names == ["in", "inside.mkv"]  # links leading outside are not listed
    for bad in ("a/b.mkv", "..", ".hidden.mkv", "", "x\x00.mkv"):
        with pytest.raises(PathError):
            r.check_name(bad)
    with pytest.raises(PathError, match="extension"):
        r.new_file("in/out.txt", suffixes=frozenset({".mkv"}))
    with pytest.raises(PathError, match="outside"):
        r.new_file("escape.mkv")


def test_api_refuses_paths_outside_the_root(root: Path, tmp_path: Path) -> None:
    (tmp_path / "outside.mkv").write_bytes(b"x")
    (root / "link.mkv").symlink_to(tmp_path / "outside.mkv")
    with client(root) as c:
        listing = c.get("/api/files").json()["entries"]
        assert [e["name"] for e in listing] == ["sub", "clip.mkv", "long.mkv"]
        for path in ("/etc/passwd", "../outside.mkv", "sub/../../outside.mkv", "link.mkv",
                     str(tmp_path / "outside.mkv")):
            r = c.get("/api/facts", params={"path": path})
            assert r.status_code == 400, path
            assert "refused" in r.json()["error"]
        assert c.get("/api/files", params={"dir": ".."}).status_code == 400
        r = c.post("/api/jobs", json=job_body(output="../escaped.mkv"))
        assert r.status_code == 400 and "'..'" in r.json()["error"]
        r = c.post("/api/jobs", json=job_body(model="../tiny.onnx"))
        assert r.status_code == 400
        r = c.post("/api/jobs", json=job_body(output="link.mkv", overwrite=True))
        assert r.status_code == 400 and "outside" in r.json()["error"]
        assert not (tmp_path / "escaped.mkv").exists()
        assert (tmp_path / "outside.mkv").read_bytes() == b"x"


# -- uploads -------------------------------------------------------------------------------
def test_upload_size_limit_atomic_and_no_overwrite(root: Path) -> None:
    data = bytes(range(256)) * 3  # 768 bytes
    with client(root, max_upload=1000) as c:
        r = c.put("/api/upload", params={"dir": "sub", "name": "up.mkv"}, content=data)
        assert r.status_code == 201, r.text
        assert (root / "sub" / "up.mkv").read_bytes() == data
        r = c.put("/api/upload", params={"dir": "sub", "name": "up.mkv"}, content=b"new")
        assert r.status_code == 409 and "exists" in r.json()["error"]
        assert (root / "sub" / "up.mkv").read_bytes() == data
        r = c.put("/api/upload", params={"dir": "sub", "name": "up.mkv", "overwrite": "1"},
                  content=b"new")
        assert r.status_code == 201 and (root / "sub" / "up.mkv").read_bytes() == b"new"
        # Over the limit: refused from Content-Length, and while streaming when none is sent.
        r = c.put("/api/upload", params={"name": "big.mkv"}, content=b"x" * 1001)
        assert r.status_code == 413 and "limit" in r.json()["error"]
        r = c.put("/api/upload", params={"name": "big.mkv"},
                  content=(b"x" * 300 for _ in range(5)))  # chunked, 1500 bytes
        assert r.status_code == 413
        assert not (root / "big.mkv").exists()
        for bad in ("../up.mkv", ".hidden.mkv", "a/b.mkv", "notes.txt"):
            r = c.put("/api/upload", params={"name": bad}, content=b"x")
            assert r.status_code == 400, bad
        assert c.put("/api/upload", params={"name": "empty.mkv"}, content=b"").status_code == 400
    hidden = [p.name for p in root.rglob(".*") if p.name != ".vsvsr-serve.sqlite"
              and not p.name.startswith(".vsvsr-serve.sqlite-")]
    assert hidden == []  # no temporary upload left behind
    assert not (root / "empty.mkv").exists()


# -- facts and preview ---------------------------------------------------------------------
def test_facts_and_config(root: Path) -> None:
    with client(root) as c:
        f = c.get("/api/facts", params={"path": "clip.mkv"}).json()
        assert (f["width"], f["height"], f["frames"], f["fps"]) == (64, 48, 12, 24.0)
        assert f["matrix"] == "709" and f["format"] == "YUV420P8" and f["audio"] == ["aac"]
        cfg = c.get("/api/config").json()
        names = [m["name"] for m in cfg["models"]]
        assert "rvsr-x2" in names and "tiny.onnx" in names
        assert cfg["backends"][0]["name"] == "auto"
        page = c.get("/")
        assert page.status_code == 200 and "/static/app.js" in page.text
        assert c.get("/static/app.js").status_code == 200
        assert "http" not in c.get("/static/style.css").text  # nothing fetched from elsewhere


def test_preview_is_the_frame_the_job_writes(root: Path) -> None:
    """The vsvsr half of a preview equals that frame of the finished (lossless) output, in
    whatever order frames were previewed; bicubic differs from it."""
    with client(root) as c:
        got = {}
        for frame in (9, 3, 10):
            r = c.post("/api/preview", json={"input": "clip.mkv", "model": "tiny.onnx",
                                             "frame": frame})
            assert r.status_code == 200, r.text
            p = r.json()
            assert (p["frame"], p["frames"], p["scale"], p["width"], p["height"]) == \
                (frame, 12, 2, 128, 96)
            assert p["seconds"]["vsvsr"] >= 0
            got[frame] = (png(p["vsvsr"]), png(p["bicubic"]))
            assert got[frame][0].shape == (96, 128, 3)
            assert not np.array_equal(got[frame][0], got[frame][1])
        job = c.post("/api/jobs", json=job_body()).json()
        assert wait(c, job["id"])["state"] == "done"
    import vapoursynth as vs

    from vsvsr.web.media import rgb_frame

    out = vs.core.bs.VideoSource(str(root / "out.mkv"), cachemode=0)
    for frame, (sr, _) in got.items():
        np.testing.assert_array_equal(rgb_frame(out, frame, None), sr)


def test_filter_errors_come_back_as_text(root: Path) -> None:
    (root / "broken.mkv").write_bytes(b"this is not a video")
    (root / "broken.onnx").write_bytes(b"not a model")
    with client(root) as c:
        r = c.post("/api/preview", json={"input": "clip.mkv", "model": "rvsr-x9", "frame": 0})
        assert r.status_code == 400 and "rvsr-x9" in r.json()["error"]
        r = c.get("/api/facts", params={"path": "broken.mkv"})
        assert r.status_code == 400 and "broken.mkv" in r.json()["error"]
        r = c.post("/api/preview", json={"input": "clip.mkv", "model": "tiny.onnx",
                                         "frame": 99})
        assert r.status_code == 400 and "outside the clip" in r.json()["error"]
        r = c.post("/api/jobs", json=job_body(codec="h264; rm -rf /"))
        assert r.status_code == 400 and "codec" in r.json()["error"]
        r = c.post("/api/jobs", json=job_body(crf=99))
        assert r.status_code == 400 and "crf" in r.json()["error"]
        r = c.post("/api/jobs", json=job_body(colour="red"))
        assert r.status_code == 400 and "unknown field" in r.json()["error"]
        # Accepted (the file is there) but the worker cannot load it: failed, with the reason.
        job = c.post("/api/jobs", json=job_body(model="broken.onnx")).json()
        done = wait(c, job["id"])
        assert done["state"] == "failed" and "broken.onnx" in done["error"]
        assert "Traceback" not in done["error"]
        assert not (root / "out.mkv").exists() and leftovers(root) == []
        assert c.get("/api/jobs/999").status_code == 404


# -- jobs ----------------------------------------------------------------------------------
def test_job_lifecycle_download_and_restart(root: Path) -> None:
    from vsvsr.cli.upscale import UpscaleOptions, upscale
    from vsvsr.encode.pipe import EncodeSettings

    with client(root) as c:
        r = c.post("/api/jobs", json=job_body())
        assert r.status_code == 201, r.text
        job = r.json()
        assert job["state"] in ("queued", "running")
        events = []
        with c.stream("GET", f"/api/jobs/{job['id']}/events") as s:
            for line in s.iter_lines():
                if line.startswith("event: "):
                    events.append(line[7:])
                elif line.startswith("data: ") and events[-1] == "job":
                    last = json.loads(line[6:])
        assert events[-1] == "end" and events.count("job") >= 2
        assert last["state"] == "done", last["error"]
        assert last["frames_done"] == last["frames_total"] == 12 and last["fps"] > 0
        assert "wrote out.mkv: 12 frames" in last["log"]
        body = c.get(f"/api/jobs/{job['id']}/download")
        assert body.status_code == 200
        assert body.content == (root / "out.mkv").read_bytes()
        assert "out.mkv" in body.headers["content-disposition"]
        # No overwrite without asking; with it, fine.
        r = c.post("/api/jobs", json=job_body())
        assert r.status_code == 409 and "exists" in r.json()["error"]
        r = c.post("/api/jobs", json=job_body(input="out.mkv", output="out.mkv",
                                              overwrite=True))
        assert r.status_code == 400 and "input" in r.json()["error"]
        assert c.post(f"/api/jobs/{job['id']}/cancel").status_code == 409
    # The same job through `vsvsr upscale`'s function gives the same file content.
    direct = root / "sub" / "direct.mkv"
    upscale(UpscaleOptions(input=root / "clip.mkv", output=direct, model=str(root / "tiny.onnx"),
                           encode=EncodeSettings(codec="ffv1", crf=18, preset="medium"),
                           progress=False))
    from _cli_fixtures import decode

    for a, b in zip(decode(direct), decode(root / "out.mkv"), strict=True):
        for pa, pb in zip(a, b, strict=True):
            np.testing.assert_array_equal(pa, pb)
    # A new server on the same root lists the job, its log, and still serves the file.
    with client(root) as c:
        jobs = c.get("/api/jobs").json()["jobs"]
        assert [(j["id"], j["state"]) for j in jobs] == [(job["id"], "done")]
        assert "wrote out.mkv" in jobs[0]["log"]
        assert c.get(f"/api/jobs/{job['id']}/download").status_code == 200


def test_cancel_leaves_no_partial_output(root: Path) -> None:
    with client(root) as c:
        job = c.post("/api/jobs", json=job_body(input="long.mkv", output="sub/long_x2.mkv"))
        job = job.json()
        wait(c, job["id"], until=lambda j: j["frames_done"] > 0 or j["state"] in FINAL)
        assert any(".partial" in p.name for p in (root / "sub").iterdir())  # mid-encode
        r = c.post(f"/api/jobs/{job['id']}/cancel")
        assert r.status_code == 200
        done = wait(c, job["id"], timeout=60)
        assert done["state"] == "cancelled", done
        assert 0 < done["frames_done"] < LONG
    assert sorted(p.name for p in (root / "sub").iterdir()) == []


def test_queue_full_is_429_and_queued_jobs_cancel(root: Path) -> None:
    with client(root, jobs=1, queue=1) as c:
        a = c.post("/api/jobs", json=job_body(input="long.mkv", output="a.mkv")).json()
        b = c.post("/api/jobs", json=job_body(input="long.mkv", output="b.mkv")).json()
        r = c.post("/api/jobs", json=job_body(input="long.mkv", output="c.mkv"))
        assert r.status_code == 429 and "queue is full" in r.json()["error"]
        assert r.headers["retry-after"]
        r = c.post("/api/jobs", json=job_body(input="long.mkv", output="a.mkv",
                                              overwrite=True))
        assert r.status_code in (409, 429)
        wait(c, a["id"], until=lambda j: j["state"] == "running")
        assert c.get(f"/api/jobs/{b['id']}").json()["state"] == "queued"  # one at a time
        assert c.post(f"/api/jobs/{b['id']}/cancel").json()["state"] == "cancelled"
        c.post(f"/api/jobs/{a['id']}/cancel")
        assert wait(c, a["id"])["state"] == "cancelled"
        assert c.post("/api/jobs", json=job_body(output="c.mkv")).status_code == 201
    assert not any((root / n).exists() for n in ("a.mkv", "b.mkv")) and leftovers(root) == []


def test_restart_interrupts_running_jobs_and_runs_queued_ones(root: Path) -> None:
    """What a server killed mid-job leaves: a job marked running and a partial file. The
    next start marks it interrupted, removes the file, and runs the queued job."""
    store = JobStore(root / ".vsvsr-serve.sqlite")
    opts = job_body()
    crashed = store.add(input="clip.mkv", output="sub/crashed.mkv",
                        options={**opts, "output": "sub/crashed.mkv"})
    store.mark_running(crashed.id, 999999)
    (root / "sub" / ".crashed.abcd1234.partial.mkv").write_bytes(b"half")
    waiting = store.add(input="clip.mkv", output="out.mkv", options=opts)
    with client(root) as c:
        job = c.get(f"/api/jobs/{crashed.id}").json()
        assert job["state"] == "interrupted" and "server stopped" in job["error"]
        assert wait(c, waiting.id)["state"] == "done"
    assert list((root / "sub").iterdir()) == []
    assert (root / "out.mkv").is_file()


def test_serve_command_warns_off_localhost(monkeypatch, tmp_path: Path, capsys) -> None:
    import uvicorn

    from vsvsr.cli.main import main

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    assert main(["serve", "--root", str(tmp_path), "--port", "9999"]) == 0
    assert "WARNING" not in capsys.readouterr().err
    assert main(["serve", "--root", str(tmp_path), "--host", "0.0.0.0", "--jobs", "2"]) == 0
    err = capsys.readouterr().err
    assert "WARNING: listening on 0.0.0.0" in err and "no login" in err
    assert [(k["host"], k["port"]) for k in calls] == [("127.0.0.1", 9999), ("0.0.0.0", 8765)]
    assert main(["serve", "--root", str(tmp_path / "missing")]) == 1
    assert "not a folder" in capsys.readouterr().err
    assert main(["serve", "--root", str(tmp_path), "--jobs", "0"]) == 1
