"""The error tree: retryable flags, hints, the seed's error names, the drawing, raise sites."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import strongroom
from strongroom import errors

PACKAGE = Path(strongroom.__file__).parent


def tree_classes() -> list[type[errors.StrongroomError]]:
    """Every class of the tree, as errors.py defines it."""
    return [
        value
        for value in vars(errors).values()
        if isinstance(value, type)
        and issubclass(value, errors.StrongroomError)
        and value.__module__ == errors.__name__
    ]


@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        ("ThrottlingException", True),
        ("ServiceUnavailableException", True),
        ("InternalServerError", True),
        ("RequestTimeout", True),
        ("NetworkError", True),
        ("InvalidParameterException", False),
        ("ResourceNotFoundException", False),
        ("AccessDeniedException", False),
        ("InsufficientStorageException", False),
    ],
)
def test_seed_error_codes_map_to_the_seed_retry_classes(code: str, retryable: bool) -> None:
    error = errors.SEED_ERROR_CODES[code]("boom")
    assert error.retryable is retryable
    assert errors.is_retryable(error) is retryable


def test_every_error_class_has_a_distinct_code_and_nonzero_exit() -> None:
    classes = tree_classes()
    codes = [cls.code for cls in classes]
    assert len(codes) == len(set(codes))
    assert all(cls.exit_code != 0 for cls in classes)


def test_instance_can_override_retryable_and_hint() -> None:
    error = errors.BusyError("held", retryable=False, hint="stop the other one")
    assert not errors.is_retryable(error)
    assert error.hint == "stop the other one"
    assert str(error) == "held"


def test_wrong_key_is_access_denied_and_not_retryable() -> None:
    error = errors.WrongKeyError("no key slot opens")
    assert isinstance(error, errors.AccessDeniedError)
    assert not error.retryable
    assert "nothing was written" in error.hint


def test_foreign_exceptions_are_never_retried() -> None:
    assert not errors.is_retryable(OSError("disk"))


def test_a_conflict_is_not_retryable_but_held_or_changed_meanwhile_is() -> None:
    assert not errors.ConflictError("the target exists").retryable
    assert not errors.IllegalTransitionError("FAILED -> RUNNING").retryable
    busy = errors.BusyError("the vault is locked by gc")
    changed = errors.ChangedMeanwhileError("the job moved on")
    assert isinstance(busy, errors.ConflictError) and busy.retryable
    assert isinstance(changed, errors.ConflictError) and changed.retryable
    assert busy.exit_code == changed.exit_code == errors.ConflictError.exit_code


# --- the drawing in the docstring ---------------------------------------------------------

_DRAWN = re.compile(r"^    (?P<tree>[│├└─ ]*)(?P<name>[A-Za-z_]+)\s+(?P<mark>\[R\])?")


def drawing() -> dict[str, tuple[str | None, bool]]:
    """Parse the docstring's drawing: class name -> (parent name, marked retryable)."""
    doc = errors.__doc__ or ""
    block = doc.split("::\n\n", 1)[1].split("\n\n", 1)[0]
    drawn: dict[str, tuple[str | None, bool]] = {}
    parents: list[str] = []
    for line in block.splitlines():
        match = _DRAWN.match(line)
        assert match is not None, f"a drawing line that does not parse: {line!r}"
        depth = len(match["tree"]) // 4
        del parents[depth:]
        name = match["name"]
        assert name not in drawn, f"{name} is drawn twice"
        drawn[name] = (parents[-1] if parents else None, match["mark"] is not None)
        parents.append(name)
    return drawn


def test_the_drawing_parser_reads_nesting_and_marks() -> None:
    drawn = drawing()
    assert drawn["StrongroomError"] == (None, False)
    assert drawn["SecretError"] == ("ConfigError", False)
    assert drawn["ThrottlingError"] == ("TransientError", True)
    assert drawn["BusyError"] == ("ConflictError", True)


def test_every_class_of_the_tree_is_drawn_under_its_parent_with_its_retryable_mark() -> None:
    drawn = drawing()
    classes = {cls.__name__: cls for cls in tree_classes()}
    assert set(drawn) == set(classes)
    for name, cls in classes.items():
        parent = cls.__bases__[0].__name__ if cls is not errors.StrongroomError else None
        assert drawn[name] == (parent, cls.default_retryable), name


# --- where errors are defined and raised ---------------------------------------------------

INTERNAL_SIGNALS = {
    # Control flow inside one module, caught there; never reaches a caller.
    "_ReadFailed",  # a file that cannot be read becomes a "skipped" entry of the backup
    "_ToolGone",  # the tool stopped reading its stdin: the feeder stops, the tool's exit says why
    "XattrUnsupportedError",  # an OSError: a file system without xattrs is read without them
    # An API server's error answer inside sources/kubernetes, where restore and restore test
    # read its status (409: exists, 404: gone); what leaves the source is translated.
    "KubeError",
    # The web console's "no live session": its handler sends the browser to the login page.
    "LoginRequired",
}


def modules() -> list[tuple[str, ast.Module]]:
    """Every module of the package, by path under it, parsed."""
    return [
        (str(path.relative_to(PACKAGE)), ast.parse(path.read_text(encoding="utf-8")))
        for path in sorted(PACKAGE.rglob("*.py"))
    ]


def test_every_exception_class_is_defined_in_errors_py() -> None:
    outside = {
        f"{module}: {node.name}"
        for module, tree in modules()
        if module != "errors.py"
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        and any(re.search(r"(Exception|Error)$", ast.unparse(base)) for base in node.bases)
        and node.name not in INTERNAL_SIGNALS
    }
    assert outside == set()


CONFLICT_FAMILY = {
    cls.__name__: cls for cls in tree_classes() if issubclass(cls, errors.ConflictError)
}

# Every place the package builds an error of the ConflictError family, by class and the
# start of its message, with whether it is retryable. When ConflictError stopped being
# retryable by default each of these kept its behaviour: the races became
# ChangedMeanwhileError, the holders BusyError, the rest plain ConflictError.
CONFLICT_SITES: set[tuple[str, str, bool]] = {
    ("ConflictError", "erasure request {request.id} is {request.state}, not open", False),
    ("ConflictError", "erasure request prefix {request_id!r} is ambiguous", False),
    ("ConflictError", "the audit trail is empty: nothing to anchor", False),
    ("BusyError", "a backup of {resource!r} is already {other.state.value}: ", True),
    ("BusyError", "another daemon schedules this catalog: {self.leadership.d", False),
    ("BusyError", "another {('lease' if holding.kind == 'exclusive' else 'ex", True),
    ("BusyError", "message", True),  # sources/sqlite: a writer holds the database's lock
    ("BusyError", "the files cache {path} is in use by another backup", True),
    ("BusyError", "the vault is busy: {'; '.join(conflicts)}", True),
    ("ChangedMeanwhileError", "gc stopped: index fragment {name} vanished during GC", True),
    ("ChangedMeanwhileError", "job {job_id} is {current.state} (attempt {current.attempt", True),
    ("ChangedMeanwhileError", "job {job_id} kept changing while being cancelled; try aga", True),
    ("ChangedMeanwhileError", "lost the vault lease: {holding.lost}", True),
    ("ChangedMeanwhileError", "the catalog changed while apply prepared the vault stores", True),
    ("ChangedMeanwhileError", "the store did not list lease object {name} after {VISIBIL", True),
    ("ChangedMeanwhileError", "this vault lease was released", True),
    ("ChangedMeanwhileError", "{destination} appeared meanwhile", True),
    ("ChangedMeanwhileError", "{len(writer.changed)} file(s) changed while being read, e", True),
    # sources/kubernetes: a list whose continue token kept expiring (410); the job retries
    ("ChangedMeanwhileError", "{doing} on {api.address}: the list expired {RELISTS + 1} ", True),
    ("ConflictError", "API token {row.id} was revoked on {row.revoked_at:%Y-%m-%", False),
    ("ConflictError", "blob name {name!r} is already a folder of other blobs", False),
    ("ConflictError", "blob name {name!r} lies under the existing blob {folder!r", False),
    ("ConflictError", "blob name {name!r} overlaps {path} in {self.url}: a name ", False),
    ("ConflictError", "blob {name!r} already exists in {self.url}", False),
    ("ConflictError", "blob {name!r} already exists", False),
    ("ConflictError", "database(s) already exist on {self.server.address}: {', '", False),
    ("ConflictError", "database(s) already exist on {server.address}: {', '.join", False),
    ("ConflictError", "key file {path} already exists", False),
    ("ConflictError", "message", False),  # an S3 answer: exists, a precondition, a folder
    ("ConflictError", "recovery point prefix {point_id!r} is ambiguous", False),
    ("ConflictError", "recovery point {point_id} is already recorded", False),
    ("ConflictError", "refusing to replace {'/'.join(parts)!r} with a folder", False),
    ("ConflictError", "text", False),  # sources/kubernetes: an API server's 409 answer
    ("ConflictError", "refusing to replace {path!r}: it is a folder", False),
    ("ConflictError", "refusing to restore through {shown!r}: it is a symlink or", False),
    ("ConflictError", "refusing to restore {destination}: {destination}{end} exi", False),
    ("ConflictError", "the catalog refused the change: {_reason(error)}", False),
    ("ConflictError", "{destination} already exists", False),
    ("ConflictError", "{doing}: key {key} appeared on the target during the rest", False),
    ("ConflictError", "{doing}: {text}", False),
    ("ConflictError", "{final} exists; nothing was written", False),
    ("ConflictError", "{len(conflicts)} path(s) already exist in the target (or ", False),
    ("ConflictError", "{live.address} already has the function libraries {', '.j", False),
    ("ConflictError", "{name!r} appeared in the target meanwhile", False),
    # sources/kafka: a restore refused before it writes (group active, target topic
    # with fewer partitions or foreign records, a group subscribed to a topic, an
    # incremental point whose earlier points are not restored).
    ("ConflictError", "consumer group {group} is active ({len(description.member", False),
    ("ConflictError", "topic {name} has {len(existing.partitions)} partition(s);", False),
    ("ConflictError", "topic {topic} partition {partition} already holds {high -", False),
    ("ConflictError", "{doing}: {candidate.str()}", False),
    ("ConflictError", "{topic}/{partition}: this point continues point {after.po", False),
    # services/reports/signing: a report signing key is never overwritten.
    ("ConflictError", "a signing key exists at {key_path}", False),
    ("ConflictError", "{source}: plan {', '.join(map(repr, existing))} already e", False),
    ("ConflictError", "{store.url} already holds a vault", False),
    ("ConflictError", "{where} already holds {found} of the keys to restore (e.g", False),
    ("IllegalTransitionError", "a job cannot go from {from_state}{final} to {to_state}", False),
    ("IllegalTransitionError", "job {job_id} already ended: {job.state}", False),
    ("IllegalTransitionError", "job {job_id} can only start RUNNING through a claim, whic", False),
    ("IllegalTransitionError", "job {job_id} used all {job.max_attempts} attempts; it can", False),
    ("IllegalTransitionError", "this job does not allow partial results; it can complete ", False),
}


def message_start(call: ast.Call) -> str:
    """The first 57 characters of a call's message, as written (f-string braces kept)."""
    if not call.args:
        return ""
    text = ast.unparse(call.args[0])
    if re.match(r"^f?(['\"])", text):
        text = text[2:-1] if text.startswith("f") else text[1:-1]
    return text[:57]


def conflict_sites() -> set[tuple[str, str, bool]]:
    """Every ConflictError-family construction in the package, with its retryable value."""
    sites = set()
    for _module, tree in modules():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            cls = CONFLICT_FAMILY.get(node.func.id)
            if cls is None:
                continue
            retryable = cls.default_retryable
            for keyword in node.keywords:
                if keyword.arg == "retryable":
                    assert isinstance(keyword.value, ast.Constant), ast.unparse(node)
                    retryable = bool(keyword.value.value)
            sites.add((cls.__name__, message_start(node), retryable))
    return sites


def test_every_conflict_raise_site_keeps_its_retryable_behaviour() -> None:
    found = conflict_sites()
    assert found - CONFLICT_SITES == set(), "a new site: add it above, saying if it retries"
    assert CONFLICT_SITES - found == set(), "a site is gone or changed: update the list"
