"""``lasskit download``: plan, fetch, verify, extract and record every file a name stands for.

:func:`download` is the one library function behind the command. For each dataset name
(:data:`lasskit.download.catalogue.CATALOGUE`) it

1. asks the Zenodo records API for each record's file list, sizes and MD5s (cached; with
   ``--from`` or when the API cannot be reached, the catalogue's known MD5s are used instead, and
   that is said), keeping the files the dataset takes;
2. downloads what is missing into ``<to>/<folder>/``, several files at a time, resuming
   ``.part`` files, or with ``--from DIR`` checks the user's copies in place (never modifying
   them) and copies the small files over, with no network at all;
3. extracts each archive (7z, zip, FSD50K's split zip) into the layout ``prepare`` expects,
   resumably, and removes the archive afterwards unless ``--keep-archives`` (an extracted archive
   is recorded, so the next run skips it even without the archive);
4. records ``paths.<corpus>`` in the workspace's lasskit.yaml (:func:`record_path`), so
   ``lasskit prepare clotho`` needs no path.

A model name fetches its weight files and tokenizer into the cache, through the same
downloader. Which files a model needs is asked of ``model_files`` (a function of the name): on its
own this module knows :mod:`lasskit.weights` (:func:`static_model_files`); the CLI passes
:func:`lasskit.models.downloads.model_files`, which also reads the zoo's model cards and plugins'
``weight_files`` (the models layer sits above this one).
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lasskit.download.catalogue import CATALOGUE, Dataset
from lasskit.download.config import record_path  # noqa: F401 - re-exported: importable from here as before
from lasskit.download.modelfiles import ModelFiles, static_model_files, static_names  # noqa: F401 - as before
from lasskit.download.verify import RemoteFile
from lasskit.errors import UsageError, WorkError

ARCHIVE = re.compile(r"\.(zip|7z)$", re.IGNORECASE)
SPLIT_PART = re.compile(r"\.z\d\d$", re.IGNORECASE)


@dataclass
class PlannedFile:
    """One file of a dataset: what to fetch and where it goes."""

    remote: RemoteFile
    dest: Path
    """Where it is (to be) downloaded: ``<to>/<folder>/<into>/<name>``."""
    local: Path | None = None
    """With ``--from``: the user's copy."""

    @property
    def is_archive(self) -> bool:
        return bool(ARCHIVE.search(self.remote.name))

    @property
    def is_part(self) -> bool:
        return bool(SPLIT_PART.search(self.remote.name))


@dataclass
class ItemReport:
    """What happened for one name."""

    name: str
    folder: Path | None = None
    files: int = 0
    downloaded_bytes: int = 0
    fetched: int = 0
    cached: int = 0
    resumed: int = 0
    restarted: int = 0
    refetched: int = 0
    extracted: list[str] = field(default_factory=list)
    unchecked: int = 0
    """``--from`` copies taken with no checksum to check them against (none known offline)."""
    extracted_before: int = 0
    """Archives an earlier run extracted (nothing to fetch or check for them)."""
    kept_members: int = 0
    removed_archives: int = 0
    notes: list[str] = field(default_factory=list)
    next: str = ""
    paths: list[Path] = field(default_factory=list)
    """For weights: the files (and tokenizer folder) in the cache."""


@dataclass
class DownloadReport:
    items: list[ItemReport] = field(default_factory=list)
    recorded: dict[str, str] = field(default_factory=dict)
    """``paths.<corpus>`` written to lasskit.yaml."""
    config: Path | None = None


# --- resolving names ------------------------------------------------------------------------------
def known_names() -> list[str]:
    return sorted(CATALOGUE) + static_names()


def check_names(names: list[str], model_files=static_model_files, model_names: tuple[str, ...] = ()) -> None:
    """Every name is a dataset or something with weight files; else one line listing the known names
    (``model_names``: the models layer's, e.g. the zoo's cards)."""
    if not names:
        raise UsageError("name what to download (e.g. `lasskit download clotho`); `lasskit download --list` shows "
                         "every name")
    for name in names:
        if name not in CATALOGUE and model_files(name) is None:
            known = ", ".join(dict.fromkeys([*known_names(), *model_names]))
            raise UsageError(f"unknown download {name!r}; known: {known} (or a registered model "
                             "that declares weight_files); see `lasskit download --list`")


def plan(ds: Dataset, to: Path, from_dir: Path | None, say, notes: list[str] | None = None) -> list[PlannedFile]:
    """The files of ``ds``, with their checks: from the records API (cached), else the known MD5s.

    Files whose MD5 in the API differs from the one lasskit knew are named in ``notes``.
    """
    from lasskit.download import zenodo

    root = to / ds.folder
    out: list[PlannedFile] = []
    differ: list[str] = []
    for src in ds.sources:
        known = {k.name: k for k in src.known}
        if src.record is None:
            remotes = [RemoteFile(k.name, k.url or "", k.size, k.md5, None, "known checksum" if k.md5 else "")
                       for k in src.known]
        else:
            files, how = zenodo.record_files(src.record, offline=from_dir is not None)
            if files is not None:
                _check_listing(ds, src, files, how)
                remotes = []
                for f in files:
                    if not any(fnmatch.fnmatchcase(f.name, pat) for pat in src.include):
                        continue
                    k = known.get(f.name)
                    if k is not None and k.md5 and f.md5 and k.md5 != f.md5:
                        differ.append(f.name)
                    remotes.append(RemoteFile(f.name, f.url, f.size, f.md5 or (k.md5 if k else None), None,
                                              f"Zenodo record {src.record} ({how})"))
            else:
                if not src.known:
                    if from_dir is not None:
                        raise UsageError(f"{ds.name}: the file list of Zenodo record {src.record} ({src.what}) is not "
                                         "known offline; run once without --from (the list is cached), or set "
                                         f"LASSKIT_CACHE to a cache that has zenodo/{src.record}.json")
                    raise WorkError(f"{ds.name}: cannot list Zenodo record {src.record} ({src.what}): {how}; check "
                                    f"the network and run the same command again, or use --from DIR")
                if from_dir is None:
                    say(f"{ds.name}: {how} for record {src.record}; using the {len(src.known)} file(s) and MD5s "
                        "lasskit knows")
                remotes = [RemoteFile(k.name, zenodo.file_url(src.record, k.name), k.size, k.md5, None,
                                      f"known MD5 (record {src.record})" if k.md5 else "")
                           for k in src.known]
        for r in remotes:
            _check_plain_name(r.name, src.record, ds.name)
            out.append(PlannedFile(r, root / src.into / r.name))
    dests = [f.dest for f in out]
    twice = sorted({d.name for d in dests if dests.count(d) > 1})
    if twice:  # two downloads into one .part would mix their bytes
        raise WorkError(f"{ds.name}: the records list {', '.join(twice[:3])} more than once; nothing of {ds.name} was "
                        "downloaded; check the records' pages and report it")
    if differ and notes is not None:
        notes.append(f"the records API gives other MD5s than lasskit knew for {len(differ)} file(s) "
                     f"({', '.join(differ[:3])}{' ...' if len(differ) > 3 else ''}): a new version of the record? "
                     "The API's are used")
    if from_dir is not None:
        _find_local(out, from_dir, ds)
    return out


def _check_listing(ds: Dataset, src, files, how: str) -> None:
    """A record's file list that lacks what lasskit knows the dataset holds (a known file, or any
    file for one of its patterns) is an error: else a changed record would give an incomplete
    dataset that looks complete."""
    listed = {f.name for f in files}
    lost = [k.name for k in src.known
            if k.name not in listed and any(fnmatch.fnmatchcase(k.name, p) for p in src.include)]
    lost += [p for p in src.include if not any(fnmatch.fnmatchcase(n, p) for n in listed) and
             not any(fnmatch.fnmatchcase(k.name, p) for k in src.known)]
    if lost:
        from lasskit.download.zenodo import cache_path, record_page

        cached = f"; if the record was fixed since, remove {cache_path(src.record)}" if "cached" in how else ""
        raise WorkError(f"Zenodo record {src.record} ({src.what}; {how}) does not list "
                        f"{', '.join(lost[:4])}{' ...' if len(lost) > 4 else ''}, which {ds.name} needs; nothing of "
                        f"{ds.name} was downloaded: the record has changed (check {record_page(src.record)}){cached}")


def _check_plain_name(name: str, record: str | None, dataset: str) -> None:
    """A file name from a records API becomes a path under ``--to``: it must be one plain name (no
    folder, no ``..``, not absolute), else a hostile or broken record could write anywhere."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        where = f"Zenodo record {record}" if record else "the catalogue"
        raise WorkError(f"{where} lists a file named {name!r}, which is not a plain file name; nothing "
                        f"of {dataset} was downloaded; check the record's page and report it")


def _find_local(files: list[PlannedFile], from_dir: Path, ds: Dataset) -> None:
    """Point each file at the user's copy in ``from_dir`` (searched three levels deep)."""
    index: dict[str, Path] = {}
    for depth_glob in ("*", "*/*", "*/*/*"):
        for p in sorted(from_dir.glob(depth_glob)):
            if p.is_file() and p.name not in index:
                index[p.name] = p
    missing = []
    for f in files:
        f.local = index.get(f.remote.name)
        if f.local is None and not _already_done(f):
            missing.append(f.remote.name)
    if missing:
        raise UsageError(f"{from_dir}: {ds.name} needs {', '.join(missing[:6])}"
                         f"{f' and {len(missing) - 6} more' if len(missing) > 6 else ''} which are not there; copy "
                         "them into that folder, or run without --from to download them")


def _already_done(f: PlannedFile) -> bool:
    """An archive extracted by an earlier run (and perhaps removed) needs no file."""
    from lasskit.download.extract import is_extracted

    if f.is_part:
        zip_name = SPLIT_PART.sub(".zip", f.remote.name)
        return is_extracted(f.dest.parent, zip_name)
    return f.is_archive and is_extracted(f.dest.parent, f.remote.name)


# --- the command ------------------------------------------------------------------------------------------
def download(names: list[str], to: str | os.PathLike, *, from_dir: str | os.PathLike | None = None,
             keep_archives: bool = False, parallel: int = 4, token: str | None = None,
             workspace_root: str | os.PathLike | None = None, progress: bool | None = None,
             say=None, model_files=static_model_files, model_names: tuple[str, ...] = ()) -> DownloadReport:
    """Download, verify and extract every name in ``names`` (see the module notes).

    ``model_files(name)`` says what a model name needs (default: :mod:`lasskit.weights` only);
    ``model_names`` are the other names it knows, listed when a name is unknown.
    """
    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    if parallel < 1:
        raise UsageError(f"--parallel {parallel}: must be at least 1")
    check_names(names, model_files, model_names)
    to = Path(to).expanduser().resolve()
    try:
        str(to).encode("utf-8")
    except UnicodeEncodeError:  # prepare refuses every file under such a folder: say it before 30 GB arrive
        shown = os.fsencode(to).decode("utf-8", "backslashreplace")
        raise UsageError(f"--to {shown}: the folder's name is not valid UTF-8, and `lasskit prepare` cannot read "
                         "files under it; pick a folder with a UTF-8 name") from None
    src = Path(from_dir).expanduser().resolve() if from_dir is not None else None
    if src is not None and not src.is_dir():
        raise UsageError(f"{src}: --from must be a folder holding the files (as downloaded); fix the path")
    from lasskit.download.extract import forget_checks

    forget_checks()  # extracted files are looked at again by every run
    report = DownloadReport()
    failed: list[tuple[str, Exception]] = []
    unique = list(dict.fromkeys(names))
    for name in unique:  # one failing name does not stop the others
        try:
            if name in CATALOGUE:
                report.items.append(_dataset(CATALOGUE[name], to, src, keep_archives, parallel, token, progress, say))
            else:
                report.items.append(_weights(model_files(name), src, parallel, token, progress, say))
        except (UsageError, WorkError) as exc:
            if len(unique) == 1:
                raise
            failed.append((name, exc))
    for item in report.items:
        item.next = _with_captions(item.next, to)
    if workspace_root is not None:
        for item in report.items:
            ds = CATALOGUE.get(item.name)
            if ds is not None and ds.corpus and item.folder is not None:
                report.config = record_path(Path(workspace_root), ds.corpus, item.folder, say)
                report.recorded[ds.corpus] = str(item.folder)
    if failed:
        done = ", ".join(it.name for it in report.items) or "nothing"
        name, exc = failed[0]
        error = type(exc)(f"{len(failed)} of {len(unique)} downloads failed "
                          f"({', '.join(n for n, _ in failed)}; done: {done}); the first: {name}: {exc}")
        error.report = report  # what did succeed, for the command's summary
        raise error
    return report


CAPTIONS_HOLE = "--captions <the organizers' caption JSON (lasskit download dcase2024)>"


def _with_captions(command: str, to: Path) -> str:
    """``prepare fsd50k``'s hint with the organizers' FSD50K caption JSON(s) when dcase2024 is under ``to``."""
    if CAPTIONS_HOLE not in command:
        return command
    import shlex

    ds = CATALOGUE["dcase2024"]
    into = next((src.into for src in ds.sources if src.into), "")
    found = sorted((to / ds.folder / into).glob("*fsd50k*.json")) if into else []
    if not found:
        return command
    return command.replace(CAPTIONS_HOLE, " ".join(f"--captions {shlex.quote(str(p))}" for p in found))


def _dataset(ds: Dataset, to: Path, src: Path | None, keep_archives: bool, parallel: int, token, progress,
             say) -> ItemReport:
    from lasskit.download.lock import hold

    item = ItemReport(ds.name, folder=to / ds.folder, next=ds.prepare.replace("<to>", str(to)))
    files = plan(ds, to, src, say, item.notes)
    item.files = len(files)
    if src is not None:
        _check_copies(files)
    with hold(item.folder, say):  # a second run into this folder waits, then finds the files there
        _fill(ds, item, files, src, keep_archives, parallel, token, progress, say)
    return item


def _check_copies(files: list[PlannedFile]) -> None:
    """``--from``: every copy the run needs is checked before anything is written."""
    from lasskit.download.fetch import check_file

    for f in files:
        if _already_done(f):
            continue
        why = check_file(f.local, f.remote)
        if why is not None:
            raise WorkError(f"{f.local}: {why}; this copy is damaged or another version: get the file again "
                            "(or run without --from to download it)")


def _fill(ds: Dataset, item: ItemReport, files: list[PlannedFile], src: Path | None, keep_archives: bool,
          parallel: int, token, progress, say) -> None:
    """Fetch (or check the user's copies of) ``files``, extract the archives, remove them: into ``item``."""
    from lasskit.download.extract import extract, is_extracted
    from lasskit.download.fetch import fetch_all, forget_verified

    unchecked = [f.remote.name for f in files if not f.remote.checked]
    if unchecked:
        item.notes.append(f"no checksum known for {', '.join(unchecked)} (size only, where known)")
    todo = [f for f in files if not _already_done(f)]
    item.extracted_before = sum(1 for f in files if f.is_archive and _already_done(f))
    if src is None:
        _warn_space(item.folder, todo, say)
        results = fetch_all([(f.remote, f.dest) for f in todo], parallel=parallel, progress=progress, say=say,
                            token=token)
        for r in results:
            if r.cached:
                item.cached += 1
            else:
                item.fetched += 1
                item.downloaded_bytes += r.downloaded
            item.resumed += bool(r.resumed_from) and not r.restarted
            item.restarted += r.restarted
            item.refetched += r.refetched
    else:
        for f in todo:  # checked by _check_copies
            item.cached += f.remote.checked
            item.unchecked += not f.remote.checked
            if not f.is_archive and not f.is_part:  # small files are copied next to the extracted ones
                _copy(f.local, f.dest)
    # extraction: archives (a split zip is its .zip), from the download or from the user's copy
    from lasskit.download.extract import ArchiveError

    bad: list[tuple[Path, ArchiveError]] = []
    for f in files:
        if not f.is_archive:
            continue
        where = f.dest.parent
        archive = f.local if (src is not None and f.local is not None) else f.dest
        if is_extracted(where, f.remote.name):
            continue
        try:
            rep = extract(archive, where, folder=ds.folder_for(f.remote.name))
        except ArchiveError as exc:  # a damaged archive does not keep the others from being extracted
            bad.append((archive, exc))
            continue
        except OSError as exc:
            raise _extract_error(exc, f.remote.name, where) from None
        item.extracted.append(f.remote.name)
        item.kept_members += rep.kept
        if rep.kept:
            item.notes.append(f"{f.remote.name}: extraction resumed ({rep.kept} of {rep.members} files were already "
                              "there)")
    if src is None and not keep_archives:
        for f in files:
            if (f.is_archive or f.is_part) and f.dest.is_file() and _already_done(f):
                forget_verified(f.dest)
                f.dest.unlink()
                item.removed_archives += 1
    if bad:
        archive, exc = bad[0]
        more = f" ({len(bad) - 1} more archive(s) could not be extracted either)" if len(bad) > 1 else ""
        line = str(exc)
        for name in (f"{archive}: ", f"{archive.name}: "):  # name the archive with its folder, once
            line = line.removeprefix(name)
        raise WorkError(f"{archive}: {line}{more}; the other archives of {ds.name} were extracted")


def _extract_error(exc: OSError, name: str, where: Path):
    """A write failure while extracting: one line with the fix this command has (``--to``)."""
    import errno

    from lasskit.errors import os_error

    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return WorkError(f"{where}: no space left on the device while extracting {name}; free some space (or pass "
                         "--to DIR on a bigger disk) and run the same command again: the files already extracted "
                         "are kept and the extraction goes on from there")
    return os_error(exc, where)


def _warn_space(root: Path, todo: list[PlannedFile], say) -> None:
    """A warning when the disk has less room than what is left to download plus its extraction."""
    left = 0
    for f in todo:
        if f.remote.size is None or f.dest.is_file():
            continue
        part = f.dest.with_name(f.dest.name + ".part")
        have = part.stat().st_size if part.is_file() else 0
        left += max(0, f.remote.size - have) + (f.remote.size if f.is_archive or f.is_part else 0)
    where = root
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        free = shutil.disk_usage(where).free
    except OSError:
        return
    if left > free:
        say(f"warning: {where} has {_human(free)} free; what is left to download and extract needs about "
            f"{_human(left)}: the download stops with one line when the disk is full, and the same command "
            "resumes it (or pass --to DIR on a bigger disk)")


def _copy(local: Path, dest: Path) -> None:
    from lasskit.atomic import atomic_path

    if dest.is_file() and dest.stat().st_size == local.stat().st_size and dest.read_bytes() == local.read_bytes():
        return
    with atomic_path(dest) as tmp:
        shutil.copyfile(local, tmp)


def _weights(spec: ModelFiles, src: Path | None, parallel: int, token, progress, say) -> ItemReport:
    """A model's weight files and tokenizer, into the cache (``--from``: copied from the user's folder)."""
    from lasskit.download import zenodo
    from lasskit.download.cache import cache_dir
    from lasskit.download.fetch import check_file, fetch_all
    from lasskit.weights import TOKENIZERS, tokenizer_dir

    name = spec.name
    item = ItemReport(name, next=f"lasskit separate --model {name}" if spec.files else "")
    jobs, inner, done, loose = [], {}, [], set()  # inner: a zip's name -> the file it holds (WeightFile.archive)
    unpublished = set()  # files with no checksum anywhere (no SHA-256 declared, no record): never checked
    for w in spec.files:
        md5, size, url, hit, published = None, w.size, w.url, None, getattr(w, "archive", None) or w.filename
        if published != w.filename and (cache_dir() / "weights" / w.filename).is_file() and src is None:
            done.append(cache_dir() / "weights" / w.filename)  # taken out of its zip by an earlier run
            continue
        found = zenodo.lookup(w.url, offline=src is not None)  # a Zenodo address: the record's API knows it
        record = zenodo.record_of(w.url) or spec.records.get(w.filename)
        if found is not None:
            url, hit = found
        elif record:
            listed, _ = zenodo.record_files(record, offline=src is not None)
            hit = next((f for f in listed or () if f.name == published), None)
        if hit is None and record and (why := zenodo.absent(record, published, offline=src is not None)):
            raise WorkError(f"{name}: {why}")  # before anything is fetched or written
        if hit is not None and not w.sha256:  # what the declaration does not give
            md5, size = hit.md5, size if size is not None else hit.size
        source = "declared SHA-256" if w.sha256 else ("the Zenodo record's API" if md5 else "")
        if not w.sha256 and not record and found is None:
            unpublished.add(published)
        jobs.append((RemoteFile(published, url, size, md5, w.sha256, source), cache_dir() / "weights" / published))
        inner.update({published: w.filename} if published != w.filename else {})
    if spec.tokenizer:
        folder = tokenizer_dir(spec.tokenizer)
        jobs += [(RemoteFile(w.filename, w.url, w.size, None, w.sha256), folder / w.filename)
                 for w in TOKENIZERS[spec.tokenizer]]
        unpublished.update(w.filename for w in TOKENIZERS[spec.tokenizer] if not w.sha256)
    item.files, item.cached = len(jobs) + len(done), len(done)
    from lasskit.download.lock import cache_lock, hold
    from lasskit.download.member import take_member

    copies = []
    if src is not None:  # the user's copies, all checked before anything is written
        def mine(file: str) -> Path | None:
            return next((p for p in (src / file, src / "weights" / file) if p.is_file()), None)

        for i, (remote, dest) in enumerate(jobs):
            local = mine(remote.name)
            if local is None and remote.name in inner and mine(inner[remote.name]):  # taken out of its zip already
                member = inner.pop(remote.name)  # copied as it is: no checksum is published for it
                loose.add(member)
                local, remote, dest = mine(member), RemoteFile(member, remote.url), dest.with_name(member)
                jobs[i] = (remote, dest)
            if local is None:
                raise UsageError(f"{src}: {name} needs {remote.name}, which is not there; copy it into that folder, or "
                                 "run without --from to download it")
            why = check_file(local, remote)
            if why is not None:
                raise WorkError(f"{local}: {why}; get the file again (or run without --from)")
            if remote.name in inner and not remote.checked:  # a later online run trusts what it took out
                loose.add(inner[remote.name])
            copies.append((local, dest, remote))
    with hold(cache_dir() / "weights", say, at=cache_lock(cache_dir() / "weights")):  # one writer at a time
        for local, dest, remote in copies:
            _copy(local, dest)
            item.cached += remote.checked
            item.unchecked += not remote.checked
        lone = [r.name for _, _, r in copies if not r.checked and r.name not in loose and r.name not in inner]
        never = [n for n in lone if n in unpublished]  # online would check nothing more: do not promise it
        lone = [n for n in lone if n not in unpublished]
        if never:
            item.notes.append(f"{', '.join(never)}: copied unchecked (its publisher gives no checksum or size)")
        item.notes += [f"{m}: unchecked (no checksum is published for a file inside its zip)" for m in sorted(loose)]
        if lone:
            item.notes.append(f"{', '.join(lone)}: no checksum known offline (the record's file list is not cached), "
                              f"copied unchecked; `lasskit download {name}` once online checks them (and replaces a "
                              "bad one)")
        if src is None:
            for r in fetch_all(jobs, parallel=parallel, progress=progress, say=say, token=token):
                item.cached += r.cached
                item.fetched += not r.cached
                item.downloaded_bytes += r.downloaded
                item.resumed += bool(r.resumed_from) and not r.restarted
                item.restarted += r.restarted
                item.notes += r.notes
        jobs = [(r, take_member(d, inner[r.name], d.with_name(inner[r.name])) if r.name in inner else d)
                for r, d in jobs]
    item.paths = done + [dest for _, dest in jobs if not spec.tokenizer or dest.parent != tokenizer_dir(spec.tokenizer)]
    if spec.tokenizer:
        item.paths.append(tokenizer_dir(spec.tokenizer))
    item.folder = cache_dir()
    return item


# --- --list -----------------------------------------------------------------------------------------------
@dataclass
class ListRow:
    name: str
    kind: str
    size: str
    licence: str
    next: str
    title: str


def _human(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def list_rows(model_files=static_model_files, model_names: tuple[str, ...] = ()) -> list[ListRow]:
    """One row per downloadable name: size (exact when the records' file lists are cached), licence,
    what follows; ``model_names`` are listed too, after :mod:`lasskit.weights`'s. Asks no network."""
    from lasskit.download import zenodo

    rows = []
    for ds in CATALOGUE.values():
        total, exact = 0, True
        for src in ds.sources:
            files = zenodo.read_cached(src.record) if src.record else None
            if files is None:
                exact = False
                continue
            total += sum(f.size or 0 for f in files if any(fnmatch.fnmatchcase(f.name, p) for p in src.include))
        size = _human(total) if exact else ds.size
        rows.append(ListRow(ds.name, "data", size, ds.licence, ds.prepare, ds.title))
    from lasskit.weights import MODEL_WEIGHTS

    for name in dict.fromkeys([*static_names(), *model_names]):
        spec = model_files(name)
        sizes = [w.size for w in spec.files]
        size = _human(sum(sizes)) if sizes and all(s is not None for s in sizes) else "see the publisher"
        is_model = name in MODEL_WEIGHTS or name in model_names
        kind = "model" if is_model else ("tokenizer" if not spec.files else "weights")
        nxt = f"lasskit separate --model {name}" if is_model else "(used by a model)"
        rows.append(ListRow(name, kind, size, spec.licence or "see the publisher's page", nxt, spec.description))
    return rows


def download_model(name: str, *, from_dir: str | os.PathLike | None = None, parallel: int = 4,
                   token: str | None = None, progress: bool | None = None, say=None,
                   model_files=static_model_files, model_names: tuple[str, ...] = ()) -> ItemReport:
    """``lasskit models download NAME``: the weight files (and tokenizer) of one model, into the cache."""
    if name in CATALOGUE:
        raise UsageError(f"{name!r} is a dataset, not a model: use `lasskit download {name}`")
    spec = model_files(name)
    if spec is None:
        known = ", ".join(dict.fromkeys([*static_names(), *model_names]))
        raise UsageError(f"no downloadable weights for {name!r}; known: {known} (or a registered "
                         "model that declares weight files; see `lasskit download --list`)")
    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    src = Path(from_dir).expanduser().resolve() if from_dir is not None else None
    return _weights(spec, src, parallel, token, progress, say)
