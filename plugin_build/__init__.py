"""Export and build tooling: PyTorch -> ONNX (and, in later issues, ONNX -> TensorRT)."""
