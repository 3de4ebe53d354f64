"""The S3 side of the ``s3`` backend: the boto3 client, botocore's failures as our errors,
and ``Part``, the upload body botocore reads.

Boundary: this module and ``storage`` alone import boto3 (the registry loads the backend
only when ``CONNECTOR_STORAGE=s3``, so other functions' cold starts never pay for it).
botocore errors become ``common.errors`` exceptions here (``map_error``) and nowhere else.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import io
from collections.abc import Iterator
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.parsers import ResponseParserError

from common import outside
from common.config import Settings, choice_setting, text_setting
from common.errors import (
    ConfigError,
    ConnectorError,
    Forbidden,
    InsufficientStorage,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from common.upstream import ASKED, Upstream

MiB = 1024 * 1024

# What a call can raise: ResponseParserError (an answer that is not S3's XML) is no
# BotoCoreError, so it needs naming or it escapes as a bare 500.
FAILURES = (BotoCoreError, ClientError, ResponseParserError)
NOT_FOUND = {"NoSuchKey", "404", "NotFound", "NoSuchUpload"}
_FORBIDDEN = {"AccessDenied", "403", "AllAccessDisabled", "AccountProblem"}
_BUSY = {"SlowDown", "503", "ServiceUnavailable", "RequestTimeout", "InternalError", "500"}
# S3's error codes as the HTTP statuses they stand for; the status -> error step is the
# shared table of common.upstream
_CODES = {
    **dict.fromkeys(NOT_FOUND, 404),
    **dict.fromkeys(_FORBIDDEN, 403),
    **dict.fromkeys(_BUSY, 503),
    "EntityTooLarge": 413,
    "413": 413,
    "QuotaExceeded": 507,
    "507": 507,
    "TooManyRequests": 429,
    "429": 429,
}
STORE = Upstream(
    {
        NotFound: ("nothing at {what}", ASKED),
        Forbidden: ("the object store forbids this on {what}", ASKED),
        PayloadTooLarge: ("the object store refuses a file this large", "file"),
        InsufficientStorage: ("the object store's quota is exhausted", None),
        TooManyRequests: ("the object store asks to slow down", None),
        UpstreamUnavailable: ("the object store is unavailable ({label})", None),
        UpstreamTimeout: ("the object store's gateway timed out (504)", None),
    },
    "the object store answered {code} for {what}",
)


def map_error(exc: Exception, what: str, field: str = "filepath") -> ConnectorError:
    """The ``ConnectorError`` for a botocore exception (the caller raises it ``from exc``)."""
    if isinstance(exc, (ConnectTimeoutError, ReadTimeoutError)):
        return UpstreamTimeout("the object store did not answer in time")
    if isinstance(exc, EndpointConnectionError):
        return UpstreamUnavailable("the object store cannot be reached")
    if isinstance(exc, NoCredentialsError):
        return UpstreamError("the connector has no credentials for the object store")
    if isinstance(exc, ResponseParserError):
        return UpstreamError("the object store answered something that is not S3's XML")
    if not isinstance(exc, ClientError):
        return UpstreamUnavailable(f"the object store failed ({exc.__class__.__name__})")
    code = str(exc.response.get("Error", {}).get("Code", ""))
    if code == "NoSuchBucket":
        return UpstreamError("the configured bucket does not exist")
    if code in ("InvalidDigest", "BadDigest"):
        return UpstreamError("the object store received other bytes than were sent")
    meta = exc.response.get("ResponseMetadata", {})
    status = _CODES.get(code) or meta.get("HTTPStatusCode")
    if code not in _CODES and status not in (502, 503, 504):
        status = 500  # an S3 error code we have no meaning for: the store's failure
    hint = meta.get("HTTPHeaders", {}).get("retry-after")
    return STORE.error(
        status,
        what=what,
        field=field,
        headers={"Retry-After": hint} if hint else None,
        code=code or "an error",
        label=code if code in _CODES else status,
    )


class Part(io.RawIOBase):
    """One part as the chunks that arrived: a seekable file for botocore, never joined.

    botocore reads a body in blocks (to sign it, to send it, again on a retry), so the
    chunks are kept as they came instead of being copied into one buffer: a part costs
    its own bytes once, not twice while a growing buffer reallocates.
    """

    def __init__(self) -> None:
        super().__init__()
        self._chunks: list[bytes] = []
        self._starts: list[int] = []
        self.size = 0
        self._pos = 0
        self._md5 = hashlib.md5(usedforsecurity=False)

    def append(self, chunk: bytes) -> None:
        self._starts.append(self.size)
        self._chunks.append(chunk)
        self.size += len(chunk)
        self._md5.update(chunk)

    def content_md5(self) -> str:
        """Base64 MD5 for ``Content-MD5``: the store checks the part it received."""
        return base64.b64encode(self._md5.digest()).decode("ascii")

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        written = 0
        index = bisect.bisect_right(self._starts, self._pos) - 1
        while written < len(view) and self._pos < self.size and index < len(self._chunks):
            chunk = self._chunks[index]
            offset = self._pos - self._starts[index]
            take = min(len(chunk) - offset, len(view) - written)
            view[written : written + take] = chunk[offset : offset + take]
            written += take
            self._pos += take
            index += 1
        return written

    def __len__(self) -> int:
        return self.size


def read_parts(chunks: Any, part_size: int) -> Iterator[tuple[Part, bool]]:
    """Regroup ``chunks`` into parts of at least ``part_size`` bytes, each with "is last".

    One chunk is read ahead so the first part already knows whether it is the whole file.
    A part is built only after the caller dropped the previous one (see ``_multipart``),
    so one part plus one chunk is all that is ever held.
    """
    it = iter(chunks)
    pending = next(it, None)
    while True:
        part = Part()
        while pending is not None and part.size < part_size:
            part.append(pending)
            pending = next(it, None)
        yield part, pending is None
        if pending is None:
            return


def etag(answer: Any) -> str:
    """The ETag of an upload or copy answer; without one nothing proves the bytes arrived."""
    etag = answer.get("ETag") if isinstance(answer, dict) else None
    if not etag:
        raise UpstreamError("the object store did not confirm the write (no ETag)")
    return str(etag)


def prepend(box: list[Any], rest: Iterator[Any]) -> Iterator[Any]:
    """``box``'s one item, then ``rest``; popping it keeps no second reference alive."""
    yield box.pop()
    yield from rest


def new_client(settings: Settings, endpoint: str | None) -> Any:
    """A boto3 S3 client from ``S3_*`` (keys from the settings or else boto3's own chain)."""
    key_id = text_setting(settings, "S3_ACCESS_KEY_ID")
    secret = text_setting(settings, "S3_SECRET_ACCESS_KEY")
    if bool(key_id) != bool(secret):
        missing = "S3_SECRET_ACCESS_KEY" if key_id else "S3_ACCESS_KEY_ID"
        raise ConfigError(f"{missing} is required when the other S3 key is set")
    style = choice_setting(settings, "S3_ADDRESSING_STYLE", ("auto", "path", "virtual"), "auto")
    config = Config(
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        retries={"max_attempts": 3, "mode": "standard"},
        s3={"addressing_style": style},
        # S3-compatible stores (Ceph RGW, older MinIO) reject the CRC headers newer
        # botocore adds by default; we send Content-MD5 ourselves instead.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=text_setting(settings, "S3_REGION"),
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        verify=settings.verify_ssl,
        config=config,
    )
    outside.watch_boto(client, "s3")
    return client
