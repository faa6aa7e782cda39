"""Housekeeping of a checkpoint root: retention, spares, leftovers of crashes, abandoned futures."""
from __future__ import annotations

import os
import shutil
import stat
import uuid

from .commit import read_pointer, write_checkpoint, write_pointer
from .fsio import fsync_dir, remove_tree, tmp_suffix
from .names import BEST, LATEST, STEP_RE, CheckpointError, step_name
from .read import list_checkpoints


def write_and_retain(root: str, step: int, files: dict, manifest: dict, *, keep_last: int, protect, spares: list,
                     on_written=None, **write_options) -> dict:
    """A checkpoint callback's write: checkpoint ``step`` (:func:`write_checkpoint` with ``write_options``,
    recycling a directory of ``spares``), ``on_written(path)`` if given, then :func:`apply_retention`
    (a retired directory goes to ``spares``). Returns ``{"ok": True, "path", "removed"}`` or
    ``{"ok": False, "error"}``: a CheckpointError or an OSError is a failed write, never raised. The one
    sequence ``ModelCheckpoint`` writes, from its thread or in its writer process."""
    try:
        path = write_checkpoint(root, step, files, manifest, recycle=spares.pop() if spares else None,
                                **write_options)
        if on_written is not None:
            on_written(path)
        removed = apply_retention(root, keep_last, protect=protect, latest=step_name(step), spare=spares)
    except CheckpointError as e:
        return {"ok": False, "error": str(e)}
    except OSError as e:
        return {"ok": False, "error": f"checkpoint housekeeping in {root!r} failed: {e.strerror or e}"}
    return {"ok": True, "path": path, "removed": removed}


def apply_retention(root: str, keep_last: int, protect=(), latest: str | None = None,
                    spare: list | None = None) -> list[str]:
    """Delete all but the newest ``keep_last`` checkpoints (never those named in ``protect``).

    A ``best`` pointer naming one that goes (the best is not protected: ``keep_best`` off) is removed
    before it, so that no pointer names a missing checkpoint.

    A directory is renamed to a hidden name before it is removed, so a crash
    mid-delete never leaves a half-deleted ``step-N`` behind. Returns the removed names.
    ``latest``: the name ``latest`` points at when the caller just wrote it (else it is read).

    ``spare``: a list; while it is empty, the first checkpoint retired is not
    deleted but renamed to a hidden ``.spare-step-N-...`` directory (its path
    appended to the list) for the next :func:`write_checkpoint` to ``recycle``:
    rewriting a file's blocks in place costs less than freeing them here and
    allocating new ones there (the digits job's files, written and fsynced
    on a 2-core VM with ext4: about 1.0 ms against 1.6 ms a save). The spare
    is no longer a checkpoint (its name says so), so ``keep_last`` valid ones
    remain at every instant, as without it; :func:`cleanup_temporaries` removes
    one left behind.
    """
    if keep_last is None or keep_last <= 0:
        return []
    cps = list_checkpoints(root)
    if len(cps) <= keep_last:
        return []
    protect = {os.path.basename(str(p)) for p in protect if p}
    protect.add(latest or read_pointer(root, LATEST))
    best = read_pointer(root, BEST)
    removed = []
    for info in cps[:-keep_last]:
        if info.name in protect:
            continue
        if info.name == best:  # not protected (keep_best off): its pointer goes first, so it never dangles
            try:
                os.remove(os.path.join(root, BEST))
            except OSError:
                pass
            best = None
        if spare is not None and not spare:
            dest = os.path.join(root, f".spare-{info.name}-{os.getpid()}-{tmp_suffix()}")
            try:
                os.rename(info.path, dest)
            except OSError:
                continue
            spare.append(dest)
            removed.append(info.name)
            continue
        # (not ".trash-": a crash mid-delete must not make cleanup_temporaries take a half-deleted
        # checkpoint for the old copy of a same-step rewrite, which it renames back)
        trash = os.path.join(root, f".retired-{info.name}-{tmp_suffix()}")
        try:
            os.rename(info.path, trash)
        except OSError:
            continue
        remove_tree(trash)
        removed.append(info.name)
    return removed


def recover_interrupted_rewrites(root: str) -> list[str]:
    """Put back checkpoints a crash left aside; their names (call when no write is in flight).

    Writing a step that already has a checkpoint (an epoch-end save at the step of a step save, or a
    resumed run) moves the old one to ``.trash-step-N-*`` and renames the new one in: a crash between
    the two renames leaves no ``step-N``. The old one is complete, so it goes back.

    Only a real directory goes back. A ``.trash-step-N-*`` that is a symlink (or any other non-directory)
    is no checkpoint distnn moved aside complete: the entry moved aside was one already (a ``step-N``
    symlink, damage, written over), and restored it would be a ``step-N`` symlink again, skipped with a
    warning at every resume, and never removed. It is left where it is for :func:`cleanup_temporaries`,
    which unlinks it (never following it: what it names is not this root's).
    """
    restored = []
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return restored
    for n in names:
        name = n[len(".trash-"):].rsplit("-", 1)[0] if n.startswith(".trash-step-") else ""
        if STEP_RE.match(name) and _is_real_directory(os.path.join(root, n)) \
                and not os.path.lexists(os.path.join(root, name)):
            try:
                os.rename(os.path.join(root, n), os.path.join(root, name))
            except OSError:
                continue
            restored.append(name)
    return restored


def _is_real_directory(path: str) -> bool:
    """Whether ``path`` is a directory itself (not a symlink to one)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def cleanup_temporaries(root: str) -> list[str]:
    """Remove ``.tmp-*``/``.trash-*``/``.spare-*``/``.retired-*`` directories left by a crash (call when no
    write is in flight), after :func:`recover_interrupted_rewrites` has put back what must not be lost.
    One that is a symlink is unlinked, never followed; one that is no directory at all (distnn writes none:
    a file left by hand) is unlinked too."""
    out = []
    recover_interrupted_rewrites(root)
    try:
        names = os.listdir(root)
    except OSError:
        return out
    for n in names:
        if n.startswith((".tmp-step-", ".trash-step-", ".spare-step-", ".retired-step-")):
            path = os.path.join(root, n)
            # (shutil.rmtree refuses a link or a file, quietly: they stayed for good; a link is never
            # followed: what it names is not ours)
            if not _is_real_directory(path):
                try:
                    os.unlink(path)
                except OSError:
                    pass
            else:
                shutil.rmtree(path, ignore_errors=True)
            out.append(n)
        elif n.startswith((f"{LATEST}.tmp-", f"{BEST}.tmp-")):
            try:
                os.remove(os.path.join(root, n))
            except OSError:
                pass
    return out


def remove_spares(spares: list) -> None:
    """Delete the spare directories of :func:`apply_retention` (``spares`` is emptied)."""
    while spares:
        remove_tree(spares.pop())


def discard_newer(root: str, step: int, best: str | None = None) -> list[str]:
    """Move checkpoints newer than ``step`` aside (``discarded-step-N``): a run resumed from an older
    checkpoint must not later "resume" into the abandoned future. A ``latest`` or ``best`` pointer that
    named one of them is re-pointed: ``latest`` at the newest remaining checkpoint, ``best`` at ``best``
    (the resumed run's best so far) if it remains; else the pointer is removed. The root is fsynced after
    it all: a power loss must not bring the abandoned future back as the newest checkpoints (where no
    pointer named one of them, nothing else fsynced the root before the resumed run's first save)."""
    moved = []
    for info in list_checkpoints(root):
        if info.step > step:
            dest = os.path.join(root, f"discarded-{info.name}-{uuid.uuid4().hex[:6]}")
            os.rename(info.path, dest)
            moved.append(info.name)
    remaining = [c.name for c in list_checkpoints(root)] if moved else []
    for which, target in ((LATEST, remaining[-1] if remaining else None), (BEST, best if best in remaining else None)):
        if moved and read_pointer(root, which) in moved:
            if target is not None:
                write_pointer(root, which, target)
            else:
                try:
                    os.remove(os.path.join(root, which))
                except OSError:
                    pass
    if moved:  # (failed: the abandoned future may come back as the newest checkpoints, to be resumed into)
        fsync_dir(root, strict=True)
    return moved
