"""Deployment stage: ONNX export and verification, benchmarks, report, serving."""
