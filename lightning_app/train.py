"""``python -m lightning_app.train [overrides]``: the same as ``lapp train``."""

from lightning_app.recipes.train import main

if __name__ == "__main__":
    main()
