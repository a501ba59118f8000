"""Compression: pruning (unstructured and structured), ONNX Runtime int8 quantization, distillation.

Every step works on a plain ``nn.Module``; the Lightning pieces (a pruning callback, a
distillation training wrapper) are thin layers over the pure functions.
"""
