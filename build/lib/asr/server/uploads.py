"""A transcription request's body: the multipart upload saved to disk under a cap, its fields checked, its audio
probed. Every problem is an :class:`~asr.server.responses.ApiError` in OpenAI's shape."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from asr.audio import SAMPLE_RATE, AudioFile
from asr.errors import AsrError
from asr.server.responses import GRANULARITIES, RESPONSE_FORMATS, ApiError, RequestOptions

SLACK = 64 * 1024  # bytes of multipart framing and fields allowed over the file's own cap


@dataclass
class Upload:
    path: str  # the saved file, never under the client's name
    fields: dict  # the form's other fields; ``timestamp_granularities[]`` as a list


class _TooLarge(Exception):
    pass


def _too_large(cap_mb: float) -> ApiError:
    return ApiError(413, f"the upload is over the {cap_mb:g} MiB limit", param="file", code="file_too_large")


async def read_upload(request, folder: str, max_upload_mb: float) -> Upload:
    """The multipart form of ``request``: its fields, and the file saved under ``folder``."""
    from starlette.datastructures import UploadFile
    from starlette.requests import Request

    cap = int(max_upload_mb * 1024 * 1024)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap + SLACK:
        raise ApiError(413, f"the upload is {int(declared) / 1048576:.1f} MiB; the limit is {max_upload_mb:g} MiB",
                       param="file", code="file_too_large")
    received = 0

    async def counting_receive():  # a body without Content-Length (chunked) is stopped at the cap too
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > cap + SLACK:
            raise _TooLarge()
        return message

    try:
        form = await Request(request.scope, counting_receive).form(max_files=1, max_fields=32)
    except _TooLarge:
        raise _too_large(max_upload_mb) from None
    except Exception as e:  # malformed or cut-off multipart bodies, a client gone mid-upload
        raise ApiError(400, f"could not read the multipart body ({type(e).__name__}: {str(e)[:120]})") from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ApiError(400, "no file: send the audio as the multipart field 'file'", param="file",
                       code="missing_file")
    suffix = re.sub(r"[^a-z0-9]", "", Path(upload.filename or "").suffix.lower())[:8]
    path = os.path.join(folder, "upload" + (f".{suffix}" if suffix else ""))
    size = 0
    with open(path, "wb") as out:
        while chunk := await upload.read(1 << 20):
            size += len(chunk)
            if size > cap:
                raise _too_large(max_upload_mb)
            out.write(chunk)
    await form.close()
    if size == 0:
        raise ApiError(400, "the uploaded file is empty", param="file", code="empty_file")
    fields = {k: v for k, v in form.multi_items() if not isinstance(v, UploadFile)}
    fields["timestamp_granularities[]"] = [v for k, v in form.multi_items()
                                           if k in ("timestamp_granularities[]", "timestamp_granularities")]
    return Upload(path, fields)


def _flag(value) -> bool:
    return str(value or "").lower() in ("true", "1")


def parse_fields(fields: dict) -> RequestOptions:
    """OpenAI's transcription fields, checked; the ones decoding ignores are still validated."""
    fmt = fields.get("response_format") or "json"
    if fmt not in RESPONSE_FORMATS:
        raise ApiError(400, f"response_format {fmt!r} is not one of {', '.join(RESPONSE_FORMATS)}",
                       param="response_format", code="invalid_value")
    granularities = frozenset(fields.get("timestamp_granularities[]", []))
    if granularities - set(GRANULARITIES):
        raise ApiError(400, f"timestamp_granularities must be among {', '.join(GRANULARITIES)}",
                       param="timestamp_granularities", code="invalid_value")
    if granularities and fmt != "verbose_json":
        raise ApiError(400, "timestamp_granularities needs response_format verbose_json",
                       param="timestamp_granularities", code="invalid_value")
    try:
        temperature = float(fields.get("temperature") or 0)
    except ValueError:
        raise ApiError(400, "temperature must be a number", param="temperature", code="invalid_value") from None
    if not 0 <= temperature <= 1:
        raise ApiError(400, "temperature must be between 0 and 1", param="temperature", code="invalid_value")
    return RequestOptions(fmt, granularities, stream=_flag(fields.get("stream")),
                          confidence=_flag(fields.get("x_asr_confidence")))


def hide_path(message: str, path: str) -> str:
    """An audio error without the server's temporary path in it."""
    return message.replace(path + ": ", "").replace(path, "the upload")


def invalid_audio(message: str, path: str) -> ApiError:
    return ApiError(400, f"could not read the audio: {hide_path(message, path)}", param="file", code="invalid_audio")


def probe(path: str) -> float:
    """Seconds of audio in the upload, or a 400 naming what is wrong with it."""
    try:
        with AudioFile(path) as f:
            if f.duration:
                return f.duration
            samples = sum(b.size for b in f.blocks())
    except AsrError as e:
        raise invalid_audio(str(e), path) from None
    if samples == 0:
        raise ApiError(400, "the audio holds no samples", param="file", code="invalid_audio")
    return samples / SAMPLE_RATE
