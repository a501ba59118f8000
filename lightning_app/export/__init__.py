"""Export stage: ONNX export and verification, benchmark, report, plots, the artifact contract."""
