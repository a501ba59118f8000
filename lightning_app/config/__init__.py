"""Typed config schemas (registered in Hydra's ConfigStore) and the cross-field validator."""
