"""Every bad input gets a clear error naming the problem and the fix."""

from __future__ import annotations

from pathlib import PurePosixPath

import numpy as np
import pytest
import synth
import vapoursynth as vs

import vsvsr
from vsvsr.errors import BackendUnavailableError, ClipFormatError, ModelFileError, UnknownModelError

core = vs.core
H, W = 24, 32


def rgbs(num: int = 3) -> vs.VideoNode:
    return synth.array_clip(synth.make_frames(num, H, W))


def test_gray_clip_is_refused_with_a_conversion_hint(random_model) -> None:
    clip = core.std.BlankClip(width=W, height=H, format=vs.GRAY8)
    with pytest.raises(ClipFormatError, match=r"(?i)gray8 is not supported.*resize"):
        vsvsr.recurrent(clip, random_model)


def test_variable_format_clip_is_refused(random_model) -> None:
    a = core.std.BlankClip(width=W, height=H, format=vs.RGB24, length=2)
    b = core.std.BlankClip(width=W, height=H, format=vs.YUV420P8, length=2)
    with pytest.raises(ClipFormatError, match="variable format"):
        vsvsr.recurrent(core.std.Splice([a, b], mismatch=True), random_model)


def test_variable_size_clip_is_refused(random_model) -> None:
    a = core.std.BlankClip(width=W, height=H, format=vs.RGB24, length=2)
    b = core.std.BlankClip(width=W + 2, height=H, format=vs.RGB24, length=2)
    with pytest.raises(ClipFormatError, match="variable size"):
        vsvsr.recurrent(core.std.Splice([a, b], mismatch=True), random_model)


def test_yuv_without_matrix_names_the_argument(random_model) -> None:
    clip = core.std.BlankClip(width=W, height=H, format=vs.YUV420P8)
    with pytest.raises(ClipFormatError, match=r'_Matrix unspecified; pass matrix="709" .*'
                                              r'matrix="auto" to guess it from the size'):
        vsvsr.recurrent(clip, random_model, matrix=None)  # strict on request
    out = vsvsr.recurrent(clip, random_model, matrix="bt709")  # the fix works
    assert out.format.id == vs.YUV420P8


def test_untagged_yuv_gets_the_size_guess_with_a_warning(random_model, caplog) -> None:
    """matrix="auto" (the default): what players and vsvsr upscale assume, said in a warning."""
    from vsvsr.vs.formats import inspect_clip

    clip = core.std.BlankClip(width=W, height=H, format=vs.YUV420P8)
    with caplog.at_level("WARNING", logger="vsvsr.vs.formats"):
        out = vsvsr.recurrent(clip, random_model)
    assert "assuming 170m from its size" in caplog.text and 'matrix="709"' in caplog.text
    assert out.get_frame(0).props["_Matrix"] == 6  # BT.601 (170m) in and out
    hd = core.std.BlankClip(width=1280, height=720, format=vs.YUV420P8)
    assert inspect_clip(hd, "f", "auto").matrix == 1  # BT.709 from 1280x720 up
    tagged = core.std.SetFrameProps(hd, _Matrix=5)
    caplog.clear()
    with caplog.at_level("WARNING", logger="vsvsr.vs.formats"):
        assert inspect_clip(tagged, "f", "auto").matrix == 5  # the clip's own tag wins
        assert inspect_clip(tagged, "f", "709").matrix == 1  # an explicit matrix wins over it
    assert caplog.text == ""


def test_unknown_matrix_lists_the_known_ones(random_model) -> None:
    clip = core.std.BlankClip(width=W, height=H, format=vs.YUV420P8)
    with pytest.raises(ClipFormatError, match="unknown matrix 'rec9000'.*709"):
        vsvsr.recurrent(clip, random_model, matrix="rec9000")


@pytest.mark.parametrize("fmt", [vs.YUV410P8, vs.YUV444PS])
def test_unsupported_yuv_layouts(random_model, fmt) -> None:
    with pytest.raises(ClipFormatError, match="not supported"):
        vsvsr.recurrent(core.std.BlankClip(width=W, height=H, format=fmt), random_model,
                        matrix="709")


def test_not_a_clip() -> None:
    with pytest.raises(ClipFormatError, match="expected a VapourSynth video clip"):
        vsvsr.recurrent(np.zeros((3, 4, 4)))  # type: ignore[arg-type]


def test_unknown_model_lists_the_built_in_ones() -> None:
    with pytest.raises(UnknownModelError, match="unknown model 'rvsr-x9'.*rvsr-x2, rvsr-x4"):
        vsvsr.recurrent(rgbs(), "rvsr-x9")


def test_missing_model_file(tmp_path) -> None:
    with pytest.raises(ModelFileError, match="does not exist"):
        vsvsr.recurrent(rgbs(), str(tmp_path / "nope.onnx"))


def test_corrupt_model_file(tmp_path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not an onnx model")
    with pytest.raises(ModelFileError, match="corrupt or not an ONNX model"):
        vsvsr.recurrent(rgbs(), bad, "ort")


def test_truncated_model_file(random_model, tmp_path) -> None:
    bad = tmp_path / "truncated.onnx"
    bad.write_bytes(random_model.read_bytes()[:2000])
    with pytest.raises(ModelFileError, match="cannot load"):
        vsvsr.recurrent(rgbs(), bad, "ort")


@pytest.mark.parametrize("damage", ["random", "truncated", "empty", "pickled-object"])
def test_damaged_pth_says_what_it_is_not(random_model, tmp_path, damage) -> None:
    """Not PyTorch's weights_only text (it suggests weights_only=False and a PyTorch issue)."""
    import torch

    bad = tmp_path / "bad.pth"
    good = random_model.with_suffix(".pth").read_bytes()
    if damage == "pickled-object":
        torch.save({"descriptor": PurePosixPath("code, not weights")}, bad)
    else:
        bad.write_bytes({"random": np.random.default_rng(0).bytes(5000),
                         "truncated": good[:len(good) // 2], "empty": b""}[damage])
    with pytest.raises(ModelFileError) as info:
        vsvsr.recurrent(rgbs(), bad, "torch")
    msg = str(info.value)
    assert msg.startswith(f"{bad}: not a readable vsvsr .pth model file: ")
    assert {"random": "not a PyTorch zip archive", "truncated": "not a PyTorch zip archive",
            "empty": "the file is empty",
            "pickled-object": "objects other than weights"}[damage] in msg
    assert "vsvsr export" in msg
    assert "weights_only" not in msg and "issue" not in msg


def test_errors_about_a_sibling_name_the_file_passed(random_model, tmp_path) -> None:
    """A .pth with a broken .onnx beside it: the error names both and says which was used."""
    pth = tmp_path / "mine.pth"
    pth.write_bytes(random_model.with_suffix(".pth").read_bytes())
    onnx = tmp_path / "mine.onnx"
    onnx.write_bytes(b"not an onnx model")
    with pytest.raises(ModelFileError) as info:
        vsvsr.recurrent(rgbs(), pth, "ort")
    msg = str(info.value)
    assert msg.startswith(f"{onnx}: ONNX Runtime cannot load")
    assert (f"the model you passed is {pth}; vsvsr opened {onnx}, the .onnx file beside it"
            in msg) and "backend='torch' to run" in msg
    assert vsvsr.recurrent(rgbs(), pth, "torch").num_frames == 3  # the .pth itself is fine
    # the other way round: an .onnx with a damaged .pth beside it
    pth.write_bytes(b"garbage")
    onnx.write_bytes(random_model.read_bytes())
    with pytest.raises(ModelFileError, match=rf"the model you passed is {onnx}; vsvsr opened "
                                             rf"{pth}.*backend='ort' to run"):
        vsvsr.recurrent(rgbs(), onnx, "torch")
    # errors about the file passed itself stay as they are
    with pytest.raises(ModelFileError) as info:
        vsvsr.recurrent(rgbs(), pth, "torch")
    assert "you passed" not in str(info.value)


def test_onnx_without_vsvsr_metadata(tmp_path) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    path = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    with pytest.raises(ModelFileError, match="no 'vsvsr.descriptor' metadata"):
        vsvsr.recurrent(rgbs(), path, "ort")


def test_wrong_model_file_type(tmp_path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"x")
    with pytest.raises(ModelFileError, match="unknown model file type"):
        vsvsr.recurrent(rgbs(), path)


def test_unknown_and_unavailable_backends(random_model) -> None:
    with pytest.raises(BackendUnavailableError, match="unknown backend 'cuda9'"):
        vsvsr.recurrent(rgbs(), random_model, "cuda9")
    with pytest.raises(BackendUnavailableError, match="not available here"):
        vsvsr.recurrent(rgbs(), random_model, "tensorrt")


def test_torch_backend_needs_the_pth(random_model, tmp_path) -> None:
    lone = tmp_path / "lone.onnx"
    lone.write_bytes(random_model.read_bytes())
    with pytest.raises(ModelFileError, match="no .pth file"):
        vsvsr.recurrent(rgbs(), lone, "torch")


def test_bad_output_format_and_warmup(random_model) -> None:
    with pytest.raises(ClipFormatError, match="output_format"):
        vsvsr.recurrent(rgbs(), random_model, output_format="YUV")
    with pytest.raises(ClipFormatError, match="warmup"):
        vsvsr.recurrent(rgbs(), random_model, warmup=-3)


def test_fixed_size_model_refuses_another_size(tmp_path) -> None:
    import torch

    from plugin_build.export_onnx import export_recurrent
    from vsvsr.models.descriptor import ModelDescriptor
    from vsvsr.nets.rvsr_arch import RVSRConfig, RVSRNet

    cfg = RVSRConfig(width=4, blocks=1, hidden=2)
    desc = ModelDescriptor(name="fixed", arch="rvsr", scale=2, recurrent=True,
                           state_channels=cfg.state_channels, step_clamp=cfg.step_clamp,
                           fixed_size=(64, 36), config=cfg.to_dict())
    torch.manual_seed(0)
    path = export_recurrent(RVSRNet(cfg), desc, tmp_path / "fixed.onnx")
    with pytest.raises(ClipFormatError, match=r"fixed input size 64x36 but the clip is 32x24"):
        vsvsr.recurrent(rgbs(), path, "ort")


def test_nan_frame_is_refused_with_its_number(random_model) -> None:
    frames = synth.make_frames(5, H, W)
    frames[3] = frames[3].copy()
    frames[3][1, 4, 4] = np.nan
    out = vsvsr.recurrent(synth.array_clip(frames), random_model, "ort")
    out.get_frame(2)
    with pytest.raises(vs.Error, match="input frame 3 contains NaN"):
        out.get_frame(3)


def test_state_dir_of_another_model_is_refused(random_model, random_model_x4, tmp_path) -> None:
    clip = rgbs(6)
    out = vsvsr.recurrent(clip, random_model, "ort", state_dir=tmp_path)
    out.get_frame(2)
    del out  # freeing the node saves its state
    assert (tmp_path / "state_00000002.vsvsrstate").is_file()
    other = vsvsr.recurrent(clip, random_model_x4, "ort", state_dir=tmp_path)
    with pytest.raises(vs.Error, match="belongs to another model weights"):
        other.get_frame(4)
    # A fresh folder is the fix.
    fresh = vsvsr.recurrent(clip, random_model_x4, "ort", state_dir=tmp_path / "x4")
    assert fresh.get_frame(4).width == 4 * W

