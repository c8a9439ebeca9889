"""Private apt configurations: Debian's trixie-backports kernels, and
arm64 packages.

Debian 12's own sources know no 7.x kernel, and no arm64 package (the
machine is amd64).  The same archive serves
``trixie-backports``, and apt can read a list of its own without touching
the system's: :class:`PrivateApt` keeps a ``sources.list``, the package
lists and apt's caches under ``<cache>/apt-trixie-backports/``, and runs
``apt-get``/``apt-cache`` with ``-o Dir::Etc::SourceList=...
-o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=...
-o Dir::Cache=...``.  Packages are only ever downloaded (``apt-get
download``, into ``debs/``) and unpacked with ``dpkg-deb``, never
installed: their binaries need a newer glibc than Debian 12's, or
another architecture (the arm64 lists live in ``apt-bookworm-arm64/`` and
``apt-trixie-backports-arm64/``, with ``APT::Architecture=arm64``).

The lists are refreshed when they are older than a day, and whenever a
package cannot be found in them.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUITES = ("trixie-backports",)
COMPONENTS = "main"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
#: Lists older than this (seconds) are refreshed before use.
MAX_AGE = 24 * 3600
#: Where the system's apt sources are read (for the mirror only).
SYSTEM_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"),
                  Path("/etc/apt/sources.list"))


def mirror_from_deb822(text: str, security: bool = False) -> str | None:
    """Return the first Debian archive URI of a deb822 ``.sources`` file:
    a ``deb`` stanza whose suites are not ``-security`` ones (with
    *security*, one whose suites are)."""
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0] in " \t" and key:
                fields[key] += " " + line.strip()
                continue
            if ":" in line:
                key, val = line.split(":", 1)
                key = key.strip().lower()
                fields[key] = val.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        if "deb" not in fields.get("types", "").split():
            continue
        suites = fields.get("suites", "").split()
        if not suites or \
                any(s.endswith("-security") for s in suites) != security:
            continue
        uris = fields.get("uris", "").split()
        if uris:
            return uris[0].rstrip("/")
    return None


def mirror_from_list(text: str, security: bool = False) -> str | None:
    """Return the first Debian archive URI of a one-line-style
    ``sources.list`` (``deb [opts] URI suite components``); with
    *security*, that of a ``-security`` suite."""
    for line in text.splitlines():
        line = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
        if len(line) >= 3 and line[0] == "deb" and \
                line[2].endswith("-security") == security:
            return line[1].rstrip("/")
    return None


def system_mirror(files: tuple[Path, ...] = SYSTEM_SOURCES,
                  security: bool = False) -> str:
    """Return the mirror URI the system's apt sources use for Debian
    (with *security*, for its security suites: by default the archive's
    URI with ``-security`` added, as Debian's own mirrors have it)."""
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        uri = (mirror_from_deb822(text, security) if path.suffix == ".sources"
               else mirror_from_list(text, security))
        if uri:
            return uri
    if security:
        return system_mirror(files) + "-security"
    return DEFAULT_MIRROR


def sources_list(mirror: str, suites: tuple[str, ...] = SUITES,
                 kind: str = "deb", security: str | None = None) -> str:
    """Return the private ``sources.list`` text (*kind* ``deb`` for
    binary packages, ``deb-src`` for source packages).  A ``-security``
    suite is taken from *security* (default: *mirror* with ``-security``
    added)."""
    security = security or mirror + "-security"
    return "".join(f"{kind} [signed-by={KEYRING}] "
                   f"{security if suite.endswith('-security') else mirror} "
                   f"{suite} {COMPONENTS}\n" for suite in suites)


def parse_depends(text: str) -> list[str]:
    """Return the package names of a ``Depends:`` value, alternatives
    included, without versions or architecture qualifiers."""
    names = []
    for alt in re.split(r"[,|]", text):
        name = alt.strip().split(" ", 1)[0].split(":", 1)[0]
        if name:
            names.append(name)
    return names


def deb_filename(pkg: str, version: str, arch: str) -> str:
    """Return the name ``apt-get download`` gives a package's file."""
    return f"{pkg}_{version.replace(':', '%3a')}_{arch}.deb"


def dsc_version(dsc: Path) -> str:
    """Return the version in a ``.dsc`` file's name (``pkg_VERSION.dsc``,
    without the epoch, which file names leave out)."""
    return dsc.stem.split("_", 1)[1]


def newest_dsc(dscs: list[Path]) -> Path:
    """Return the ``.dsc`` of the newest version, by Debian's ordering
    (``dpkg --compare-versions``: ``deb12u10`` is newer than ``deb12u9``),
    for a directory that has kept an older download."""
    best = dscs[0]
    for dsc in dscs[1:]:
        newer = subprocess.run(["dpkg", "--compare-versions",
                                dsc_version(dsc), "gt", dsc_version(best)],
                               check=False).returncode == 0
        if newer:
            best = dsc
    return best


class PrivateApt:
    """apt-get and apt-cache on the private list in *root*: binary
    packages of *suites* (trixie-backports by default), or with *kind*
    ``deb-src`` their source packages (:meth:`source`).  *arch* (a Debian
    architecture, e.g. ``arm64``) makes it the lists of that architecture
    alone, for packages that are only ever unpacked: the system's dpkg
    never learns of a foreign architecture."""

    def __init__(self, root: Path, mirror: str | None = None,
                 quiet: bool = False, suites: tuple[str, ...] = SUITES,
                 kind: str = "deb", arch: str | None = None):
        self.root = Path(root)
        self.mirror = mirror or system_mirror()
        self.security = None if mirror else system_mirror(security=True)
        self.quiet = quiet
        self.suites = suites
        self.kind = kind
        self.arch = arch
        self.debs = self.root / "debs"
        self._updated = False

    # -- configuration ------------------------------------------------------

    def options(self) -> list[str]:
        """apt's ``-o`` options for the private configuration."""
        arch = ["-o", f"APT::Architecture={self.arch}",
                "-o", f"APT::Architectures::={self.arch}"] if self.arch else []
        return ["-o", f"Dir::Etc::SourceList={self.root / 'sources.list'}",
                "-o", "Dir::Etc::SourceParts=/dev/null",
                "-o", f"Dir::State::Lists={self.root / 'lists'}",
                "-o", f"Dir::Cache={self.root / 'cache'}",
                "-o", "Acquire::Languages=none", *arch]

    def _say(self, msg: str) -> None:
        if not self.quiet:
            print(f"backports: {msg}", file=sys.stderr, flush=True)

    def _setup(self) -> None:
        for sub in ("lists/partial", "cache/archives/partial", "debs"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        text = sources_list(self.mirror, self.suites, self.kind,
                            self.security)
        path = self.root / "sources.list"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            (self.root / ".updated").unlink(missing_ok=True)

    def _lock(self):
        self.root.mkdir(parents=True, exist_ok=True)
        # pylint: disable-next=consider-using-with
        f = open(self.root / "lock", "a")
        fcntl.flock(f, fcntl.LOCK_EX)
        return f

    def age(self) -> float | None:
        """Seconds since the lists were last refreshed, or None."""
        try:
            return time.time() - (self.root / ".updated").stat().st_mtime
        except FileNotFoundError:
            return None

    def update(self, force: bool = False) -> None:
        """Refresh the lists when *force*, missing or older than a day."""
        with self._lock():
            self._setup()
            age = self.age()
            if not force and age is not None and age < MAX_AGE:
                return
            if force and self._updated:
                return
            self._say(f"apt-get update ({', '.join(self.suites)} from "
                      f"{self.mirror})")
            res = subprocess.run(["apt-get", *self.options(), "-qq",
                                  "update"], capture_output=True, text=True,
                                 check=False)
            if res.returncode != 0:
                raise RuntimeError("apt-get update on the private list "
                                   f"failed: {res.stderr.strip()}")
            (self.root / ".updated").touch()
            self._updated = True

    # -- queries -------------------------------------------------------------

    def _cache(self, *args: str) -> str:
        self.update()
        return subprocess.run(["apt-cache", *self.options(), *args],
                              capture_output=True, text=True,
                              check=False).stdout

    def pkgnames(self, prefix: str) -> list[str]:
        """Names of the packages starting with *prefix*."""
        return self._cache("pkgnames", prefix).split()

    def fields(self, pkg: str) -> dict[str, str]:
        """The candidate's control fields (``Version``, ``Depends``...),
        or an empty dict when the lists do not know *pkg*."""
        out = self._cache("show", "--no-all-versions", pkg)
        fields: dict[str, str] = {}
        key = None
        for line in out.splitlines():
            if not line.strip():
                break
            if line[0] in " \t" and key:
                continue
            if ":" in line:
                key, val = line.split(":", 1)
                fields[key] = val.strip()
        return fields

    # -- downloads -----------------------------------------------------------

    def download(self, pkg: str) -> Path:
        """Return the .deb of *pkg*'s candidate in ``debs/``, downloading it
        once; older versions of it there are removed.  The lists are
        refreshed once when they do not know *pkg*."""
        info = self.fields(pkg)
        if not info:
            self.update(force=True)
            info = self.fields(pkg)
        if not info:
            raise LookupError(f"{pkg} is not in {', '.join(self.suites)} "
                              f"({self.mirror})")
        deb = self.debs / deb_filename(pkg, info["Version"],
                                       info["Architecture"])
        if deb.exists():
            return deb
        self._say(f"downloading {pkg} {info['Version']} "
                  f"({int(info.get('Size', 0)) >> 20} MiB)")
        with tempfile.TemporaryDirectory(dir=self.debs) as tmp:
            res = subprocess.run(["apt-get", *self.options(), "-qq",
                                  "download", pkg], cwd=tmp,
                                 capture_output=True, text=True, check=False)
            got = list(Path(tmp).glob("*.deb"))
            if res.returncode != 0 or len(got) != 1:
                raise RuntimeError(f"apt-get download {pkg} failed: "
                                   f"{res.stderr.strip()}")
            for old in self.debs.glob(f"{pkg}_*.deb"):
                old.unlink()
            os.replace(got[0], deb)
        return deb


    def source(self, pkg: str, dest: Path) -> Path:
        """Download the source package *pkg* (``apt-get source
        --download-only``: its ``.dsc`` and tarballs) into *dest*, once;
        return the ``.dsc``.  Needs *kind* ``deb-src``."""
        dest.mkdir(parents=True, exist_ok=True)
        for attempt in (False, True):
            self.update(force=attempt)
            res = subprocess.run(["apt-get", *self.options(), "-qq",
                                  "source", "--download-only", pkg],
                                 cwd=dest, capture_output=True, text=True,
                                 check=False)
            dscs = list(dest.glob(f"{pkg}_*.dsc"))
            if res.returncode == 0 and dscs:
                return newest_dsc(dscs)
        raise RuntimeError(f"apt-get source {pkg} failed: "
                           f"{res.stderr.strip()}")


def source_main(argv: list[str]) -> int:
    """``backports.py source CACHE-DIR SUITE PKG DEST``: download a source
    package through a private deb-src list in CACHE-DIR; print its .dsc."""
    root, suite, pkg, dest = argv
    apt = PrivateApt(Path(root), suites=(suite,), kind="deb-src")
    print(apt.source(pkg, Path(dest)))
    return 0


def extract(deb: Path, dest: Path) -> None:
    """Unpack *deb*'s files into *dest* (``dpkg-deb -x``)."""
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], check=True)


def unpack_source(deb: Path, member: str, dest: Path,
                  quiet: bool = False) -> None:
    """Unpack the kernel source tarball *member* (``./usr/src/...tar.xz``)
    of the source package *deb* into *dest* (its top directory
    stripped), through a pipe: the tarball is never written out.
    *dest* is replaced only once the whole tree is there."""
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if not quiet:
        print(f"backports: unpacking {deb.name} into {dest}",
              file=sys.stderr, flush=True)
    cmd = (f"dpkg-deb --fsys-tarfile {_q(deb)} | tar -xOf - {_q(member)} "
           f"| tar -xJf - --strip-components=1 -C {_q(tmp)}")
    subprocess.run(["bash", "-o", "pipefail", "-c", cmd], check=True)
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)


def _q(path: str | os.PathLike) -> str:
    return "'" + os.fspath(path).replace("'", "'\\''") + "'"


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "source":
        sys.exit(source_main(sys.argv[2:]))
    print("usage: backports.py source CACHE-DIR SUITE PKG DEST",
          file=sys.stderr)
    sys.exit(2)
