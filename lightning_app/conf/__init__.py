"""Hydra config tree shipped inside the package (`pkg://lightning_app.conf`)."""
