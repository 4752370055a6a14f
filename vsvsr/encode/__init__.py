"""Video output: find ffmpeg, write VapourSynth frames as y4m, pipe them into ffmpeg.

Importing this package is cheap; VapourSynth is imported by the functions that need it.
"""

from vsvsr.encode.ffmpeg import FfmpegError, find_ffmpeg, find_ffmpeg_info, probe
from vsvsr.encode.pipe import AudioSource, EncodeResult, EncodeSettings, encode_clip
from vsvsr.encode.y4m import Y4MFormat, Y4MWriter, to_y4m_clip, write_y4m, y4m_format

__all__ = ["AudioSource", "EncodeResult", "EncodeSettings", "FfmpegError", "Y4MFormat",
           "Y4MWriter", "encode_clip", "find_ffmpeg", "find_ffmpeg_info", "probe",
           "to_y4m_clip", "write_y4m", "y4m_format"]
