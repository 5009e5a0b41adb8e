"""YAML files -> validated specs, with every problem reported as file:line:col.

YAML is read with 1.2 rules (ruamel's round-trip loader): `on:` is the key
"on", `yes`/`no` are strings. A bad file is reported and skipped, never fatal;
on reload, a file that no longer loads keeps its previous good version serving.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.reader import ReaderError

from engine.errors import SpecError
from engine.inspect import inspect_workflow, key_names_at, models_at
from engine.issues import Issue
from engine.operations import OperationRegistry
from engine.render import Renderer
from schemas.sources import SourceSpec
from schemas.workflow import WorkflowSpec

SOURCES_FILE = "sources.yaml"
log = logging.getLogger(__name__)
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ENV_ONLY = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")
Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class LoadedWorkflow:
    """A valid workflow plus what a run pins: its JSON definition and that definition's hash."""

    spec: WorkflowSpec
    path: Path
    definition: dict[str, Any]
    hash: str


@dataclass(frozen=True)
class Catalog:
    """Everything loaded from WORKFLOWS_DIR at one moment."""

    sources: dict[str, SourceSpec] = field(default_factory=dict)
    # Sources that are defined but cannot verify callers yet (a secret's env var is unset).
    unconfigured: dict[str, str] = field(default_factory=dict)
    workflows: dict[str, LoadedWorkflow] = field(default_factory=dict)
    issues: tuple[Issue, ...] = ()
    # Defined in sources.yaml, but their entry does not load and no earlier version of it is serving.
    broken_sources: frozenset[str] = frozenset()

    def triggered_by(self, source: str) -> list[LoadedWorkflow]:
        return [wf for wf in self.workflows.values() if wf.spec.on.source == source]


def definition_of(spec: WorkflowSpec) -> tuple[dict[str, Any], str]:
    definition = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    digest = hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()
    return definition, digest


class _Document:
    """A parsed YAML file as plain Python data plus where each key and each value starts."""

    def __init__(self, path: Path, data: Any, keys: dict[Loc, tuple[int, int]], values: dict[Loc, tuple[int, int]]):
        self.path = path
        self.data = data
        self.keys = keys
        self.values = values

    def issue(self, loc: Loc, message: str, hint: str = "", *, at_key: bool = False) -> Issue:
        """An issue located at the value of `loc` (or its key, or the nearest parent that exists)."""
        probe = tuple(loc)
        while probe and probe not in self.keys:
            probe = probe[:-1]
        exact = probe == tuple(loc)
        where = self.values.get(probe) if exact and not at_key else None
        line, col = where or self.keys.get(probe, (1, 1))
        return Issue(str(self.path), line, col, _path_text(loc), message, hint)


def _path_text(loc: Iterable[str | int]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _plain(node: Any, loc: Loc, keys: dict[Loc, tuple[int, int]], values: dict[Loc, tuple[int, int]]) -> Any:
    if isinstance(node, CommentedMap):
        result = {}
        for key, value in node.items():
            at = (*loc, str(key))
            line, col = node.lc.key(key)
            keys[at] = (line + 1, col + 1)
            line, col = node.lc.value(key)
            values[at] = (line + 1, col + 1)
            result[str(key)] = _plain(value, at, keys, values)
        return result
    if isinstance(node, CommentedSeq):
        items = []
        for index, value in enumerate(node):
            line, col = node.lc.item(index)
            keys[(*loc, index)] = values[(*loc, index)] = (line + 1, col + 1)
            items.append(_plain(value, (*loc, index), keys, values))
        return items
    if isinstance(node, str):
        return str(node)  # ruamel's scalar string subclasses are not JSON-friendly
    return node


def read_yaml(path: Path) -> tuple[_Document | None, list[Issue]]:
    try:
        node = YAML(typ="rt").load(path.read_text(encoding="utf-8"))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        return None, [Issue(str(path), line, col, "", f"YAML syntax error: {problem}", "check indentation and quoting")]
    except ReaderError as exc:  # a character YAML does not allow (e.g. a control character)
        return None, [Issue(str(path), 1, 1, "", f"YAML cannot read this file: {exc}", "remove the character")]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Issue(str(path), 1, 1, "", f"cannot read file: {exc}")]
    keys: dict[Loc, tuple[int, int]] = {}
    values: dict[Loc, tuple[int, int]] = {}
    return _Document(path, _plain(node, (), keys, values), keys, values), []


def _validation_issues(doc: _Document, exc: ValidationError, model: type[BaseModel], prefix: Loc = ()) -> list[Issue]:
    """One issue per place; alternatives of a union ("a string, or a list") are merged into one message.

    A rule over the whole file (unique step ids, goto targets) says in its error's context which key
    broke it (`at`) and what to do (`hint`), so it is reported there rather than at line 1.
    """
    found: dict[Loc, list[str]] = {}
    unknown: set[Loc] = set()
    hints: dict[Loc, str] = {}
    for error in exc.errors(include_url=False):
        ctx = error.get("ctx") or {}
        loc = tuple(ctx["at"]) if "at" in ctx else _without_union_tags(model, tuple(error["loc"]))
        found.setdefault(loc, [])
        if error["msg"] not in found[loc]:
            found[loc].append(error["msg"])
        if error["type"] == "extra_forbidden":
            unknown.add(loc)
            hints[loc] = _did_you_mean(model, loc)
        elif isinstance(ctx.get("hint"), str):
            hints[loc] = ctx["hint"]
    return [
        doc.issue(prefix + loc, " or ".join(messages), hints.get(loc, ""), at_key=loc in unknown)
        for loc, messages in found.items()
    ]


# Tags pydantic puts in an error's loc for union members and validators; never one of our keys.
_UNION_TAG = re.compile(r"[\[\]'\-]|^(str|int|float|bool|list|dict|none)$")


def _without_union_tags(model: type[BaseModel], loc: Loc) -> Loc:
    """The error's place as the reader wrote it: union member tags dropped.

    A discriminated union (e.g. `verify: {type: hmac, ...}`) puts the member's tag
    in loc; it is recognised as a part that is not a key allowed at its place.
    """
    kept: list[str | int] = []
    for part in loc:
        if isinstance(part, str) and _UNION_TAG.search(part):
            continue
        if (
            isinstance(part, str)
            and kept
            and part not in key_names_at(model, tuple(kept))
            and _is_union_tag(model, tuple(kept))
        ):
            continue
        kept.append(part)
    return tuple(kept)


def _is_union_tag(model: type[BaseModel], parent: Loc) -> bool:
    """Whether the value at `parent` is a union of models (so an unknown part there is a member's tag)."""
    return len(models_at(model, parent)) > 1


def _did_you_mean(model: type[BaseModel], loc: Loc) -> str:
    """The nearest allowed key to an unknown one, from the model that sits at its place."""
    names = key_names_at(model, loc[:-1])
    close = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"allowed here: {', '.join(names)}" if names else "remove it"


def _expand_env(value: Any, loc: Loc, environ: Mapping[str, str], missing: list[tuple[Loc, str]]) -> Any:
    """Replace `${VAR}` in every string; collect references to unset variables."""
    if isinstance(value, dict):
        return {k: _expand_env(v, loc + (k,), environ, missing) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, loc + (i,), environ, missing) for i, v in enumerate(value)]
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in environ:
                missing.append((loc, name))
                return ""
            return environ[name]

        return _ENV_REF.sub(substitute, value)
    return value


@dataclass
class _SourcesResult:
    sources: dict[str, SourceSpec] = field(default_factory=dict)
    unconfigured: dict[str, str] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    broken: set[str] = field(default_factory=set)  # defined, but this version of the entry does not load
    readable: bool = True  # False: the file itself is broken; keep serving the previous sources


def _literal_secrets(source: Any, loc: Loc) -> list[Loc]:
    """Where a source's secret is not exactly one `${VAR}` reference: secrets live in the environment only.

    Secrets sit in `verify.secret`, `verify.password` (basic) and, with a preset, the source's own `secret`.
    """
    if not isinstance(source, dict):
        return []
    verify = source.get("verify")
    places: list[tuple[Loc, Any]] = [((*loc, "secret"), source.get("secret"))]
    if isinstance(verify, dict):
        places += [((*loc, "verify", key), verify.get(key)) for key in ("secret", "password")]
    found: list[Loc] = []
    for at, secrets in places:
        if isinstance(secrets, str) and not _ENV_ONLY.match(secrets):
            found.append(at)
        elif isinstance(secrets, list):
            found += [(*at, i) for i, s in enumerate(secrets) if not (isinstance(s, str) and _ENV_ONLY.match(s))]
    return found


def load_sources(path: Path, environ: Mapping[str, str]) -> _SourcesResult:
    doc, issues = read_yaml(path)
    if doc is None:
        return _SourcesResult(issues=issues, readable=False)
    if not isinstance(doc.data, dict) or not isinstance(doc.data.get("sources"), dict):
        return _SourcesResult(issues=[doc.issue((), "expected a mapping with a `sources:` key")], readable=False)
    result = _SourcesResult(issues=issues)
    for name, raw in doc.data["sources"].items():
        loc: Loc = ("sources", name)
        literal = _literal_secrets(raw, loc)
        if literal:
            result.broken.add(name)
            result.issues += [
                doc.issue(
                    at,
                    "a secret is written into the file",
                    'put it in an environment variable and write ${NAME} here (e.g. secret: "${WEBFORM_TOKEN}")',
                )
                for at in literal
            ]
            continue
        missing: list[tuple[Loc, str]] = []
        expanded = _expand_env(raw, loc, environ, missing)
        if missing:
            # A deployment gap, not a mistake in the file: warn, and let the endpoint answer 503.
            names = ", ".join(sorted({var for _, var in missing}))
            result.unconfigured[name] = f"environment variable {names} is not set"
            result.issues += [
                doc.issue(
                    at, f"environment variable {var} is not set; /hooks/{name} answers 503 until it is", f"export {var}"
                ).warning()
                for at, var in missing
            ]
            continue
        try:
            result.sources[name] = SourceSpec.model_validate(expanded)
        except ValidationError as exc:
            result.issues += _validation_issues(doc, exc, SourceSpec, loc)
            result.broken.add(name)
    return result


def load_workflow(
    path: Path,
    operations: OperationRegistry,
    renderer: Renderer,
    sources: Iterable[str],
    broken_sources: Iterable[str] = (),
) -> tuple[LoadedWorkflow | None, list[Issue]]:
    doc, issues = read_yaml(path)
    if doc is None:
        return None, issues
    if not isinstance(doc.data, dict):
        return None, [doc.issue((), "a workflow file must be a mapping (name, on, steps)")]
    data = {"name": path.stem, **doc.data}
    try:
        spec = WorkflowSpec.model_validate(data)
    except ValidationError as exc:
        return None, _validation_issues(doc, exc, WorkflowSpec)
    issues = inspect_workflow(spec, doc.issue, operations, renderer, sources, broken_sources)
    if any(issue.severity == "error" for issue in issues):
        return None, issues
    definition, digest = definition_of(spec)
    return LoadedWorkflow(spec, path, definition, digest), issues


def load_catalog(
    directory: Path,
    environ: Mapping[str, str],
    operations: OperationRegistry,
    renderer: Renderer,
    previous: Catalog | None = None,
) -> Catalog:
    """Load sources.yaml and every other *.yaml; keep `previous` versions of files that broke."""
    previous = previous or Catalog()
    issues: list[Issue] = []
    sources_path = directory / SOURCES_FILE
    if sources_path.exists():
        loaded_sources = load_sources(sources_path, environ)
        issues += loaded_sources.issues
        if not loaded_sources.readable:
            loaded_sources.sources, loaded_sources.unconfigured = dict(previous.sources), dict(previous.unconfigured)
        for name in loaded_sources.broken & set(previous.sources):  # an edit broke it: keep serving the last good one
            loaded_sources.sources[name] = previous.sources[name]
    else:
        loaded_sources = _SourcesResult()
        issues.append(Issue(str(sources_path), 1, 1, "", "sources.yaml is missing; no webhook can be received"))
    source_names = set(loaded_sources.sources) | set(loaded_sources.unconfigured)
    broken = frozenset(loaded_sources.broken - source_names)

    workflows: dict[str, LoadedWorkflow] = {}
    for path in sorted(directory.glob("*.yaml")):
        if path.name == SOURCES_FILE:
            continue
        loaded, file_issues = load_workflow(path, operations, renderer, source_names, broken)
        issues += file_issues
        if loaded is None:
            kept = [wf for wf in previous.workflows.values() if wf.path == path]
            for wf in kept:
                workflows.setdefault(wf.spec.name, wf)
            continue
        if loaded.spec.name in workflows:
            issues.append(_duplicate_name(loaded, workflows[loaded.spec.name]))
            continue
        workflows[loaded.spec.name] = loaded
    return Catalog(loaded_sources.sources, loaded_sources.unconfigured, workflows, tuple(issues), broken)


def _duplicate_name(loaded: LoadedWorkflow, first: LoadedWorkflow) -> Issue:
    """The later file's `name:` (or its line 1, when the name comes from the file name) is what to change."""
    message = f"workflow name {loaded.spec.name!r} is already used by {first.path.name}; this file is not loaded"
    doc, _ = read_yaml(loaded.path)
    if doc is None or not isinstance(doc.data, dict) or "name" not in doc.data:
        hint = f"the name comes from the file name: add a line `name: <another name>` (or rename {loaded.path.name})"
        return Issue(str(loaded.path), 1, 1, "name", message, hint)
    return doc.issue(("name",), message, "give one of the two workflows another name")


def _report(catalog: Catalog) -> None:
    """Every load problem into the service's log, once per change of the files (not only in `workflows check`)."""
    for issue in catalog.issues:
        log.log(logging.ERROR if issue.severity == "error" else logging.WARNING, "workflows: %s", issue)
    log.info(
        "workflows loaded: %d workflow(s), %d source(s), %d problem(s)",
        len(catalog.workflows),
        len(catalog.sources),
        len(catalog.issues),
    )


class CatalogCache:
    """The current Catalog, reloaded when files in the directory change (no restart needed)."""

    def __init__(
        self,
        directory: Path,
        environ: Mapping[str, str],
        operations: OperationRegistry,
        renderer: Renderer,
        check_every: float = 2.0,
    ) -> None:
        self._directory = directory
        self.environ = environ
        self._operations = operations
        self._renderer = renderer
        self._check_every = check_every
        self._lock = threading.Lock()
        self._catalog: Catalog | None = None
        self._fingerprint: tuple[Any, ...] = ()
        self._checked_at = 0.0

    def current(self) -> Catalog:
        now = time.monotonic()
        if self._catalog is not None and now - self._checked_at < self._check_every:
            return self._catalog
        with self._lock:
            fingerprint = self._fingerprint_now()
            if self._catalog is None or fingerprint != self._fingerprint:
                self._catalog = load_catalog(
                    self._directory, self.environ, self._operations, self._renderer, self._catalog
                )
                self._fingerprint = fingerprint
                _report(self._catalog)
            self._checked_at = now
            return self._catalog

    def _fingerprint_now(self) -> tuple[Any, ...]:
        try:
            entries = sorted(self._directory.glob("*.yaml"))
            return tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in entries)
        except OSError as exc:
            raise SpecError(f"cannot read WORKFLOWS_DIR {self._directory}: {exc}") from exc
