"""Content-aware overfit super-resolution (STDO / JSTDO, CVPR 2023) and its model packs.

(The package is ``vsvsr.stdo``, not ``vsvsr.overfit``: that name is the filter function.)

One module per job:

* :mod:`grid` -- the patch grid over an LR frame (bounds, label map -> pixel map);
* :mod:`chunking` -- PSNR quantile chunks (inf and ties handled) and JSTDO sampling fractions;
* :mod:`scoring` -- per-patch Y-PSNR of an upscale against its HR frame;
* :mod:`pack` -- the versioned ``.vsvsr`` pack file (ONNX models + compressed label maps);
* :mod:`runner` -- per-patch model selection on NumPy frames (ONNX Runtime only);
* :mod:`source`, :mod:`train`, :mod:`api` -- HR video in, trained pack out (PyTorch).

The runtime half (grid, chunking, pack, runner) imports NumPy and ONNX Runtime only.
"""
