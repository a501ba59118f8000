"""Plain ``nn.Module`` networks built from a model config and the DataSpec."""
