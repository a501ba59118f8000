"""One recipe per stage (train, evaluate, export, serve, predict), read top to bottom.

Each recipe is the stage's Hydra entry point: it converts the config once, hands every step its
own sub-config and the DataSpec, and is the only caller of the builders (:mod:`lightning_app.build`).
"""
