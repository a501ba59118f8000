"""Raw audio in `lapp serve` requests and `lapp predict` inputs, turned into the model's features.

An audio model's ONNX input is the spectrogram (or, with ``features.kind=waveform``, the clip's
normalized samples); clients send recordings, which are decoded,
fitted to the clip and turned into features with the functions training used
(:func:`~lightning_app.data.audio.clips.load_clip`, :func:`~lightning_app.data.audio.features.compute_features`)
and the settings stored in the artifact's ``lapp.preprocessing`` metadata. Accepted forms:

- ``POST /predict`` with ``Content-Type: audio/wav`` (any ``audio/*`` or
  ``application/octet-stream``): the body is one audio file (WAV, FLAC, OGG, ...);
- ``POST /predict`` as ``multipart/form-data``: every file field is one recording
  (``curl -F file=@a.wav -F file=@b.wav``); ``top_k`` and ``probabilities`` go in the query
  string of both upload forms;
- JSON instances ``{"audio": BASE64}`` (an audio file) or ``{"audio": BASE64, "encoding":
  "pcm_s16le", "sample_rate": 16000, "channels": 1}`` (headerless PCM), beside spectrogram
  arrays, which are still accepted as they are;
- `lapp predict input=DIR_OR_FILE`: every audio file under a folder (or one file), with a
  ``path`` column in the output.

Import cost: numpy only; the feature and decoding modules load with the first audio model.
"""

from __future__ import annotations

import base64
import binascii
import io
from pathlib import Path
from typing import Any

import numpy as np

from lightning_app.errors import DataError, RequestError
from lightning_app.serving.predict_io import InputParser

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif")
INSTANCE_KEYS = ("audio", "encoding", "sample_rate", "channels")
FILE_ENCODING = "file"  # base64 of a whole audio file (the default)
CHUNK = 256  # recordings decoded and featurized at a time by `lapp predict`


class Upload:
    """One uploaded recording: its bytes and how errors name it."""

    def __init__(self, name: str, data: bytes):
        self.name, self.data = name, data


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_upload(content_type: str | None, parser: InputParser) -> bool:
    """Whether a request body is an upload (audio bytes or a form) rather than JSON.

    ``application/octet-stream`` counts as an upload for audio models only; other models keep
    reading such bodies as JSON.
    """
    media = _media_type(content_type)
    if media == "application/octet-stream":
        return isinstance(parser, AudioInputParser)
    return media.startswith("audio/") or media == "multipart/form-data"


def is_audio_input(path: str | Path) -> bool:
    """Whether a `lapp predict` input is audio: a folder, or a file with an audio suffix."""
    path = Path(str(path))
    return path.is_dir() or path.suffix.lower() in AUDIO_SUFFIXES


def _form_files(body: bytes, content_type: str) -> list[Upload]:
    """The file fields of a ``multipart/form-data`` body, in order."""
    from python_multipart import exceptions, parse_form

    files: list[Upload] = []

    def on_file(f: Any) -> None:
        f.file_object.seek(0)
        name = (f.file_name or f.field_name or b"file").decode("utf-8", "replace")
        files.append(Upload(name, f.file_object.read()))

    headers = {
        "Content-Type": content_type.encode("latin-1"),
        "Content-Length": str(len(body)).encode(),
    }
    try:
        parse_form(headers, io.BytesIO(body), on_field=lambda _: None, on_file=on_file)
    except (exceptions.FormParserError, ValueError) as err:
        raise RequestError(f"malformed multipart/form-data body: {err}", status=400) from None
    return files


def _flag(query: Any, key: str, kind: type) -> Any:
    value = query.get(key)
    if value is None:
        return None
    if kind is bool:
        if value.lower() in ("true", "1", "yes"):
            return True
        if value.lower() in ("false", "0", "no"):
            return False
        raise RequestError(f"{key}={value!r} in the query string: must be true or false")
    try:
        return int(value)
    except ValueError:  # also an integer past Python's 4300-digit limit
        shown = value if len(value) <= 40 else f"{value[:20]}... ({len(value)} characters)"
        raise RequestError(f"{key}={shown!r} in the query string: must be an integer") from None


def upload_payload(
    parser: InputParser, body: bytes, content_type: str, query: Any
) -> dict[str, Any]:
    """An upload request as the JSON payload the server handles: ``{"instances": [...], ...}``.

    Raises:
        RequestError: 415 when the model does not take audio, 400 for a malformed form,
            422 for a form without files or a bad query parameter.
    """
    media = _media_type(content_type)
    if not isinstance(parser, AudioInputParser):
        raise RequestError(
            f'Content-Type {media}: this model takes a JSON body {{"instances": [...]}} '
            f"(application/json), not uploads; each instance: {parser.expected()}",
            status=415,
        )
    if media == "multipart/form-data":
        uploads = _form_files(body, content_type)
        if not uploads:
            raise RequestError(
                "the multipart/form-data body holds no file; send the recording as a file field (curl -F file=@clip.wav)"
            )
    else:
        uploads = [Upload("body", body)]
    unknown = sorted(set(query) - {"top_k", "probabilities"})
    if unknown:
        raise RequestError(
            f"unknown query parameter(s) {unknown}; allowed: ['top_k', 'probabilities']"
        )
    return {
        "instances": uploads,
        "top_k": _flag(query, "top_k", int),
        "probabilities": _flag(query, "probabilities", bool),
    }


class AudioInputParser(InputParser):
    """:class:`InputParser` of an audio model: recordings in, the training features out.

    Args:
        info, dtype, shape: as for :class:`InputParser` (the spectrogram input of the artifact).
        audio: the ``audio`` entry of the artifact's preprocessing (``AudioSettings.state()``).
    """

    def __init__(self, info: Any, dtype: type, shape: tuple[int, ...], audio: dict[str, Any]):
        from lightning_app.data.audio.features import AudioSettings

        super().__init__(info, dtype, shape)
        self.settings = AudioSettings.from_state(audio)
        if tuple(self.settings.shape) != tuple(shape):
            raise DataError(
                f"audio settings give features of shape {list(self.settings.shape)}, the model takes {list(shape)}"
            )

    def expected(self) -> str:
        s = self.settings
        return (
            f'an audio object {{"audio": BASE64 of a WAV/FLAC/OGG file}} or {{"audio": BASE64 PCM, '
            f'"encoding": "pcm_s16le"|"pcm_s32le"|"pcm_f32le"|"pcm_u8", "sample_rate": HZ, "channels": 1}} '
            f"(resampled to {s.sample_rate} Hz, mono, fitted to {s.duration:g} s), or a "
            f"{s.kind} array of shape {list(self.shape)}"
        )

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "accepts_audio": True,
            "audio": self.settings.state(),
            "uploads": "POST /predict with Content-Type audio/wav (the body is one file) or "
            "multipart/form-data (one file field per recording); top_k and probabilities in the query string",
        }

    def example(self) -> Any:
        """A base64 WAV of 0.1 s of silence (for the OpenAPI docs)."""
        import soundfile as sf

        buf = io.BytesIO()
        sf.write(
            buf,
            np.zeros(self.settings.sample_rate // 10, dtype=np.int16),
            self.settings.sample_rate,
            format="WAV",
        )
        return {"audio": base64.b64encode(buf.getvalue()).decode()}

    def _parse_form(self, instances: list) -> np.ndarray:
        if isinstance(instances[0], dict | Upload):
            return self._audio(instances)
        return super()._parse_form(instances)

    def _audio(self, instances: list) -> np.ndarray:
        from lightning_app.data.audio.features import compute_features

        clips = np.stack([self._clip(i, inst) for i, inst in enumerate(instances)])
        return compute_features(clips, self.settings)

    def _clip(self, i: int, inst: Any) -> np.ndarray:
        """One instance (an upload or an audio object) -> the fitted clip, or a 422 naming it."""
        from lightning_app.data.audio.clips import decode_audio, decode_pcm, fit_clip

        try:
            if isinstance(inst, Upload):
                samples, rate = decode_audio(inst.data, name=inst.name)
            else:
                samples, rate = self._decoded(i, inst, decode_audio, decode_pcm)
        except DataError as err:  # AudioDecodeError: names the recording and what is wrong
            raise self._bad(i, str(err)) from None
        return fit_clip(samples, rate, self.settings)[0]

    def _decoded(
        self, i: int, inst: dict, decode_audio: Any, decode_pcm: Any
    ) -> tuple[np.ndarray, int]:
        unknown = sorted(set(inst) - set(INSTANCE_KEYS))
        if unknown:
            raise self._bad(
                i, f"unknown key(s) {unknown} in an audio object; allowed {list(INSTANCE_KEYS)}"
            )
        data = inst.get("audio")
        if not isinstance(data, str):
            raise self._bad(i, "'audio' must be a base64 string")
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as err:
            raise self._bad(i, f"'audio' is not valid base64 ({err})") from None
        encoding = inst.get("encoding", FILE_ENCODING)
        if encoding == FILE_ENCODING:
            extra = sorted({"sample_rate", "channels"} & set(inst))
            if extra:
                raise self._bad(i, f"{extra} apply to PCM encodings; a file carries its own")
            return decode_audio(raw)
        rate = inst.get("sample_rate")
        if rate is None:
            raise self._bad(i, f"encoding={encoding!r} needs 'sample_rate' (Hz)")
        return decode_pcm(raw, encoding, rate, inst.get("channels", 1)), rate


def audio_files(path: Path) -> list[Path]:
    """The recordings of a `lapp predict` input: one file, or every audio file under a folder."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"input={path}: not found")
    files = sorted(
        f
        for f in path.rglob("*")
        if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES and not f.name.startswith(".")
    )
    if not files:
        raise DataError(f"input={path}: no audio files ({', '.join(AUDIO_SUFFIXES)}) in the folder")
    return files


def read_audio_input(
    path: str | Path, parser: InputParser, keep: list[str]
) -> tuple[np.ndarray, dict[str, Any]]:
    """`lapp predict` over recordings: the features of each file and a ``path`` column.

    Raises:
        DataError: the model does not take audio, ``keep_columns`` was given, nothing to read.
        RequestError: a file is not readable audio (names it).
    """
    path = Path(path)
    if not isinstance(parser, AudioInputParser):
        raise DataError(f"input={path}: audio input, but this model takes {parser.expected()}")
    if keep:
        raise DataError(
            "keep_columns applies to CSV and Parquet input; audio output has a path column"
        )
    files = audio_files(path)
    base = path if path.is_dir() else path.parent
    names = [f.relative_to(base).as_posix() for f in files]
    chunks = []
    for start in range(0, len(files), CHUNK):
        batch = [
            Upload(names[j], files[j].read_bytes())
            for j in range(start, min(start + CHUNK, len(files)))
        ]
        chunks.append(parser.parse(batch, where="input"))
    return np.concatenate(chunks), {"path": np.array(names, dtype=object)}
