"""The code a bench run measures, frozen for the whole run.

A run takes minutes and people keep editing the tree meanwhile: a model
changed half-way would make the web service write a column the migrated
database does not have. So the run copies the code once, either the working
tree as it is (the default: what a developer is optimising) or a commit
(`--source HEAD`, via `git archive`), and every process of the run, the
harness included, runs from that copy. The harness of the working tree
(bench/) is always the one copied in, so older commits can be measured with it.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path

from bench.infra import BenchSetupError

WORKTREE = "worktree"


def _git(repo: Path, *args: str) -> bytes:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, timeout=60)
    if done.returncode != 0:
        raise BenchSetupError(f"git {' '.join(args)} failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def _copy_worktree(repo: Path, target: Path) -> None:
    """Tracked and untracked-but-not-ignored files, as they are on disk right now."""
    listed = _git(repo, "ls-files", "--cached", "--others", "--exclude-standard", "-z").split(b"\0")
    for name in filter(None, (entry.decode() for entry in listed)):
        source = repo / name
        if source.is_file():  # a deleted but still tracked file is skipped
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)


def _extract_commit(repo: Path, rev: str, target: Path) -> None:
    archive = _git(repo, "archive", "--format=tar", rev)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")


def make(repo: Path, target: Path, source: str = WORKTREE) -> str:
    """Copy `source` (the working tree, or a git revision) of `repo` into `target`; return what was copied.

    Raises:
        BenchSetupError: git could not list or archive the code.
    """
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    if source == WORKTREE:
        _copy_worktree(repo, target)
        described = "the working tree"
    else:
        _extract_commit(repo, source, target)
        described = f"commit {_git(repo, 'rev-parse', '--short', source).decode().strip()} ({source})"
        shutil.rmtree(target / "bench", ignore_errors=True)
    shutil.copytree(repo / "bench", target / "bench", dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    return described
