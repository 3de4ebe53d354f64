"""Passive transfer: the connector pulls a research folder from a fileStorage service.

The Exporter POSTs a plain form (``folder``, ``service``, ``username``, ``userId``) to
``/metadata/project/{id}/files``; no file bytes pass through that request, which is what
lets a per-function cloud deploy (32 MB bodies) move gigabytes. The folder is walked
(recursively) through the fileStorage interface of ``service`` -- over HTTP at
``PASSIVE_STORAGE_URL_TEMPLATE`` (default ``http://layer1-{service}``, the address RDS
callers build), or in-process when this deployment serves that storage itself -- and each
file is streamed into the project, its size known from the download's Content-Length.

Each file is reported with size, MD5 and status (stored, skipped, failed); one failure
does not stop the others, and the answer is a problem listing them when any failed (the
4xx every failure shares, else 502), because RDS Layer 2 treats every status below 300 as
success. A file already in the project with the same name, size and MD5 is skipped, so a
re-run resumes where one broke off.
Before any byte moves, the archive's optional ``check_batch`` sees the whole run (file
count; sizes are checked per file), so a run the record cannot hold is refused whole.
Like the Exporter, the storage is asked with the bare user first (it looks up the token
itself) and once more with a session-form userId when that is refused.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import requests

from common.backends.base import Archive
from common.bundle import CRATE, Bundle, Member, Plan, ZipBundle, plan, possible_outputs
from common.errors import (
    BadRequest,
    ConnectorError,
    Forbidden,
    TransferIncomplete,
    UpstreamError,
)
from common.identity import Identity
from common.passive_source import Source, StorageClient, walk
from common.paths import storage_path
from common.port_service import lookup_token
from common.streams import Download, Meter, Upload

if TYPE_CHECKING:  # the runtime builds PassiveSettings, so it is imported for types only
    from common.runtime import Runtime

log = logging.getLogger("rds.passive")
# An RDS service name that is also one DNS label (``layer1-<name>`` is a Kubernetes Service):
# no dots, so a forged name cannot point the pull at another namespace or host; matched
# whole (``fullmatch``: a trailing newline does not pass either).
SERVICE_RE = re.compile(r"port-[a-z0-9](?:[a-z0-9-]{0,54}[a-z0-9])?")


def _md5_of(download: Download) -> tuple[int, str]:
    meter = Meter(download.chunks, download.size)
    try:
        for _ in meter:
            pass
    finally:
        if download.close:
            download.close()
    return meter.size, meter.md5


def _transfer_one(
    archive: Archive,
    who: Identity,
    project_id: str,
    source: Source,
    path: str,
    name: str,
    existing: dict[str, Any],
) -> dict[str, Any]:
    entry: dict[str, Any] = {"filename": name, "source": path}
    try:
        download = source.open(path)
        if download.size is not None:  # so a failed file still says how big it was
            entry["size"] = download.size
        known = existing.get(name)
        if known is not None and download.size == known.get("size"):
            size, md5 = _md5_of(download)
            if f"md5:{md5}" == known.get("checksum"):
                return {**entry, "size": size, "md5": md5, "status": "skipped"}
            download = source.open(path)
        upload = Upload(name, download.chunks, size=download.size)
        try:
            stored = archive.store_file(who, project_id, upload)
        finally:
            if download.close:
                download.close()
        checksum = str(stored.get("checksum", ""))
        md5 = checksum.removeprefix("md5:")
        return {**entry, "size": stored.get("size"), "md5": md5, "status": "stored"}
    except ConnectorError as err:
        log.warning("passive.file_failed file=%s status=%d detail=%s", name, err.status, err.detail)
        return {**entry, "status": "failed", "error": err.detail, "errorStatus": err.status}
    except Exception as exc:
        log.warning(
            "passive.file_failed file=%s error=%s",
            name,
            exc.__class__.__name__,
            exc_info=not isinstance(exc, (requests.RequestException, OSError)),
        )
        return {
            **entry,
            "status": "failed",
            "error": f"transfer broke off ({exc.__class__.__name__})",
            "errorStatus": 502,
        }


def _source(runtime: Runtime, who: Identity, service: str, username: str) -> Source:
    settings = runtime.settings
    if service == settings.servicename and runtime.storage is not None:
        return Source(storage=runtime.storage, who=Identity(who.user, who.token, service))
    base = runtime.passive.storage_url_template.replace("{service}", service)

    def session_form() -> str:
        if not settings.port_service_url:
            return username
        token = lookup_token(runtime.session, settings.port_service_url, username, service)
        return f"{service}://{username}:{token}"

    client = StorageClient(
        base,
        username,
        service=service,
        session=runtime.session,
        timeout=(settings.connect_timeout, settings.read_timeout),
        session_user_id=session_form if settings.port_service_url else None,
    )
    return Source(client=client)


def _check_batch(
    archive: Archive, who: Identity, project_id: str, layout: Plan, sizes: dict[str, Any]
) -> None:
    """The archive's per-record limits for the whole run, before any byte moves.

    Loose files go with size ``None``: the fileStorage listing carries none, and probing
    every size first would cost one more request per file. Each loose file's size is still
    checked by the archive's ``store_file`` from the download's Content-Length before its
    first byte is sent. A bundle's size is known (its members were measured).
    """
    entries: list[tuple[str, int | None]] = [(name, None) for name in layout.loose]
    entries += [(b.name, sizes.get(b.name)) for b in layout.bundles]
    archive.check_batch(who, project_id, entries)


def _layout(archive: Archive, names: list[str], existing: dict[str, Any]) -> Plan:
    """Which folders to zip so the run fits the archive's file cap (``max_files``).

    The record's other files (neither a path of this run nor a bundle name it could make)
    take their slots first; files and bundles of an earlier run of the same folder are
    replaced or skipped, so they do not count twice. ``max_files`` counts the record's
    files besides its ``ro-crate-metadata.json`` (Zenodo keeps a slot for it), so the crate
    counts nowhere: neither among the others nor in this run.
    """
    cap = archive.max_files
    if cap is None:
        return Plan(tuple(names))
    ours = possible_outputs(names)
    others = sum(1 for name in existing if name not in ours and name != CRATE)
    return plan(names, max(cap - others, 0) + (CRATE in names))


def _measure(
    pool: ThreadPoolExecutor, source: Source, root: str, layout: Plan
) -> tuple[dict[str, Any], dict[str, ConnectorError]]:
    """Every bundled file's size (one ``Range: bytes=0-0`` request each) and each bundle's
    exact zip length; a file that could not be measured fails its bundle."""
    members = [m for b in layout.bundles for m in b.members]

    def probe(name: str) -> int | ConnectorError:
        try:
            size = source.size(f"{root}/{name}")
        except ConnectorError as err:
            return err
        except (requests.RequestException, OSError) as exc:
            return UpstreamError(
                f"the storage could not be asked for the size of {name!r} "
                f"({exc.__class__.__name__})",
                field="folder",
            )
        if size is None:
            return UpstreamError(
                f"the storage did not tell the size of {name!r}, which its zip needs",
                field="folder",
            )
        return size

    sizes: dict[str, Any] = dict(zip(members, pool.map(probe, members), strict=True))
    errors: dict[str, ConnectorError] = {}
    for bundle in layout.bundles:
        bad = next((sizes[m] for m in bundle.members if isinstance(sizes[m], ConnectorError)), None)
        if bad is not None:
            errors[bundle.name] = bad
            continue
        sizes[bundle.name] = len(_zip_of(source, root, bundle, sizes))
    log.info("passive.measured files=%d bundles=%d", len(members), len(layout.bundles))
    return sizes, errors


def _zip_of(source: Source, root: str, bundle: Bundle, sizes: dict[str, Any]) -> ZipBundle:
    def opener(path: str) -> Callable[[], tuple[Any, Any]]:
        def run() -> tuple[Any, Any]:
            download = source.open(path)
            return download.chunks, download.close

        return run

    return ZipBundle(
        [Member(bundle.entry(m), sizes[m], opener(f"{root}/{m}")) for m in bundle.members]
    )


def _transfer_bundle(
    archive: Archive,
    who: Identity,
    project_id: str,
    source: Source,
    root: str,
    bundle: Bundle,
    sizes: dict[str, Any],
    existing: dict[str, Any],
    error: ConnectorError | None,
) -> list[dict[str, Any]]:
    """One zip into the project; the report of the zip, then of each of its files."""
    head: dict[str, Any] = {"filename": bundle.name, "folder": bundle.folder or "/"}
    members: list[Member] = []
    try:
        if error is not None:
            raise error
        size = sizes[bundle.name]
        head["size"] = size
        zipped = _zip_of(source, root, bundle, sizes)
        members = zipped.members
        known = existing.get(bundle.name)
        if known is not None and known.get("size") == size:
            meter = Meter(zipped, size)
            for _ in meter:
                pass
            if f"md5:{meter.md5}" == known.get("checksum"):
                head.update(md5=meter.md5, status="skipped")
                return _bundle_report(head, bundle, root, sizes, members)
            zipped = _zip_of(source, root, bundle, sizes)
            members = zipped.members
        stored = archive.store_file(who, project_id, Upload(bundle.name, zipped, size=size))
        md5 = str(stored.get("checksum", "")).removeprefix("md5:")
        head.update(size=stored.get("size"), md5=md5, status="stored")
        log.info("passive.bundle.stored files=%d size=%d md5=%s", len(members), size, md5)
    except ConnectorError as err:
        log.warning("passive.bundle_failed status=%d detail=%s", err.status, err.detail)
        head.update(status="failed", error=err.detail, errorStatus=err.status)
    except Exception as exc:
        log.warning(
            "passive.bundle_failed error=%s",
            exc.__class__.__name__,
            exc_info=not isinstance(exc, (requests.RequestException, OSError)),
        )
        head.update(
            status="failed",
            error=f"transfer broke off ({exc.__class__.__name__})",
            errorStatus=502,
        )
    return _bundle_report(head, bundle, root, sizes, members)


def _bundle_report(
    head: dict[str, Any],
    bundle: Bundle,
    root: str,
    sizes: dict[str, Any],
    members: list[Member],
) -> list[dict[str, Any]]:
    md5s = {m.entry: m.md5 for m in members}
    rows = [head]
    for name in bundle.members:
        entry = bundle.entry(name)
        row: dict[str, Any] = {"filename": name, "source": f"{root}/{name}"}
        if isinstance(sizes.get(name), int):
            row["size"] = sizes[name]
        if md5s.get(entry):
            row["md5"] = md5s[entry]
        row.update(status=head["status"], bundle=bundle.name, entry=entry)
        if head["status"] == "failed":
            row.update(error=head["error"], errorStatus=head["errorStatus"])
        rows.append(row)
    return rows


def pull_folder(
    runtime: Runtime, archive: Archive, who: Identity, project_id: str, fields: Mapping[str, Any]
) -> dict[str, Any]:
    """Transfer ``fields['folder']`` of ``fields['service']`` into the project; the report
    of every file, or ``TransferIncomplete`` carrying it when any file failed."""
    service = str(fields.get("service") or "")
    if not SERVICE_RE.fullmatch(service):
        raise BadRequest("service must be an RDS service name like port-owncloud", field="service")
    allowed = runtime.passive.allowed_services
    if allowed and service not in allowed:
        raise Forbidden(f"{service} is not a storage this connector may pull from", field="service")
    # the Exporter strips the trailing '/', so the user's root arrives as ''
    raw_folder = fields.get("folder")
    folder = "/" + storage_path("/" if raw_folder in (None, "") else raw_folder, "folder")
    username = str(fields.get("username") or who.user)
    if username != who.user:
        raise Forbidden("username names another user than userId", field="username")
    source = _source(runtime, who, service, username)
    names = walk(source, folder, runtime.passive.max_files)
    root = folder.rstrip("/")
    existing = {f["filename"]: f for f in archive.list_files(who, project_id)}
    layout = _layout(archive, names, existing)
    with ThreadPoolExecutor(max_workers=runtime.passive.concurrency) as pool:
        sizes, errors = _measure(pool, source, root, layout)
        _check_batch(archive, who, project_id, layout, sizes)
        loose = pool.map(
            lambda name: _transfer_one(
                archive, who, project_id, source, f"{root}/{name}", name, existing
            ),
            layout.loose,
        )
        zipped = pool.map(
            lambda b: _transfer_bundle(
                archive, who, project_id, source, root, b, sizes, existing, errors.get(b.name)
            ),
            layout.bundles,
        )
        results = list(loose)
        bundles = []
        for rows in zipped:
            bundles.append(rows[0])
            results += rows[1:]
    order = {name: i for i, name in enumerate(names)}
    results.sort(key=lambda r: order[r["filename"]])  # the walk's order, as before bundling
    failed = [r["filename"] for r in results if r["status"] == "failed"]
    counts = {s: sum(r["status"] == s for r in results) for s in ("stored", "skipped", "failed")}
    log.info(
        "passive.done project=%s service=%s files=%d stored=%d skipped=%d failed=%d",
        project_id,
        service,
        len(results),
        counts["stored"],
        counts["skipped"],
        counts["failed"],
    )
    body = {
        "success": not failed,
        "files": results,
        "failed": failed,
        "counts": counts,
        "bundles": bundles,
    }
    if not failed:
        return body
    statuses = {r["errorStatus"] for r in results if r["status"] == "failed"}
    status = statuses.pop() if len(statuses) == 1 else 502
    raise TransferIncomplete(
        f"{len(failed)} of {len(results)} files failed: {', '.join(failed[:20])}",
        status=status if 400 <= status < 500 else 502,
        field="folder",
        extra=body,
    )
