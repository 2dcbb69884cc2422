"""Installing missing Debian packages on demand (the TTS engines and text sources of the synthetic recipe)."""

from __future__ import annotations

import os
import shutil
import subprocess

from asr.errors import AsrError


def missing(packages: list[str]) -> list[str]:
    """The packages of ``packages`` that dpkg does not list as installed."""
    absent = []
    for pkg in packages:
        status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
        if "install ok installed" not in status.stdout:
            absent.append(pkg)
    return absent


def ensure(packages: list[str]) -> None:
    """Install whichever of ``packages`` are missing, with apt-get (as root, or through passwordless sudo)."""
    if not shutil.which("dpkg-query"):
        return  # not Debian: the programs' own absence is reported when they are run
    absent = missing(packages)
    if not absent:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    print(f"installing Debian packages: {' '.join(absent)}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = sudo + ["apt-get", "install", "-y", "-q", "--no-install-recommends", *absent]
    if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
        subprocess.run(sudo + ["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL).returncode != 0:
            raise AsrError(f"could not install Debian packages {' '.join(absent)}: "
                           f"run 'sudo apt-get install {' '.join(absent)}'")


if __name__ == "__main__":  # python -m asr.corpora.system PKG...: what `make` uses to install test and demo needs
    import sys

    try:
        ensure(sys.argv[1:])
    except AsrError as e:
        print(f"asr: error: {e}", file=sys.stderr)
        sys.exit(1)
