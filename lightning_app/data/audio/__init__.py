"""Speech: audio clips in one sub-folder per class, spectrogram features, keyword models.

- :mod:`~lightning_app.data.audio.features`: the one feature function (log-mel or MFCC, numpy),
  called by training, ``lapp serve`` and ``lapp predict`` alike;
- :mod:`~lightning_app.data.audio.clips`: decoding (soundfile), downmixing, resampling and
  padding/cropping a recording to the configured clip;
- :mod:`~lightning_app.data.sources.audio`: ``data=audio_folder``;
- :mod:`~lightning_app.data.audio.augment`: ``augmentation=audio`` (time shift, background noise,
  gain on waveforms; SpecAugment masking on spectrograms)
  (audio in requests and prediction files is decoded in
  :mod:`~lightning_app.serving.audio_requests`).

Import cost of this package: nothing; ``features`` and ``clips`` need numpy,
scipy and soundfile only (no torch), so the server computes features without torch.
"""
