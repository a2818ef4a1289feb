"""Addresses: the auth server's pages, and what a URL says about where it goes.

Pure string work, no I/O. URLs are parsed with urllib3's own parser, the one
that decides where urllib3 (and so requests) actually connects.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, NamedTuple

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "DEFAULT_SERVER_ADDRESS", "HostPatterns", "Origin", "new_token_url",
    "normalize_server_address", "origin_key", "parse_origin", "same_origin",
    "server_netloc", "token_page_url", "user_cache_url",
]  # fmt: skip

DEFAULT_SERVER_ADDRESS = "https://global.daf-apis.com"
"""The global CAVE auth server, CAVEclient's default."""

_CREATE_TOKEN_PATH = "/auth/api/v1/create_token"
_TOKENS_PAGE_PATH = "/sticky_auth/settings/tokens"
_USER_CACHE_PATH = "/auth/api/v1/user/cache"


class Origin(NamedTuple):
    """Where a URL goes: what the token's scope and file names are decided on."""

    scheme: str
    """Lower case, e.g. ``"https"``."""
    host: str
    """Lower case, as written (a trailing dot kept: ``localhost.`` is resolved through
    DNS, ``localhost`` is not); an IPv6 address keeps its brackets."""
    port: int | None
    """The port written in the URL, if any."""

    @property
    def netloc(self) -> str:
        """``host`` or ``host:port``, as written (an explicit default port is kept)."""
        return self.host if self.port is None else f"{self.host}:{self.port}"

    @property
    def name(self) -> str:
        """The host without a trailing dot (IPv6 keeps its brackets): what files are named for."""
        return self.host.rstrip(".") or self.host

    @property
    def ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        """The host as an IP address, or ``None`` for a name."""
        return _ip_address(self.host.strip("[]"))

    @property
    def is_loopback(self) -> bool:
        """Whether the host is ``localhost``, in ``127.0.0.0/8`` or ``::1``: never resolved
        through DNS (``localhost.`` and ``127.0.0.1.`` are, so they are not loopback)."""
        if self.host == "localhost":
            return True
        ip = self.ip
        return ip is not None and ip.is_loopback

    @property
    def file_netloc(self) -> str:
        """:attr:`name`, with ``:port`` where written: what secret files are named for."""
        return self.name if self.port is None else f"{self.name}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.netloc}"


class HostPatterns:
    """A ``hosts=`` allow-list: exact names, ``*.example.org`` for subdomains, IP addresses.

    Entries are normalised as the URLs they are matched against are: names
    lower-cased and IDNA-encoded (requests sends ``bücher.example`` as
    ``xn--bcher-kva.example``), a trailing dot dropped, IP addresses compared as
    addresses (``::1`` matches ``[0:0::1]``). An entry that could match nothing
    is refused.

    Raises:
        TypeError: an entry is not a string.
        ValueError: an entry is not a host name, a ``*.`` pattern or an IP address.
    """

    __slots__ = ("ips", "names", "suffixes")

    def __init__(self, hosts: Iterable[str]) -> None:
        names: set[str] = set()
        ips: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
        suffixes: list[str] = []
        for entry in hosts:
            if not isinstance(entry, str):
                raise TypeError(f"hosts entries must be strings, not {type(entry).__name__}.")
            text = entry.strip()
            wildcard = text.startswith("*.")
            bare = text[2:] if wildcard else text
            ip = _ip_address(bare.strip("[]"))
            if ip is not None and not wildcard:
                ips.add(ip)
                continue
            if bare.startswith("."):
                raise ValueError(
                    f"hosts entry {entry!r} would match nothing; write '*{bare}' for the "
                    f"subdomains of {bare[1:]!r}, and add {bare[1:]!r} for the host itself."
                )
            host = _host_name(bare)
            if host is None or ip is not None:
                raise ValueError(
                    f"hosts entry {entry!r} is not a host name; give names such as "
                    "'minnie.example.org' or '*.example.org', or an IP address "
                    "(no scheme, port or path)."
                )
            if wildcard:
                suffixes.append("." + host)
            else:
                names.add(host)
        self.names = frozenset(names)
        self.ips = frozenset(ips)
        self.suffixes = tuple(suffixes)

    def matches(self, origin: Origin) -> bool:
        """Whether a request to ``origin`` is one the list allows."""
        ip = origin.ip
        if ip is not None:
            return ip in self.ips  # "*.0.0.1" is no pattern for 127.0.0.1
        name = origin.name
        return name in self.names or any(
            name.endswith(suffix) and len(name) > len(suffix) for suffix in self.suffixes
        )


def _ip_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _host_name(text: str) -> str | None:
    """A host name as urllib3 would connect to it (lower case, IDNA), or ``None``."""
    if not text or any(character in text for character in "/:@*?#[]\\% "):
        return None
    try:
        host = parse_url("https://" + text).host
    except (LocationParseError, ValueError, UnicodeError):
        return None
    host = (host or "").lower().rstrip(".")
    return host or None


def origin_key(url: str) -> str:
    """A prefix of ``url`` that holds its scheme and its whole authority: a cheap key
    for its origin (for http(s): ``scheme://authority``, as written).

    Two URLs with the same key go to the same origin (the converse need not
    hold: ``HTTPS://Host`` and ``https://host`` differ as keys).
    """
    end = url.find("/", 8)  # an http(s) authority begins at 7 or 8: it ends there, at a "/"
    key = url if end < 0 else url[:end]
    if "://" in key and "?" not in key and "#" not in key:
        return key
    end = url.find("/", url.find("://") + 3)
    key = url[:end] if end >= 0 else url
    return key.split("?", 1)[0].split("#", 1)[0]  # no path: it ends at a query or fragment


def same_origin(key: str, other: str) -> bool:
    """Whether two URLs (or :func:`origin_key` keys) go to the same scheme, host and port."""
    return key == other or parse_origin(key) == parse_origin(other) is not None


def parse_origin(url: str) -> Origin | None:
    """The scheme, host and port a URL goes to, or ``None`` if it names no host.

    User info (``user:password@``) is dropped: it never decides where a request goes.
    """
    try:
        parsed = parse_url(url)
    except (LocationParseError, ValueError, TypeError):
        return None
    if not parsed.scheme or not parsed.host:
        return None
    host = parsed.host.lower()
    return Origin(parsed.scheme.lower(), host, parsed.port)


def normalize_server_address(server_address: str | None) -> str:
    """The auth server's base URL: ``https://`` added where there is no scheme.

    ``None`` gives :data:`DEFAULT_SERVER_ADDRESS`. A trailing slash is dropped.

    Raises:
        ValueError: the address names no host, or not over http(s).
    """
    if server_address is None:
        return DEFAULT_SERVER_ADDRESS
    if not isinstance(server_address, str):
        raise TypeError(
            f"server_address must be a URL string, not {type(server_address).__name__}."
        )
    address = server_address.strip()
    if "://" not in address:
        address = "https://" + address
    origin = parse_origin(address)
    if origin is None or origin.scheme not in ("http", "https"):
        raise ValueError(
            f"server_address {server_address!r} is not an http(s) URL with a host, "
            f"such as {DEFAULT_SERVER_ADDRESS!r}."
        )
    return address.rstrip("/")


def server_netloc(server_address: str | None) -> str:
    """The netloc of the auth server, as CAVEclient names its server file after it."""
    origin = parse_origin(normalize_server_address(server_address))
    assert origin is not None  # normalize_server_address checked it
    return origin.netloc


def new_token_url(server_address: str | None = None) -> str:
    """The page that creates a new token (it may invalidate the previous one)."""
    return normalize_server_address(server_address) + _CREATE_TOKEN_PATH


def token_page_url(server_address: str | None = None) -> str:
    """The page that lists the tokens you already have."""
    return normalize_server_address(server_address) + _TOKENS_PAGE_PATH


def user_cache_url(server_address: str | None = None) -> str:
    """The JSON description of the token's user, what services check a token with."""
    return normalize_server_address(server_address) + _USER_CACHE_PATH
