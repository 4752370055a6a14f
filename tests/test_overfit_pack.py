"""The .vsvsr pack: round trip, label compression, atomic writes and every bad pack."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from _overfit_fixtures import make_pack

from vsvsr.stdo import pack as pk
from vsvsr.stdo.pack import PackError, read_pack

FRAMES, SIZE = 7, (24, 18)


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    return make_pack(tmp_path_factory.mktemp("pack") / "good.vsvsr", frames=FRAMES, lr_size=SIZE,
                     models=3)


def test_round_trip_keeps_everything(good, tmp_path) -> None:
    p = read_pack(good, size=SIZE, frames=FRAMES, scale=2)
    assert (p.scale, p.lr_size, p.frames, p.grid, p.method) == (2, SIZE, FRAMES, (4, 3), "stdo")
    assert len(p.models) == 3 and p.labels.shape == (FRAMES, 3, 4)
    assert p.hr_size == (48, 36) and p.training == {"test": True}
    again = pk.write_pack(p, tmp_path / "again.vsvsr")
    assert again.read_bytes() == good.read_bytes()  # deterministic bytes
    q = read_pack(again)
    np.testing.assert_array_equal(q.labels, p.labels)
    assert [m.onnx for m in q.models] == [m.onnx for m in p.models]


@pytest.mark.parametrize("k", [1, 2, 4, 7])
def test_label_codec_round_trips(k) -> None:
    rng = np.random.default_rng(k)
    labels = rng.integers(0, k, (40, 5, 10)).astype(np.uint8)
    labels[10:20] = labels[9]  # static stretches compress to almost nothing
    blob = pk.encode_labels(labels)
    np.testing.assert_array_equal(pk.decode_labels(blob, labels.shape), labels)


def test_static_labels_cost_almost_nothing_per_frame() -> None:
    labels = np.broadcast_to(np.random.default_rng(0).integers(0, 4, (1, 10, 20)),
                             (300, 10, 20)).astype(np.uint8)
    assert len(pk.encode_labels(labels)) / 300 < 1.0


def test_write_is_atomic(good, tmp_path, monkeypatch) -> None:
    target = tmp_path / "x.vsvsr"
    target.write_bytes(b"old")
    p = read_pack(good)

    def boom(pack):  # noqa: ANN001
        raise RuntimeError("disk full")

    with monkeypatch.context() as m:
        m.setattr(pk, "pack_bytes", boom)
        with pytest.raises(RuntimeError):
            pk.write_pack(p, target)
    assert target.read_bytes() == b"old"
    assert [f.name for f in tmp_path.iterdir()] == ["x.vsvsr"]  # no temporary left behind


@pytest.mark.parametrize("kw, words", [
    ({"size": (26, 18)}, r"made for a 24x18 clip .* but the clip is 26x18"),
    ({"frames": FRAMES + 1}, r"made for a clip of 7 frames but the clip has 8"),
    ({"scale": 4}, r"is a x2 pack, not x4"),
])
def test_pack_for_another_clip_is_refused(good, kw, words) -> None:
    with pytest.raises(PackError, match=words):
        read_pack(good, **kw)


@pytest.mark.parametrize("cut", [0, 5, 19, 100, -1, -500])
def test_truncated_pack_is_refused(good, tmp_path, cut) -> None:
    data = good.read_bytes()
    bad = tmp_path / "cut.vsvsr"
    bad.write_bytes(data[:cut] if cut >= 0 else data[:len(data) + cut])
    with pytest.raises(PackError, match="truncated|not a vsvsr pack|damaged"):
        read_pack(bad)


@pytest.mark.parametrize("version, words", [(2, "upgrade vsvsr"), (0, "re-create it")])
def test_wrong_version_is_refused(good, tmp_path, version, words) -> None:
    data = bytearray(good.read_bytes())
    struct.pack_into("<I", data, 8, version)
    bad = tmp_path / "v.vsvsr"
    bad.write_bytes(bytes(data))
    with pytest.raises(PackError, match=f"format version {version}.*{words}"):
        read_pack(bad)


def test_corrupt_payload_extra_bytes_bad_magic_and_missing_file(good, tmp_path) -> None:
    data = bytearray(good.read_bytes())
    flipped = bytearray(data)
    flipped[-10] ^= 0xFF
    cases = {"flip": (bytes(flipped), "SHA-256"), "extra": (bytes(data) + b"\0", "unexpected bytes"),
             "magic": (b"NOTAPACK" + bytes(data[8:]), "wrong magic"),
             "onnx": (b"\x08\x01", "not a vsvsr pack")}
    for name, (blob, words) in cases.items():
        f = tmp_path / f"{name}.vsvsr"
        f.write_bytes(blob)
        with pytest.raises(PackError, match=words):
            read_pack(f)
    with pytest.raises(PackError, match="does not exist"):
        read_pack(tmp_path / "nope.vsvsr")


def test_header_that_lies_about_labels_is_refused(good, tmp_path) -> None:
    """A consistent file (hash fine) whose header claims another frame count."""
    data = good.read_bytes()
    magic, version, hlen = struct.unpack_from("<8sIQ", data)
    header = json.loads(data[20:20 + hlen])
    header["frames"] = FRAMES + 2
    head = json.dumps(header).encode()
    bad = tmp_path / "lie.vsvsr"
    bad.write_bytes(struct.pack("<8sIQ", magic, version, len(head)) + head + data[20 + hlen:])
    with pytest.raises(PackError, match="damaged or incomplete"):
        read_pack(bad)


def test_pack_invariants() -> None:
    labels = np.zeros((2, 1, 1), np.uint8)
    m = pk.PackModel(name="a", arch="espcn", config={}, params=1, onnx=b"x")
    base = dict(scale=2, lr_size=(4, 4), frames=2, grid=(1, 1), method="stdo", backbone="espcn",
                receptive_radius=4, models=(m,), labels=labels, source_sha256="")
    pk.Pack(**base)
    for change, words in [({"labels": labels + 1}, "names a model"), ({"method": "x"}, "method"),
                          ({"scale": 5}, "scale"), ({"models": ()}, "no models"),
                          ({"frames": 3}, "label map")]:
        with pytest.raises(PackError, match=words):
            pk.Pack(**{**base, **change})


def test_vsvsr_build_expands_a_pack_to_its_stateless_members(good, tmp_path, monkeypatch,
                                                            capsys) -> None:
    """The TensorRT build hook: one validated ONNX and one lr-only trtexec line per member."""
    import sys

    from plugin_build.onnx_check import check_onnx
    from vsvsr.cli.main import main
    from vsvsr.stdo.members import member_files

    files = member_files(good, cache=tmp_path / "cache")
    assert [f.onnx.read_bytes() for f in files] == [m.onnx for m in read_pack(good).models]
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # no TensorRT here: trtexec lines
    out = tmp_path / "engines"
    assert main(["build", "--model", str(good), "--size", "24x18", "--out", str(out)]) == 3
    lines = [ln.strip() for ln in capsys.readouterr().out.splitlines()
             if ln.strip().startswith("trtexec ")]
    assert len(lines) == 9  # per member: TensorRT 10.0-10.11, 10.12+ and 11 lines
    assert all("--minShapes=lr:1x3x18x24 " in ln and "lr_prev" not in ln for ln in lines)
    weak = [ln for ln in lines if "--fp16" in ln]
    assert len(weak) == 3 and all("--outputIOFormats=fp16:chw " in ln + " " for ln in weak)
    onnx_files = sorted(f for f in (out / "onnx").glob("good-m*.onnx")
                        if not f.name.endswith("-fp16.onnx"))  # fp16 ones: strongly typed lines
    assert len(onnx_files) == 3 and all(check_onnx(f).ok for f in onnx_files)
