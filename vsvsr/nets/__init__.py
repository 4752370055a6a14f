"""PyTorch networks (training and the PyTorch backend only; the filters never import these)."""
