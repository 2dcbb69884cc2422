import pytest

from asr.corpora.system import DEFAULT_MIRROR, parse_release
from asr.errors import AsrError

DEB822 = """Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example.org/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://mirror.example.org/debian-security
Suites: bookworm-security
"""


def test_release_and_mirror_come_from_the_machine_sources():
    release = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_CODENAME=bookworm\n'
    # The commented snapshot archive and the security archive are not the mirror.
    assert parse_release(release, DEB822) == ("bookworm", "http://mirror.example.org/debian")
    assert parse_release(release, "deb https://deb.example.net/debian/ bookworm main\n") == \
        ("bookworm", "https://deb.example.net/debian")
    assert parse_release(release, "") == ("bookworm", DEFAULT_MIRROR)
    third_party = "deb [arch=amd64] https://download.example.com/linux/debian bookworm stable\n"
    assert parse_release(release, third_party + DEB822) == ("bookworm", "http://mirror.example.org/debian")
    with pytest.raises(AsrError, match="codename"):
        parse_release('NAME="Something"\n', DEB822)
