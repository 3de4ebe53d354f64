"""The ``s3`` backend: the fileStorage interface on one bucket of any S3-compatible store.

Boundary: this package alone imports boto3 (the registry loads it only when
``CONNECTOR_STORAGE=s3``, so other functions' cold starts never pay for it); the boto3
client and the error mapping live in ``client``. This module maps the
interface's folder tree onto keys ``<S3_PREFIX with {user}><path>``; a "folder" is a key
prefix ending in ``/`` (plus, optionally, a 0-byte marker object of that name, as consoles
create).

Trust model: S3 has no notion of the RDS user. The connector holds ONE credential for the
bucket and keeps users apart only by the prefix built from ``userId``, so it trusts its
callers (RDS Layer 2 inside the cluster) to name the user truthfully; anyone who can reach
the connector can name any user. The user name is percent-encoded into the prefix, so no
name can reach into another user's prefix.

Uploads stream: up to ``S3_PART_SIZE`` bytes are buffered (one part, never more); a file
that ends within the first part is one ``PutObject``, anything larger a multipart upload
that is aborted on any failure, so no partial object ever appears under the file's key.
"""

from __future__ import annotations

import base64
import logging
import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from common.backends.base import (
    Json,
    LoginFailed,
    StorageBase,
    check_listing_size,
    service_info,
    svg_icon,
)
from common.backends.s3.client import (
    FAILURES,
    NOT_FOUND,
    MiB,
    Part,
    etag,
    map_error,
    new_client,
    prepend,
    read_parts,
)
from common.config import Settings, int_setting, load_declared, setting
from common.errors import (
    BadRequest,
    ConfigError,
    Conflict,
    ConnectorError,
    NotFound,
    PayloadTooLarge,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from common.identity import Identity, check_user_name
from common.streams import CHUNK_SIZE, Download, Meter, Upload

log = logging.getLogger("rds.s3")

GiB = 1024 * MiB
MIN_PART = 5 * MiB  # S3's minimum for every part but the last
MAX_PART = 5 * GiB
MAX_PARTS = 10_000
COPY_LIMIT = 5 * GiB  # largest object one CopyObject may copy
DEFAULT_PREFIX = "users/{user}/"
_ICON_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    b'<path d="M2 4l6-3 6 3v8l-6 3-6-3z" fill="#c7512f"/></svg>'
)
S3_ICON = svg_icon(_ICON_SVG)


@dataclass(frozen=True)
class S3Settings:
    """The s3 backend's variables, all checked when it is built at start (the keys and the
    addressing style are read by ``new_client``)."""

    bucket: str = setting("S3_BUCKET", required=True)
    prefix: str = setting("S3_PREFIX", default=DEFAULT_PREFIX)
    endpoint: str | None = setting("S3_ENDPOINT_URL")


class S3Storage(StorageBase):
    """fileStorage interface on one bucket, each user under their own key prefix."""

    needs_token = False

    def __init__(
        self,
        client: Any,
        bucket: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        part_size: int = 8 * MiB,
        copy_limit: int = COPY_LIMIT,
        page_size: int = 1000,
        endpoint_url: str | None = None,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.part_size = part_size
        self.copy_limit = copy_limit
        self.page_size = page_size
        self.endpoint_url = endpoint_url

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Storage:
        """Read ``S3_*``; credentials from the settings or else boto3's own chain."""
        own = load_declared(S3Settings, settings)
        bucket, prefix, endpoint = own.bucket, own.prefix, own.endpoint
        if prefix.count("{user}") != 1 or prefix.startswith("/"):
            raise ConfigError(
                f"S3_PREFIX must contain {{user}} once and not start with '/', not {prefix!r}"
            )
        try:
            prefix.format(user="u")
        except (KeyError, IndexError, ValueError):
            raise ConfigError("S3_PREFIX may hold no placeholder but {user}") from None
        part_size = int_setting(settings, "S3_PART_SIZE", 8 * MiB, MIN_PART, MAX_PART, unit="bytes")
        client = new_client(settings, endpoint)
        return cls(client, bucket, prefix=prefix, part_size=part_size, endpoint_url=endpoint)

    # -- Backend -------------------------------------------------------------------------
    def login(self) -> None:
        """``HeadBucket``: the bucket exists and our credentials may use it."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except FAILURES as exc:
            raise LoginFailed(
                f"bucket {self.bucket!r} cannot be used: {map_error(exc, 'the bucket').detail}"
            ) from exc

    def registration_fields(self) -> Json:
        return {"credentials": {"userId": True, "password": False}}

    def service_info(self) -> Json:
        return service_info(
            "Object storage (S3)",
            "Files in an S3-compatible object store run by your institution.",
            "Dateien in einem S3-kompatiblen Objektspeicher Ihrer Einrichtung.",
            S3_ICON,
        )

    # -- keys ----------------------------------------------------------------------------
    def _base(self, who: Identity) -> str:
        """The user's key prefix (their root folder)."""
        return self.prefix.format(user=quote(check_user_name(who.user), safe="@+-_."))

    def _call(self, what: str, fn: Any, field: str = "filepath", **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except FAILURES as exc:
            raise map_error(exc, what, field) from exc

    def _pages(self, prefix: str, delimiter: str | None = None) -> Iterator[Json]:
        kwargs: Json = {"Bucket": self.bucket, "Prefix": prefix}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(**kwargs, PaginationConfig={"PageSize": self.page_size}):
                if page.get("Name") != self.bucket:  # S3 names the bucket in every listing
                    raise UpstreamError("the object store answered a listing that is not one")
                yield page
        except FAILURES as exc:
            raise map_error(exc, "the folder") from exc

    def _head(self, key: str) -> Json | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in NOT_FOUND:
                return None
            raise map_error(exc, "the file") from exc
        except (BotoCoreError, ResponseParserError) as exc:
            raise map_error(exc, "the file") from exc

    def _has_prefix(self, prefix: str) -> bool:
        resp = self._call(
            "the folder", self.client.list_objects_v2, Bucket=self.bucket, Prefix=prefix, MaxKeys=1
        )
        if resp.get("Name") != self.bucket:
            raise UpstreamError("the object store answered a listing that is not one")
        return bool(resp.get("KeyCount") or resp.get("Contents"))

    # -- Storage -------------------------------------------------------------------------
    def list_folder(self, who: Identity, path: str) -> list[str]:
        """Children of ``path`` (Delimiter '/'); a file lists as [], the root always exists."""
        base = self._base(who)
        folder_key = base + path + "/" if path else base
        names: list[tuple[str, bool]] = []
        seen_any = False
        for page in self._pages(folder_key, "/"):
            for common in page.get("CommonPrefixes", []):
                seen_any = True
                names.append((common["Prefix"][len(folder_key) : -1], True))
            for obj in page.get("Contents", []):
                seen_any = True
                if obj["Key"] != folder_key:  # the folder's own marker object
                    names.append((obj["Key"][len(folder_key) :], False))
        if not seen_any and path:
            if self._head(base + path) is not None:
                return []
            raise NotFound(f"nothing at /{path}", field="filepath")
        prefix = f"/{path}/" if path else "/"
        return [prefix + name + ("/" if folder else "") for name, folder in sorted(names)]

    def list_files(self, who: Identity, path: str, limit: int) -> list[str]:
        """Every object below ``path`` in one flat listing (no delimiter), relative to it;
        folder marker objects (keys ending in '/') are no files."""
        base = self._base(who)
        folder_key = base + path + "/" if path else base
        files: list[str] = []
        for page in self._pages(folder_key):
            for obj in page.get("Contents", []):
                if not obj["Key"].endswith("/"):
                    files.append(obj["Key"][len(folder_key) :])
                    check_listing_size(len(files), limit)
        if not files and path:
            self.list_folder(who, path)  # nothing there: the same 404 as a listing's
        return sorted(files)

    def _open(self, who: Identity, path: str, byte_range: str | None) -> Download:
        """``GetObject`` streamed in chunks; ``Range`` passed through (unsatisfiable: ignored)."""
        key = self._base(who) + path
        kwargs: Json = {"Bucket": self.bucket, "Key": key}
        if byte_range:
            kwargs["Range"] = byte_range
        try:
            resp = self.client.get_object(**kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code"))
            if code == "InvalidRange":
                return self._open(who, path, None)
            if code in NOT_FOUND and self._has_prefix(key + "/"):
                raise BadRequest(f"/{path} is a folder", field="filepath") from exc
            raise map_error(exc, f"/{path}") from exc
        except (BotoCoreError, ResponseParserError) as exc:
            raise map_error(exc, f"/{path}") from exc
        body = resp["Body"]
        content_range = resp.get("ContentRange")
        return Download(
            self._chunks(body, path),
            resp.get("ContentLength"),
            status=206 if content_range else 200,
            content_range=content_range,
            filename=posixpath.basename(path),
            close=body.close,
        )

    @staticmethod
    def _chunks(body: Any, path: str) -> Iterator[bytes]:
        try:
            yield from body.iter_chunks(CHUNK_SIZE)
        except (BotoCoreError, ResponseParserError) as exc:
            error = map_error(exc, f"/{path}")
            error.field = error.field or "filepath"  # the file named there did not arrive
            raise error from exc

    def _store(self, who: Identity, path: str, upload: Upload) -> Meter:
        """One PUT when the file fits in one part, else a multipart upload (aborted on failure)."""
        key = _fitting(self._base(who) + path, "filepath")
        if self._has_prefix(key + "/"):
            raise Conflict("a folder already has this path", field="filepath")
        meter = upload.meter(hinted=True)
        self._upload(key, path, upload.content_type, read_parts(meter, self.part_size))
        log.info("s3.stored size=%d md5=%s", meter.size, meter.md5)
        return meter

    def _upload(
        self, key: str, path: str, content_type: str, parts: Iterator[tuple[Part, bool]]
    ) -> None:
        first, last = next(parts)
        if last:
            self._put_one(key, path, content_type, first)
            return
        box = [(first, last)]
        del first
        self._multipart(key, path, content_type, prepend(box, parts))

    def _put_one(self, key: str, path: str, content_type: str, part: Part) -> None:
        """``PutObject`` with ``Content-MD5``; its answer must carry the object's ETag.

        When the answer is lost (reset, timeout, 5xx after botocore's retries) the object
        may still have arrived whole: S3 stores a PUT whole or not at all, and checked our
        Content-MD5. A HEAD whose ETag is our MD5 proves it, so that is a success; anything
        else stays the failure it was.
        """
        md5 = part.content_md5()
        try:
            answer = self._call(
                f"/{path}",
                self.client.put_object,
                Bucket=self.bucket,
                Key=key,
                Body=part,
                ContentMD5=md5,
                ContentType=content_type,
            )
        except (UpstreamUnavailable, UpstreamTimeout) as exc:
            if not self._arrived(key, md5):
                raise
            log.info("s3.put.recovered after=%s", exc.__class__.__name__)
            return
        if not answer.get("ETag"):
            raise UpstreamError("the object store did not confirm the upload (no ETag)")

    def _arrived(self, key: str, content_md5: str) -> bool:
        """Whether ``key`` holds exactly the bytes whose base64 MD5 is ``content_md5``."""
        try:
            head = self._head(key)
        except ConnectorError:
            return False
        etag = str((head or {}).get("ETag", "")).strip('"')
        return etag == base64.b64decode(content_md5).hex()

    def _multipart(
        self, key: str, path: str, content_type: str, parts: Iterator[tuple[Part, bool]]
    ) -> None:
        what = f"/{path}"

        def send(upload_id: str) -> list[Json]:
            done: list[Json] = []
            number = 0
            # no enumerate(): it caches its last result tuple, keeping the previous part
            # alive while the next one is read (two parts in memory instead of one)
            for part, _ in parts:
                number += 1  # noqa: SIM113 - see above
                if number > MAX_PARTS:
                    raise PayloadTooLarge(
                        f"the file needs more than {MAX_PARTS} parts of S3_PART_SIZE",
                        field="file",
                    )
                answer = self._call(
                    what,
                    self.client.upload_part,
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=part,
                    ContentMD5=part.content_md5(),
                )
                done.append({"PartNumber": number, "ETag": etag(answer)})
                del part  # before the next part is read: one part in memory, not two
            return done

        self._assemble(key, what, send, ContentType=content_type)

    def _assemble(
        self, key: str, what: str, send: Callable[[str], list[Json]], **create: Any
    ) -> None:
        """Create a multipart upload, ``send`` its parts, complete it; abort on any failure."""
        started = self._call(
            what, self.client.create_multipart_upload, Bucket=self.bucket, Key=key, **create
        )
        upload_id = started["UploadId"]
        try:
            done = send(upload_id)
            self._call(
                what,
                self.client.complete_multipart_upload,
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": done},
            )
        except BaseException:
            self._abort(key, upload_id)
            raise

    def _abort(self, key: str, upload_id: str) -> None:
        """Drop an unfinished multipart upload so no parts (nor object) remain."""
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except FAILURES:
            log.warning("s3.abort_failed (parts may remain until the bucket's lifecycle rule)")

    def _move(self, who: Identity, path: str, new_path: str) -> None:
        """Copy then delete (S3 has no rename); a folder moves key by key."""
        base = self._base(who)
        _fitting(base + new_path, "newfilepath")
        source = self._head(base + path)
        if source is not None:
            if self._head(base + new_path) is not None or self._has_prefix(base + new_path + "/"):
                raise Conflict(f"/{new_path} exists already", field="newfilepath")
            try:
                self._copy(base + path, base + new_path, source["ContentLength"])
            except ConnectorError:
                self._forget(base + new_path)
                raise
            self._call(f"/{path}", self.client.delete_object, Bucket=self.bucket, Key=base + path)
            return
        old_prefix, new_prefix = base + path + "/", base + new_path + "/"
        if not self._has_prefix(old_prefix):
            raise NotFound(f"nothing at /{path}", field="filepath")
        if self._has_prefix(new_prefix) or self._head(base + new_path) is not None:
            raise Conflict(f"/{new_path} exists already", field="newfilepath")
        try:
            for page in self._pages(old_prefix):
                for obj in page.get("Contents", []):
                    target = new_prefix + obj["Key"][len(old_prefix) :]
                    self._copy(obj["Key"], target, obj["Size"])
        except ConnectorError:
            self._forget(new_prefix, folder=True)
            raise
        self._delete_prefix(old_prefix)

    def _forget(self, key: str, *, folder: bool = False) -> None:
        """Best-effort removal of a failed move's copies (the target was checked absent, so
        nothing of the user's is lost): a failed move leaves the files where they were."""
        try:
            if folder:
                self._delete_prefix(key)
            else:
                self.client.delete_object(Bucket=self.bucket, Key=key)
        except (*FAILURES, ConnectorError):
            log.warning("s3.move.copy_left_behind (delete failed)")

    def _copy(self, key: str, target: str, size: int) -> None:
        """Server-side copy; above ``copy_limit`` (5 GiB) as a multipart copy."""
        source = {"Bucket": self.bucket, "Key": key}
        if size <= self.copy_limit:
            answer = self._call(
                "the file",
                self.client.copy_object,
                Bucket=self.bucket,
                Key=target,
                CopySource=source,
            )
            etag(answer.get("CopyObjectResult"))  # no proof of a copy: the source stays
            return
        part = max(self.part_size, -(-size // MAX_PARTS))
        ranges = (f"bytes={s}-{min(s + part, size) - 1}" for s in range(0, size, part))
        self._multipart_copy(target, source, ranges)

    def _multipart_copy(self, target: str, source: Json, ranges: Iterator[str]) -> None:
        def send(upload_id: str) -> list[Json]:
            done: list[Json] = []
            for number, byte_range in enumerate(ranges, start=1):
                answer = self._call(
                    "the file",
                    self.client.upload_part_copy,
                    Bucket=self.bucket,
                    Key=target,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource=source,
                    CopySourceRange=byte_range,
                )
                done.append({"PartNumber": number, "ETag": etag(answer.get("CopyPartResult"))})
            return done

        self._assemble(target, "the file", send)

    def _delete(self, who: Identity, path: str) -> None:
        """Delete the object at ``path`` and everything under ``path/`` (a folder)."""
        key = self._base(who) + path
        found = self._head(key) is not None
        if found:
            self._call(f"/{path}", self.client.delete_object, Bucket=self.bucket, Key=key)
        if not self._delete_prefix(key + "/") and not found:
            raise NotFound(f"nothing at /{path}", field="filepath")

    def _delete_prefix(self, prefix: str) -> int:
        """Delete every key under ``prefix`` in batches of 1000; returns how many."""
        count = 0
        for page in self._pages(prefix):
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if not keys:
                continue
            answer = self._call(
                "the folder",
                self.client.delete_objects,
                Bucket=self.bucket,
                Delete={"Objects": keys, "Quiet": True},
            )
            if answer.get("Errors"):
                raise UpstreamError(
                    f"the object store kept {len(answer['Errors'])} of the folder's files"
                )
            count += len(keys)
        return count


MAX_KEY_BYTES = 1024  # S3's limit on a key (KeyTooLongError above it)


def _fitting(key: str, field: str) -> str:
    """Refuse, as the caller's error, a path that with the user's prefix exceeds S3's limit."""
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise BadRequest(
            f"{field} is too long for the object store ({MAX_KEY_BYTES} bytes with the prefix)",
            field=field,
        )
    return key
