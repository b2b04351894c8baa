"""The ``files`` source: folders and files on the machine the worker runs on.

A backup walks the configured paths in a fixed order and writes:

* ``content/NNNNNN`` streams: packs of small files, or one large file each
  (:mod:`strongroom.sources.files.content`);
* ``files.index``: one JSON line per entry with its metadata and, for a file, the stream,
  offset, size and SHA-256 of its bytes (:mod:`strongroom.sources.files.index`).

It returns the roots, counts, the tree digest, the SHA-256 of the index, skipped entries
and the files that changed while they were read. Walk rules and patterns:
:mod:`strongroom.sources.files.walk`; the unchanged-file cache:
:mod:`strongroom.sources.files.cache`; restore safety: :mod:`strongroom.sources.files.restore`.
See ``docs/sources/files.md``.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Final

from strongroom.config.resources import FilesResource
from strongroom.errors import (
    AccessDeniedError,
    ChangedMeanwhileError,
    ConfigError,
    ConflictError,
    InsufficientStorageError,
    IntegrityError,
    StrongroomError,
)
from strongroom.sources.base import (
    BackupResult,
    Check,
    Description,
    JsonObject,
    RestoreReport,
    SourceContext,
    StreamReader,
    StreamSink,
    erasure_test,
    iter_stream,
)
from strongroom.sources.erasure import apply_paths
from strongroom.sources.files.cache import FileCache, ReusingSink
from strongroom.sources.files.check import Comparison, restored_records, unlock_and_remove
from strongroom.sources.files.content import BLOCK_SIZE, ContentWriter
from strongroom.sources.files.index import (
    FORMAT,
    INDEX_STREAM,
    VERSION,
    TreeDigest,
    dump_line,
    entry_lines,
    header,
    read_index,
)
from strongroom.sources.files.restore import Outcome, Placement, Restorer
from strongroom.sources.files.target import FilesRestoreTarget
from strongroom.sources.files.walk import Walker, XattrReader, compile_patterns, record_of
from strongroom.sources.targets import parse_target

_MAX_LISTED: Final = 1000
_FAILURES_SHOWN: Final = 10


def os_error(exc: OSError, doing: str) -> StrongroomError:
    """Translate an ``OSError`` into the error tree."""
    message = f"{doing}: {exc.strerror or exc} ({exc.filename or ''})"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return InsufficientStorageError(message)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return AccessDeniedError(message)
    return StrongroomError(message)


def _normalise_roots(paths: list[str]) -> list[str]:
    roots = sorted({os.path.normpath(path) for path in paths}, key=os.fsencode)
    for root in roots:
        for other in roots:
            if root != other and (other == "/" or root.startswith(other + "/")):
                raise ConfigError(f"paths: {root!r} lies inside {other!r}; list only one of them")
    return roots


class FilesSource:
    """Backs up and restores files and folders; see the module docstring.

    Given the resource settings, an optional ``cache_path`` (the SQLite file of the
    unchanged-file cache; None keeps no cache) and ``strict`` (fail the backup when a file
    changes while it is read, instead of listing it). Raises ``ConfigError`` for
    overlapping paths or unsupported patterns.
    """

    type_name: ClassVar[str] = "files"

    def __init__(
        self, settings: FilesResource, *, cache_path: Path | None = None, strict: bool = False
    ) -> None:
        self.settings = settings
        self.roots = _normalise_roots(list(settings.paths))
        self._include = compile_patterns(settings.include, "include")
        self._exclude = compile_patterns(settings.exclude, "exclude")
        self.cache_path = cache_path
        self.strict = strict

    def describe(self, context: SourceContext) -> Description:
        """Name the paths a backup covers (no external tool is used)."""
        return Description(
            summary=f"files and folders under {len(self.roots)} path(s)",
            parts=list(self.roots),
        )

    def _walker(
        self, skip: Callable[[str, str], None], xattrs: XattrReader | None = None
    ) -> Walker:
        return Walker(
            roots=[root for root in self.roots if os.path.lexists(root)],
            skip=skip,
            include=self._include,
            exclude=self._exclude,
            follow_symlinks=self.settings.follow_symlinks,
            one_file_system=self.settings.one_file_system,
            file_xattrs=False,  # the content writer reads them, or takes them from the cache
            xattr_reader=xattrs,
        )

    def backup(self, context: SourceContext, sink: StreamSink) -> BackupResult:
        """Walk the paths, write content streams and ``files.index``, return the metadata.

        A missing path is a failed part (a partial backup); entries that vanish or cannot
        be read are listed under ``skipped``. Raises ``ChangedMeanwhileError`` (retryable) when
        ``strict`` and a file changed while it was read.
        """
        skipped: list[JsonObject] = []
        skipped_count = 0

        def skip(path: str, reason: str) -> None:
            nonlocal skipped_count
            skipped_count += 1
            if len(skipped) < _MAX_LISTED:
                skipped.append({"path": path, "reason": reason})

        failed = {root: "does not exist" for root in self.roots if not os.path.lexists(root)}
        if context.dry_run:
            return self._dry_run(skip, skipped, failed)
        use_cache = self.cache_path is not None and isinstance(sink, ReusingSink)
        cache = FileCache(self.cache_path) if use_cache and self.cache_path else None
        index_path = context.scratch / f"files-index-{secrets.token_hex(6)}.jsonl"
        digest = TreeDigest()
        try:
            with index_path.open("wb") as handle:
                handle.write(dump_line(header(self.roots)))

                def emit(record: dict[str, object]) -> None:
                    line, digested = entry_lines(record)
                    handle.write(line)
                    digest.add(record, line=digested)

                xattrs = XattrReader(skip)
                writer = ContentWriter(
                    sink,
                    context,
                    emit,
                    skip,
                    cache=cache,
                    follow_symlinks=self.settings.follow_symlinks,
                    xattrs=xattrs,
                )
                for item in self._walker(skip, xattrs).walk():
                    writer.add(item)
                writer.finish()
            index_sha256 = _upload(index_path, sink)
            if self.strict and writer.changed:
                raise ChangedMeanwhileError(
                    f"{len(writer.changed)} file(s) changed while being read, e.g. "
                    + ", ".join(writer.changed[:5]),
                    hint="Back up when the files are quiet, or turn strict off.",
                )
        except BaseException as exc:
            if cache is not None:
                cache.rollback()
            if isinstance(exc, OSError):
                raise os_error(exc, "files backup failed") from exc
            raise
        finally:
            index_path.unlink(missing_ok=True)
        if cache is not None:
            cache.commit()
        metadata: JsonObject = {
            "format": FORMAT,
            "version": VERSION,
            "roots": self.roots,
            "index_stream": INDEX_STREAM,
            "index_sha256": index_sha256,
            "counts": digest.counts,
            "tree_digest": digest.hexdigest(),
            "skipped": skipped,
            "skipped_count": skipped_count,
            "changed_during_backup": writer.changed[:_MAX_LISTED],
            "changed_count": len(writer.changed),
            "cache": {
                "used": cache is not None,
                "reused_streams": writer.reused_streams,
                "bytes_read": writer.bytes_read,
            },
        }
        return BackupResult(metadata=metadata, failed_parts=failed)

    def _dry_run(
        self,
        skip: Callable[[str, str], None],
        skipped: list[JsonObject],
        failed: dict[str, str],
    ) -> BackupResult:
        """Walk without reading or writing anything: what a backup would cover."""
        counts = TreeDigest()
        for item in self._walker(skip).walk():
            size = item.stat.st_size if item.kind == "file" else None
            counts.add(record_of(item, size=size))
        metadata: JsonObject = {"dry_run": True, "roots": self.roots, "counts": counts.counts}
        metadata["skipped"] = skipped
        return BackupResult(metadata=metadata, failed_parts=failed)

    def restore(
        self,
        context: SourceContext,
        reader: StreamReader,
        metadata: JsonObject,
        target: JsonObject,
    ) -> RestoreReport:
        """Restore into ``target`` (see :class:`FilesRestoreTarget`).

        Raises ``ConfigError`` for a bad target, ``IntegrityError`` for an index that does
        not match its recorded SHA-256 or holds an unsafe entry, ``ConflictError`` when
        something is in the way (nothing is written in those cases). Damaged files are not
        written and are reported as failed checks.
        """
        options = parse_target(FilesRestoreTarget, target, self.type_name)
        if options.path is not None:
            placement = Placement(folder=os.path.normpath(options.path))
            shown = options.path
        else:
            placement = Placement(folder=None, roots=tuple(metadata.get("roots", ())))
            shown = "original paths"
        owner = options.owner if options.owner is not None else os.geteuid() == 0
        restorer = Restorer(
            reader,
            placement,
            overwrite=options.overwrite,
            owner=owner,
            only=tuple(options.only),
            check_cancelled=context.check_cancelled,
        )
        index_path = context.scratch / f"files-index-{secrets.token_hex(6)}.jsonl"
        try:
            index_sha256 = _download(reader, index_path)
            recorded = metadata.get("index_sha256")
            if recorded is not None and recorded != index_sha256:
                raise IntegrityError(
                    f"{INDEX_STREAM} does not match the SHA-256 recorded at backup time"
                )
            outcome = _run(restorer, index_path, dry_run=context.dry_run)
        except OSError as exc:
            raise os_error(exc, "files restore failed") from exc
        finally:
            index_path.unlink(missing_ok=True)
        report = RestoreReport(target=shown, notes=list(outcome.notes))
        report.checks.extend(_outcome_checks(outcome))
        if not context.dry_run:
            roots = _restored_roots(options.path, metadata)
            report.erasures.extend(apply_paths(roots, context.erasures, target=shown))
        return report

    def restore_test(
        self, context: SourceContext, reader: StreamReader, metadata: JsonObject
    ) -> RestoreReport:
        """Restore into a scratch folder, compare with the index and metadata, remove it."""
        folder = context.scratch / f"files-restore-test-{secrets.token_hex(6)}"
        report = RestoreReport(target=str(folder))
        with_owner = os.geteuid() == 0
        index_path = context.scratch / f"files-index-{secrets.token_hex(6)}.jsonl"
        try:
            index_sha256 = _download(reader, index_path)
            report.checks.append(Check("index sha256", metadata.get("index_sha256"), index_sha256))
            if not report.ok:
                return report
            placement = Placement(folder=str(folder))
            restorer = Restorer(
                reader,
                placement,
                owner=with_owner,
                durable=False,
                check_cancelled=context.check_cancelled,
            )
            try:
                outcome = _run(restorer, index_path, dry_run=False)
            except (IntegrityError, ConflictError) as exc:
                report.checks.append(Check("index is safe to restore", "safe", str(exc)))
                return report
            report.checks.extend(_outcome_checks(outcome))
            report.notes.extend(outcome.notes)
            self._compare(index_path, folder, metadata, report, with_owner=with_owner)
            roots = _restored_roots(str(folder), metadata)
            checks, report.erasures = erasure_test(
                "files",
                lambda: apply_paths(roots, context.erasures, target=str(folder)),
            )
            report.checks.extend(checks)
        except OSError as exc:
            raise os_error(exc, "files restore test failed") from exc
        finally:
            index_path.unlink(missing_ok=True)
            unlock_and_remove(folder)
        return report

    @staticmethod
    def _compare(
        index_path: Path,
        folder: Path,
        metadata: JsonObject,
        report: RestoreReport,
        *,
        with_owner: bool,
    ) -> None:
        comparison = Comparison(with_owner=with_owner)
        with index_path.open("rb") as handle:
            roots, entries = read_index(handle)
            recorded = (entry.record() for entry in entries)
            comparison.run(recorded, restored_records(folder, roots, report.notes))
        report.checks.extend(comparison.checks())
        counts = metadata.get("counts") or {}
        for name, found in comparison.restored.counts.items():
            report.checks.append(Check(f"count of {name}", counts.get(name), found))
        if with_owner:
            report.checks.append(
                Check("tree digest", metadata.get("tree_digest"), comparison.restored.hexdigest())
            )
        else:
            report.notes.append("not running as root: owners are not compared")
            report.checks.append(
                Check(
                    "tree digest without owners",
                    comparison.recorded.hexdigest(),
                    comparison.restored.hexdigest(),
                )
            )


def _run(restorer: Restorer, index_path: Path, *, dry_run: bool) -> Outcome:
    """Check the whole index, then (unless a dry run) restore it."""
    with index_path.open("rb") as handle:
        restorer.check(read_index(handle)[1])
    if dry_run:
        restorer.outcome.note(f"dry run: {restorer.outcome.selected} entries would be restored")
        return restorer.outcome
    with index_path.open("rb") as handle:
        return restorer.restore(read_index(handle)[1])


def _outcome_checks(outcome: Outcome) -> list[Check]:
    checks = [Check("entries restored", outcome.selected, outcome.restored)]
    for path, reason in list(outcome.failures.items())[:_FAILURES_SHOWN]:
        checks.append(Check(f"restore of {path}", "restored", reason))
    return checks


def _upload(path: Path, sink: StreamSink) -> str:
    """Copy the index file into the sink; return its SHA-256 (hex)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle, sink.open_stream(INDEX_STREAM) as stream:
        while block := handle.read(BLOCK_SIZE):
            stream.write(block)
            digest.update(block)
    return digest.hexdigest()


def _download(reader: StreamReader, path: Path) -> str:
    """Copy the index stream into ``path``; return its SHA-256 (hex)."""
    digest = hashlib.sha256()
    with reader.open_stream(INDEX_STREAM) as stream, path.open("wb") as handle:
        for block in iter_stream(stream, BLOCK_SIZE):
            handle.write(block)
            digest.update(block)
    return digest.hexdigest()


def _restored_roots(folder: str | None, metadata: JsonObject) -> list[Path]:
    """Where a restore put each backed-up root: below ``folder`` (as ``folder/home/ada``)
    or, without one, back in its original place."""
    roots = [str(root) for root in metadata.get("roots", ())]
    if folder is None:
        return [Path(root) for root in roots]
    return [Path(folder) / root.lstrip("/") for root in roots]
