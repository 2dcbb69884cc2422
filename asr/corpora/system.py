"""Installing missing Debian packages on demand (the TTS engines and text sources of the synthetic recipe)."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from asr.errors import AsrError

# Components beyond main that hold packages we use: MBROLA's engine (contrib) and its voices (non-free).
EXTRA_COMPONENTS = ("contrib", "non-free")
DEFAULT_MIRROR = "http://deb.debian.org/debian"


def missing(packages: list[str]) -> list[str]:
    """The packages of ``packages`` that dpkg does not list as installed."""
    absent = []
    for pkg in packages:
        status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
        if "install ok installed" not in status.stdout:
            absent.append(pkg)
    return absent


def ensure(packages: list[str]) -> None:
    """Install whichever of ``packages`` are missing, with apt-get (as root, or through passwordless sudo).

    A package that the machine's apt sources do not offer (many list only Debian's main component) is
    fetched from Debian's contrib and non-free components through a private source list, so the machine's
    own apt configuration is left as it was.
    """
    if not shutil.which("dpkg-query"):
        return  # not Debian: the programs' own absence is reported when they are run
    absent = missing(packages)
    if not absent:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    print(f"installing Debian packages: {' '.join(absent)}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = sudo + ["apt-get", "install", "-y", "-q", "--no-install-recommends"]
    if _quiet(install + absent, env):
        return
    _quiet(sudo + ["apt-get", "update", "-q"], env)
    offered = [p for p in absent if _offered(p)]
    extra = [p for p in absent if p not in offered]
    if offered and not _quiet(install + offered, env):
        raise AsrError(f"could not install Debian packages {' '.join(offered)}: "
                       f"run 'sudo apt-get install {' '.join(offered)}'")
    if extra:
        with tempfile.TemporaryDirectory() as tmp:
            debs = _download_extra(extra, Path(tmp), sudo, env)
            # apt-get installs local .deb files and takes their dependencies in main from the usual sources.
            if not _quiet(install + [str(d) for d in debs], env):
                raise AsrError(f"could not install {' '.join(extra)} from Debian's {' and '.join(EXTRA_COMPONENTS)}")


def unpack(package: str, folder: str | os.PathLike) -> tuple[Path, str]:
    """``package``'s files, unpacked (never installed: no root, no scripts run) into ``folder/package/``; returns
    that folder and the Debian version. Done once: a ``.version`` file marks a finished unpacking.

    The games' data (asr.corpora.games) comes this way: their licences allow redistribution but not sale, so we
    fetch them from Debian when they are needed and never ship them.
    """
    root = Path(folder) / package
    marker = root / ".version"
    if marker.exists():
        return root, marker.read_text().strip()
    Path(folder).mkdir(parents=True, exist_ok=True)
    # Games read in parallel processes share packages (scummvm-data): one process fetches, the others wait and
    # find it unpacked. Unlocked, one deleted the .deb the other had just downloaded.
    with open(Path(folder) / f".{package}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return root, marker.read_text().strip()
        return _fetch(package, Path(folder), root, marker)


def _fetch(package: str, folder: Path, root: Path, marker: Path) -> tuple[Path, str]:
    debs = folder / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    for old in debs.glob(f"{package}_*.deb"):
        old.unlink()
    proc = subprocess.run(["apt-get", "-o", "APT::Sandbox::User=root", "download", package], cwd=debs,
                          capture_output=True, text=True)
    found = sorted(debs.glob(f"{package}_*.deb"))
    if proc.returncode != 0 or not found:
        lines = proc.stderr.strip().splitlines()
        raise AsrError(f"Debian package {package}: could not download it "
                       f"({lines[-1] if lines else 'apt-get download failed'}; try 'apt-get update')")
    shutil.rmtree(root, ignore_errors=True)
    if subprocess.run(["dpkg-deb", "-x", str(found[0]), str(root)], capture_output=True).returncode != 0:
        raise AsrError(f"{found[0]}: not a Debian package dpkg-deb can unpack")
    version = found[0].stem.split("_")[1].replace("%3a", ":")
    marker.write_text(version + "\n")
    found[0].unlink()  # the unpacked files are what we read; the .deb would double the disk used
    return root, version


def _quiet(cmd: list[str], env: dict[str, str]) -> bool:
    return subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


def _offered(package: str) -> bool:
    """Whether the machine's apt sources offer ``package`` (apt-cache knows a candidate version)."""
    out = subprocess.run(["apt-cache", "policy", package], capture_output=True, text=True).stdout
    candidate = re.search(r"Candidate:\s*(\S+)", out)
    return bool(candidate) and candidate.group(1) != "(none)"


def _suite_and_mirror() -> tuple[str, str]:
    """This machine's Debian release codename and the Debian mirror its apt sources use."""
    files = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    sources = "\n".join(p.read_text(errors="replace") for p in files
                        if p.is_file() and p.suffix in ("", ".list", ".sources"))
    release = Path("/etc/os-release").read_text() if Path("/etc/os-release").exists() else ""
    return parse_release(release, sources)


def parse_release(os_release: str, sources: str) -> tuple[str, str]:
    """(codename, mirror) from the text of /etc/os-release and of the apt source files (one-line or deb822)."""
    codename = re.search(r"^VERSION_CODENAME=\"?(\w+)", os_release, re.M)
    if not codename:
        raise AsrError("cannot tell this Debian release's codename from /etc/os-release")
    text = "\n".join(line.split("#", 1)[0] for line in sources.splitlines())  # comments name other archives
    # An entry is a one-line "deb URL SUITE COMPONENTS" or a deb822 stanza; only one for this release's own suite
    # and main component is Debian's archive (a third-party repository may also end in /debian).
    entries = [line for line in text.splitlines() if line.strip().startswith("deb ")] + re.split(r"\n\s*\n", text)
    for entry in entries:
        mirror = re.search(r"(https?://\S+/debian)/?(?:\s|$)", entry)
        if mirror and re.search(rf"\b{codename.group(1)}\b(?!-)", entry) and re.search(r"\bmain\b", entry):
            return codename.group(1), mirror.group(1)
    return codename.group(1), DEFAULT_MIRROR


def _download_extra(packages: list[str], folder: Path, sudo: list[str], env: dict[str, str]) -> list[Path]:
    """Download ``packages`` (.deb files) from Debian's contrib and non-free into ``folder``."""
    suite, mirror = _suite_and_mirror()
    (folder / "lists" / "partial").mkdir(parents=True)
    (folder / "sources.list").write_text(f"deb {mirror} {suite} {' '.join(EXTRA_COMPONENTS)}\n")
    # No sandbox user: apt would hand lists/partial to _apt (mode 0700), which a non-root caller cannot clean up.
    private = ["-o", f"Dir::Etc::sourcelist={folder / 'sources.list'}", "-o", "Dir::Etc::sourceparts=-",
               "-o", f"Dir::State::Lists={folder / 'lists'}", "-o", "APT::Sandbox::User=root"]
    if not _quiet(sudo + ["apt-get", *private, "update", "-q"], env):
        raise AsrError(f"could not read Debian's {' and '.join(EXTRA_COMPONENTS)} package lists from {mirror}")
    proc = subprocess.run(["apt-get", *private, "download", *packages], cwd=folder, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        reason = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "apt-get download failed"
        raise AsrError(f"could not download Debian packages {' '.join(packages)}: {reason}")
    debs = sorted(folder.glob("*.deb"))
    os.chmod(folder, 0o755)  # apt's unprivileged _apt user reads the files while installing them
    return debs


if __name__ == "__main__":  # python -m asr.corpora.system PKG...: what `make` uses to install test and demo needs
    import sys

    try:
        ensure(sys.argv[1:])
    except AsrError as e:
        print(f"asr: error: {e}", file=sys.stderr)
        sys.exit(1)
