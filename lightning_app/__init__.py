"""lightning_app: declarative, config-driven deep learning on Hydra and Lightning.

Kept import-light on purpose: entry points must answer `--help` and `--cfg job` without
importing torch or Lightning.
"""

__version__ = "0.1.0"
