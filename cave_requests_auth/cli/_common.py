"""What the commands share: the common options, the token rules, asking the auth server."""

from __future__ import annotations

import argparse
import os
import shlex
from typing import TYPE_CHECKING, Any

import requests

from ..account import AuthServer, find_auth_server, missing_terms, user_of
from ..core import Credentials
from ..errors import AuthResponseError, InsecureTransportError
from ..lookup import TokenPlaces
from ..store import save_token
from ..text import printable
from ..tokens import CAVE_TOKEN_ENV, DEFAULT_TOKEN_KEY, mask_token
from ..urls import DEFAULT_SERVER_ADDRESS, normalize_server_address, parse_origin
from ._output import PROG, CommandError

if TYPE_CHECKING:
    from ..tokens import TokenSource
    from ..wire import Attachment
    from ._output import Output

COMMON_OPTIONS = ("server", "secrets_dir", "token_file", "token_key")


def _server(text: str) -> str:
    try:
        return normalize_server_address(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an http(s) address, such as {DEFAULT_SERVER_ADDRESS}"
        ) from None


def _not_empty(what: str) -> Any:
    def check(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"{what} must not be empty")
        return text

    return check


def add_common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The options every command takes, before or after its name.

    The main parser holds the defaults; a command's parser (``suppress``) sets
    only what is given after the command's name, so neither undoes the other.
    """
    group = parser.add_argument_group("where the token lives (before or after the command)")

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    group.add_argument(
        "--server",
        metavar="URL",
        type=_server,
        default=default(None),
        help=f"the CAVE auth server (default: {DEFAULT_SERVER_ADDRESS})",
    )
    group.add_argument(
        "--secrets-dir",
        metavar="DIR",
        type=_not_empty("--secrets-dir"),
        default=default(None),
        help="folder of the secret files (default: $CLOUD_VOLUME_DIR/secrets, "
        "else ~/.cloudvolume/secrets)",
    )
    group.add_argument(
        "--token-file",
        metavar="FILE",
        type=_not_empty("--token-file"),
        default=default(None),
        help="use this JSON file only",
    )
    group.add_argument(
        "--token-key",
        metavar="KEY",
        type=_not_empty("--token-key"),
        default=default(DEFAULT_TOKEN_KEY),
        help=f"key of the token in the JSON files (default: {DEFAULT_TOKEN_KEY})",
    )


def places_of(args: argparse.Namespace) -> TokenPlaces:
    return TokenPlaces.of(args.server, args.token_file, args.token_key, args.secrets_dir)


def server_of(args: argparse.Namespace) -> str:
    return str(args.server or DEFAULT_SERVER_ADDRESS)


def auth_of(args: argparse.Namespace) -> Credentials:
    """The auth a request would use with these options."""
    return Credentials(
        server_address=args.server,
        token_file=args.token_file,
        token_key=args.token_key,
        secrets_dir=args.secrets_dir,
    )


def same_options(args: argparse.Namespace) -> str:
    """The common options given, as they would be typed again (with a leading space)."""
    words = []
    for name in COMMON_OPTIONS:
        value = getattr(args, name)
        if value is not None and not (name == "token_key" and value == DEFAULT_TOKEN_KEY):
            words += ["--" + name.replace("_", "-"), shlex.quote(str(value))]
    return "".join(" " + word for word in words)


def refused_over_http(origin: object) -> CommandError:
    return CommandError(
        f"a request to {origin} gets no CAVE token: plain http is allowed only to this "
        "machine (localhost, 127.0.0.1, ::1) and not through a proxy; use https://."
    )


def attachment_for(auth: Credentials, url: str) -> Attachment | None:
    """What a request to ``url`` would carry, by the rules every request follows.

    Raises:
        CommandError: ``url`` is not an http(s) URL (status 2), or the rules
            refuse to send a token there (plain http to another machine).
        TokenNotFoundError, InvalidTokenError, TokenFileError: from the lookup.
    """
    origin = parse_origin(url)
    if origin is None:
        raise CommandError(
            f"{url!r} is not a URL; give a full one, such as https://minnie.example.org/…", 2
        )
    if origin.scheme not in ("http", "https"):
        raise CommandError(
            f"{url} is not an http(s) URL; a CAVE token goes only to https:// addresses "
            "(or plain http:// on this machine).",
            2,
        )
    try:
        return auth.attachment_for(url)
    except InsecureTransportError:
        raise refused_over_http(origin) from None


def unreachable(error: requests.RequestException, doing: str) -> str:
    """``cannot reach https://host to <doing> (ConnectionError)``."""
    request = error.request
    origin = parse_origin(str(request.url)) if request is not None else None
    return f"cannot reach {origin or 'the server'} to {doing} ({type(error).__name__})"


def check_with_server(
    source: TokenSource, target: str, issuers: dict[str, AuthServer] | None = None
) -> tuple[dict[str, Any], AuthServer]:
    """Ask the auth server of ``target`` whose the token of ``source`` is.

    Args:
        issuers: auth servers already found, by origin (filled in).

    Raises:
        AuthResponseError: the token was refused, or the server is no auth server.
        CommandError: a server could not be reached, or would get the token over http.
    """
    key = str(parse_origin(target))
    try:
        issuer = (issuers or {}).get(key)
        if issuer is None:
            issuer = find_auth_server(target)
            if issuers is not None:
                issuers[key] = issuer
    except requests.RequestException as error:
        raise CommandError(
            unreachable(error, "find its auth server") + "; check the address and the network."
        ) from None
    try:
        return user_of(source, issuer), issuer
    except InsecureTransportError:
        raise refused_over_http(issuer) from None
    except AuthResponseError:
        raise
    except requests.RequestException as error:
        raise CommandError(
            unreachable(error, "check the token") + "; check the address and the network."
        ) from None


def describe_user(user: dict[str, Any]) -> str:
    """``Ada <ada@example.org>, user id 1``, without control characters."""
    name = printable(str(user.get("name") or "(no name)"))
    email = f" <{printable(str(user['email']))}>" if user.get("email") else ""
    return f"{name}{email}, user id {printable(str(user.get('id')))}"


def user_lines(user: dict[str, Any], issuer: AuthServer) -> list[tuple[str, str]]:
    """(label, text) lines about a user: who, groups, terms of service not accepted."""
    lines = [("user", f"{describe_user(user)} (asked {issuer})")]
    groups = user.get("groups")
    if isinstance(groups, list) and groups:
        lines.append(("groups", ", ".join(printable(str(group)) for group in groups)))
    for name, dataset, url in missing_terms(user, issuer):
        lines.append(
            (
                "terms",
                f"not accepted: '{printable(name)}' (dataset {printable(dataset)}); "
                f"accept them at {printable(url)}",
            )
        )
    return lines


def warn_if_environment_wins(io: Output, what: str) -> None:
    if os.environ.get(CAVE_TOKEN_ENV, "").strip():
        io.warn(
            f"{CAVE_TOKEN_ENV} is set, so requests use it, not {what}; unset it to use the files."
        )


def save(io: Output, args: argparse.Namespace, token: str) -> None:
    """Save ``token`` as the options say (replacing a token there), and say where."""
    paths = save_token(
        token,
        args.server,
        token_file=args.token_file,
        token_key=args.token_key,
        secrets_dir=args.secrets_dir,
        overwrite=True,
        write_server_file=args.token_file is None,
    )
    io.good(f"Saved the token ({mask_token(token)}) to:")
    for path in paths:
        io.say(f"  {path}")
    warn_if_environment_wins(io, "the saved token")


def example(text: str) -> str:
    return f"example:\n  {text}"


__all__ = [
    "PROG",
    "CommandError",
    "add_common",
    "attachment_for",
    "auth_of",
    "check_with_server",
    "describe_user",
    "example",
    "places_of",
    "same_options",
    "save",
    "server_of",
    "unreachable",
    "user_lines",
    "warn_if_environment_wins",
]
