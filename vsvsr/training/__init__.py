"""Training of vsvsr networks on the CPU or a GPU: data, configs, checkpoints and the trainer.

Only the training entry points import PyTorch; nothing here runs at import time.
"""
