"""Content-aware overfit super-resolution (STDO / JSTDO, CVPR 2023) and its model packs.

(The package is ``vsvsr.stdo``, not ``vsvsr.overfit``: that name is the filter function.)

One module per job:

* :mod:`grid` -- the patch grid over an LR frame (bounds, label map -> pixel map);
* :mod:`chunking` -- PSNR quantile chunks (inf and ties handled) and JSTDO sampling fractions;
* :mod:`scoring` -- per-patch Y-PSNR of an upscale against its HR frame;
* :mod:`pack` -- the versioned ``.vsvsr`` pack file (ONNX models + compressed label maps);
* :mod:`runner` -- per-patch model selection on NumPy frames (ONNX Runtime only);
* :mod:`members` -- a pack's models as ONNX files (for ``vsvsr build``);
* :mod:`general` -- the general single-frame model: load, train, save (PyTorch);
* :mod:`export` -- a stateless network to ONNX bytes;
* :mod:`source`, :mod:`train`, :mod:`api` -- HR video in, trained pack out (PyTorch).

The VapourSynth filter is :func:`vsvsr.vs.overfit_filter.overfit` (``vsvsr.overfit``). The
runtime half (grid, chunking, pack, runner, members) imports NumPy and ONNX Runtime only.
"""
