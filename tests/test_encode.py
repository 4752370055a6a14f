"""vsvsr.encode: ffmpeg discovery, the y4m writer against real ffmpeg, the encode pipe."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs
from _cli_fixtures import decode, ffmpeg, leftovers, make_video, video_clip

from vsvsr.encode import pipe
from vsvsr.encode.ffmpeg import FfmpegError, audio_streams, find_ffmpeg_info, probe
from vsvsr.encode.pipe import AudioSource, EncodeSettings, build_command, encode_clip
from vsvsr.encode.y4m import Y4MWriter, to_y4m_clip, write_y4m, y4m_format
from vsvsr.errors import ClipFormatError, MissingDependencyError

core = vs.core


def noise_clip(fmt: int, width: int = 38, height: int = 22, length: int = 4, seed: int = 0,
               **props: int) -> vs.VideoNode:
    """Random samples in every plane (width 38: padded strides), fixed per frame."""
    blank = core.std.BlankClip(width=width, height=height, format=fmt, length=length,
                               fpsnum=30000, fpsden=1001, keep=True)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        rng = np.random.default_rng(seed + n)
        hi = 1 << out.format.bits_per_sample
        for p in range(out.format.num_planes):
            plane = np.asarray(out[p])
            plane[...] = rng.integers(0, hi, plane.shape)
        for k, v in props.items():
            out.props[k] = v
        return out

    return blank.std.ModifyFrame(blank, fill)


def planes_bytes(clip: vs.VideoNode) -> bytes:
    return b"".join(np.ascontiguousarray(np.asarray(f[p])).tobytes()
                    for f in clip.frames() for p in range(f.format.num_planes))


# -- ffmpeg discovery -------------------------------------------------------------------------
def test_find_ffmpeg_default_is_runnable(monkeypatch) -> None:
    monkeypatch.delenv("VSVSR_FFMPEG", raising=False)
    info = find_ffmpeg_info()
    assert info.source in ("imageio-ffmpeg", "PATH")
    out = subprocess.run([info.path, "-version"], capture_output=True, text=True, check=True)
    assert "ffmpeg version" in out.stdout


def test_find_ffmpeg_env_override(monkeypatch) -> None:
    real = ffmpeg()
    monkeypatch.setenv("VSVSR_FFMPEG", real)
    assert find_ffmpeg_info().path == real and find_ffmpeg_info().source == "VSVSR_FFMPEG"
    monkeypatch.setenv("VSVSR_FFMPEG", "/nonexistent/ffmpeg")
    with pytest.raises(MissingDependencyError, match="VSVSR_FFMPEG"):
        find_ffmpeg_info()


def test_no_ffmpeg_anywhere_names_the_fix(monkeypatch) -> None:
    import imageio_ffmpeg

    monkeypatch.delenv("VSVSR_FFMPEG", raising=False)
    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe",
                        lambda: (_ for _ in ()).throw(RuntimeError("no binary")))
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(MissingDependencyError, match="imageio-ffmpeg.*PATH.*VSVSR_FFMPEG"):
        find_ffmpeg_info()


def test_probe_lists_streams(tmp_path: Path) -> None:
    path = make_video(tmp_path / "av.mkv", frames=3)
    kinds = [(s.kind, s.codec) for s in probe(path)]
    assert kinds == [("video", "h264"), ("audio", "aac")]
    assert audio_streams(make_video(tmp_path / "v.mkv", frames=3, audio=None)) == []


# -- y4m header -------------------------------------------------------------------------------
@pytest.mark.parametrize(("fmt", "props", "tag", "pix_fmt"), [
    (vs.YUV420P8, {}, "C420mpeg2", "yuv420p"),
    (vs.YUV420P8, {"_ChromaLocation": 1}, "C420jpeg", "yuv420p"),
    (vs.YUV420P8, {"_ChromaLocation": 2}, "C420paldv", "yuv420p"),
    (vs.YUV420P10, {}, "C420p10", "yuv420p10le"),
    (vs.YUV422P8, {}, "C422", "yuv422p"),
    (vs.YUV422P12, {}, "C422p12", "yuv422p12le"),
    (vs.YUV444P16, {}, "C444p16", "yuv444p16le"),
    (vs.GRAY8, {}, "Cmono", "gray"),
    (vs.GRAY16, {}, "Cmono16", "gray16le"),
])
def test_y4m_header(fmt, props, tag, pix_fmt) -> None:
    clip = noise_clip(fmt, width=8, height=4, **props)
    f = y4m_format(clip)
    assert f.header(4) == f"YUV4MPEG2 W8 H4 F30000:1001 Ip A0:0 {tag} XLENGTH=4\n".encode()
    assert f.pix_fmt == pix_fmt


def test_y4m_header_states_range_and_sar() -> None:
    full = y4m_format(noise_clip(vs.YUV420P8, _Range=1, _SARNum=4, _SARDen=3))
    assert b" A4:3 " in full.header() and full.header().endswith(b" XCOLORRANGE=FULL\n")
    limited = y4m_format(noise_clip(vs.YUV420P8, _Range=0))
    assert limited.header().endswith(b" XCOLORRANGE=LIMITED\n")


@pytest.mark.parametrize(("fmt", "match"), [
    (vs.RGB24, "y4m has no RGB.*to_y4m_clip"),
    (vs.RGBS, "integer 8-16 bit YUV"),
    (vs.YUV444PS, "integer 8-16 bit YUV"),
    (vs.YUV411P8, "4:2:0, 4:2:2 or 4:4:4"),
    (vs.GRAY10, "8- or 16-bit grey"),
])
def test_y4m_refuses_what_it_cannot_carry(fmt, match) -> None:
    clip = core.std.BlankClip(width=8, height=4, format=fmt, length=1)
    with pytest.raises(ClipFormatError, match=match):
        y4m_format(clip)


def test_y4m_refuses_variable_frame_rate() -> None:
    clip = core.std.BlankClip(width=8, height=4, format=vs.YUV420P8, length=1, fpsnum=0)
    with pytest.raises(ClipFormatError, match="AssumeFPS"):
        y4m_format(clip)


def test_to_y4m_clip_converts_rgb_to_yuv444() -> None:
    assert to_y4m_clip(noise_clip(vs.RGB24)).format.id == vs.YUV444P8
    assert to_y4m_clip(noise_clip(vs.RGB48)).format.id == vs.YUV444P16
    rgbs = core.std.BlankClip(width=8, height=4, format=vs.RGBS, length=1)
    out = to_y4m_clip(rgbs)
    assert out.format.id == vs.YUV444P16
    assert out.get_frame(0).props["_Matrix"] == 1
    yuv = noise_clip(vs.YUV420P10)
    assert to_y4m_clip(yuv) is yuv


# -- y4m bytes through real ffmpeg ------------------------------------------------------------
@pytest.mark.parametrize("fmt", [vs.YUV420P8, vs.YUV420P10, vs.YUV422P10, vs.YUV444P16,
                                 vs.GRAY8])
def test_y4m_round_trip_through_ffmpeg_rawvideo(fmt) -> None:
    clip = noise_clip(fmt)
    buf = io.BytesIO()
    assert write_y4m(clip, buf) == clip.num_frames
    f = y4m_format(clip)
    assert len(buf.getvalue()) == len(f.header(4)) + 4 * (6 + f.frame_bytes)
    out = subprocess.run([ffmpeg(), "-hide_banner", "-loglevel", "error", "-f", "yuv4mpegpipe",
                          "-i", "pipe:0", "-f", "rawvideo", "-pix_fmt", f.pix_fmt, "pipe:1"],
                         input=buf.getvalue(), capture_output=True, check=True)
    assert out.stdout == planes_bytes(clip)


@pytest.mark.parametrize("fmt", [vs.YUV420P8, vs.YUV420P10, vs.YUV444P12])
def test_encode_clip_ffv1_decodes_to_the_same_samples(tmp_path: Path, fmt) -> None:
    clip = noise_clip(fmt, width=38, height=22, _Matrix=1, _Range=0)
    out = tmp_path / "ffv1.mkv"
    result = encode_clip(clip, out, EncodeSettings(codec="ffv1", audio="none"), progress=False)
    assert result.frames == 4 and out.is_file() and leftovers(tmp_path) == []
    got = decode(out)
    want = [[np.asarray(f[p]) for p in range(3)] for f in clip.frames()]
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        for gp, wp in zip(g, w, strict=True):
            np.testing.assert_array_equal(gp, wp)
    props = video_clip(out).get_frame(0).props
    assert props["_Matrix"] == 1 and int(props["_Range"]) == int(vs.Range.RANGE_LIMITED)


def test_colour_tags_do_not_convert_samples(tmp_path: Path) -> None:
    """Tagging BT.709 must label the frames, not convert them (ffmpeg -colorspace does)."""
    clip = core.std.BlankClip(width=16, height=16, format=vs.YUV420P8, color=[100, 60, 200],
                              length=2).std.SetFrameProps(_Matrix=1, _Range=0, _Primaries=1,
                                                          _Transfer=1)
    out = tmp_path / "tagged.mkv"
    encode_clip(clip, out, EncodeSettings(codec="ffv1"), progress=False)
    y, u, v = decode(out)[0]
    assert (y == 100).all() and (u == 60).all() and (v == 200).all()
    props = video_clip(out).get_frame(0).props
    assert (props["_Matrix"], props["_Primaries"], props["_Transfer"]) == (1, 1, 1)


def test_writer_refuses_a_frame_of_another_size() -> None:
    clip = noise_clip(vs.YUV420P8)
    other = noise_clip(vs.YUV420P8, width=20)
    w = Y4MWriter(io.BytesIO(), y4m_format(clip))
    with pytest.raises(ClipFormatError, match="20x22"):
        w.write_frame(other.get_frame(0))


# -- the pipe: failures leave nothing behind --------------------------------------------------
def test_bad_codec_is_a_clear_error_and_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out.mkv"
    with pytest.raises(FfmpegError) as err:
        encode_clip(noise_clip(vs.YUV420P8, length=30), out,
                    EncodeSettings(codec="no-such-codec"), progress=False)
    assert "no-such-codec" in str(err.value) and "exited with status" in str(err.value)
    assert not out.exists() and leftovers(tmp_path) == []


def test_keyboard_interrupt_mid_run_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    real = pipe.iter_frames

    def interrupted(clip):  # noqa: ANN202
        for i, frame in enumerate(real(clip)):
            if i == 2:
                raise KeyboardInterrupt
            yield frame

    monkeypatch.setattr(pipe, "iter_frames", interrupted)
    started: list[subprocess.Popen] = []
    popen = subprocess.Popen

    def spy(*a, **k):  # noqa: ANN202
        started.append(popen(*a, **k))
        return started[-1]

    monkeypatch.setattr(pipe.subprocess, "Popen", spy)
    out = tmp_path / "out.mkv"
    with pytest.raises(KeyboardInterrupt):
        encode_clip(noise_clip(vs.YUV420P8, length=10), out, progress=False)
    assert not out.exists() and leftovers(tmp_path) == []
    assert started and started[0].poll() is not None  # ffmpeg was stopped and reaped


def test_existing_output_needs_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out.mkv"
    out.write_bytes(b"keep me")
    with pytest.raises(FfmpegError, match="exists"):
        encode_clip(noise_clip(vs.YUV420P8), out, overwrite=False, progress=False)
    assert out.read_bytes() == b"keep me"
    encode_clip(noise_clip(vs.YUV420P8), out, EncodeSettings(codec="ffv1"), progress=False)
    assert out.stat().st_size > 100
    assert oct(out.stat().st_mode & 0o777) != oct(0o600)  # not the private temp-file mode


def test_audio_is_copied_or_reencoded_for_the_container(tmp_path: Path) -> None:
    src = make_video(tmp_path / "pcm.mkv", frames=6, audio="pcm_s16le")
    clip = noise_clip(vs.YUV420P8, width=64, height=48, length=6)
    mkv = encode_clip(clip, tmp_path / "a.mkv", EncodeSettings(codec="ffv1"),
                      audio_source=AudioSource(path=src), progress=False)
    assert mkv.audio == "copy" and [s.codec for s in audio_streams(mkv.output)] == ["pcm_s16le"]
    mp4 = encode_clip(clip, tmp_path / "a.mp4", audio_source=AudioSource(path=src),
                      progress=False)
    assert mp4.audio == "aac" and [s.codec for s in audio_streams(mp4.output)] == ["aac"]
    none = encode_clip(clip, tmp_path / "n.mkv", EncodeSettings(audio="none"),
                       audio_source=AudioSource(path=src), progress=False)
    assert none.audio == "none" and audio_streams(none.output) == []


def test_build_command_merges_user_video_filters() -> None:
    fmt = y4m_format(noise_clip(vs.YUV420P8))
    s = EncodeSettings(codec="libx265", crf=20, preset="fast",
                       extra_args=("-vf", "hflip", "-tune", "grain"))
    cmd = build_command("ffmpeg", fmt, Path("o.mkv"), s, colors="setparams=colorspace=bt709")
    assert cmd[cmd.index("-vf") + 1] == "setparams=colorspace=bt709,hflip"
    assert cmd.count("-vf") == 1
    assert cmd[cmd.index("-crf") + 1] == "20" and cmd[cmd.index("-preset") + 1] == "fast"
    ffv1 = build_command("ffmpeg", fmt, Path("o.mkv"), EncodeSettings(codec="ffv1"))
    assert "-crf" not in ffv1 and "-preset" not in ffv1 and ffv1[-1] == "o.mkv"


def test_settings_are_validated() -> None:
    from vsvsr.errors import VsvsrError

    with pytest.raises(VsvsrError, match="codec"):
        EncodeSettings(codec="-c:v")
    with pytest.raises(VsvsrError, match="crf"):
        EncodeSettings(crf=-1)


def test_encode_package_import_is_cheap() -> None:
    code = ("import sys, vsvsr.encode; "
            "print('vapoursynth' in sys.modules, 'onnxruntime' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False", "False"]


def test_a_failing_frame_stops_ffmpeg_and_leaves_nothing(tmp_path: Path) -> None:
    clip = noise_clip(vs.YUV420P8, length=10)

    def fail_at_3(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        if n == 3:
            raise RuntimeError("broken frame 3")
        return f

    bad = clip.std.ModifyFrame(clip, fail_at_3)
    out = tmp_path / "out.mkv"
    with pytest.raises(vs.Error, match="broken frame 3"):
        encode_clip(bad, out, progress=False)
    assert not out.exists() and leftovers(tmp_path) == []
