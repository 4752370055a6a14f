"""Model descriptors, model files and the registry of built-in models (no PyTorch needed)."""
