"""Pretrained backbones in the Hugging Face layout: resolution, loading, fine-tuning strategies.

``transformers`` and ``peft`` are imported only when a pretrained model is built.
"""
