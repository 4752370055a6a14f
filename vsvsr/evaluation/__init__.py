"""Evaluation of SR models against HR ground truth (``vsvsr eval``).

``metrics``: Y-PSNR, Y-SSIM and tOF in the conventions of the VSR papers; ``data``: HR frames
from folders, videos or one photo (long pseudo-videos) and their LR made with the training
resize; ``models``: bicubic, built-in models, model files and training checkpoints as
sequence upscalers; ``report``: the lock-step run, the JSON report, the table and the plot.
Only ``metrics`` is imported by the runtime package (the demo's Y-PSNR); the rest needs
PyTorch and OpenCV (``pip install 'vsvsr[train]'``).
"""
