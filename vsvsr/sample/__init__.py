"""The built-in sample clip (photos with synthetic camera motion and hard cuts) and the
quality measures the demo reports."""

from vsvsr.sample.clip import (
    SampleFiles,
    SampleSpec,
    array_clip,
    downscale,
    lr_clip,
    render_hr_frames,
    write_rgb_video,
    write_sample,
)

__all__ = ["SampleFiles", "SampleSpec", "array_clip", "downscale", "lr_clip",
           "render_hr_frames", "write_rgb_video", "write_sample"]
