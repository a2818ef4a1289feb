"""Case 19: the token appears nowhere but on the wire and in ``cave-auth token``.

The whole flow runs with DEBUG logging for the root, urllib3, requests and this
package, every warning recorded, every error kept: lookups from files, requests
that succeed, are refused, are retried, the errors of the tree, and the
commands. Then every text those produced is searched for every token used.
"""

from __future__ import annotations

import json
import logging
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
import requests

from _loopback import Server
from cave_requests_auth import (
    AuthResponseError,
    CAVEAuthAdapter,
    CAVEAuthError,
    CAVEPoolManager,
    CAVETokenAuth,
    InsecureTransportError,
    InvalidTokenError,
    TokenFileError,
    TokenNotFoundError,
    find_token,
    raise_for_auth,
    whoami,
)
from helpers import (
    INVALID_TOKEN,
    OTHER_TOKEN,
    VALID_TOKEN,
    Service,
    run_cli,
    write_secret,
)

TOKENS = (VALID_TOKEN, OTHER_TOKEN, INVALID_TOKEN)
LOGGERS = ("", "urllib3", "requests", "cave_requests_auth")
FORMAT = logging.Formatter("%(levelname)s %(name)s %(message)s")


class Texts:
    """Every text a user or a log collector could see, gathered during a test."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog
        self.warnings: list[warnings.WarningMessage] = []
        self.errors: list[BaseException] = []
        self.objects: list[Any] = []
        self.outputs: list[str] = []

    def expect(self, error: type[BaseException], call: Callable[[], Any]) -> BaseException:
        """Run ``call``, which must raise ``error``; keep the error."""
        with pytest.raises(error) as info:
            call()
        self.errors.append(info.value)
        return info.value

    def all(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for number, record in enumerate(self.caplog.records):
            found[f"log {number} message"] = record.getMessage()
            found[f"log {number} args"] = repr(record.args)
            found[f"log {number} formatted"] = FORMAT.format(record)
        for number, warning in enumerate(self.warnings):
            found[f"warning {number}"] = f"{warning.message} {warning.message!r}"
        for number, error in enumerate(self.errors):
            found[f"error {number}"] = "\n".join(
                [
                    str(error),
                    repr(error),
                    repr(error.args),
                    "".join(traceback.format_exception(type(error), error, error.__traceback__)),
                ]
            )
        for number, thing in enumerate(self.objects):
            found[f"object {number}"] = f"{thing!s} {thing!r}"
        for number, output in enumerate(self.outputs):
            found[f"output {number}"] = output
        return found

    def assert_no_token(self) -> None:
        texts = self.all()
        assert texts  # something was gathered
        leaks = [name for name, text in texts.items() if any(t in text for t in TOKENS)]
        assert leaks == []


@pytest.fixture
def texts(caplog: pytest.LogCaptureFixture) -> Iterator[Texts]:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    gathered = Texts(caplog)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gathered.warnings = caught
        yield gathered


class TestLeaks:
    def test_the_whole_flow(
        self,
        texts: Texts,
        service: Service,
        recorder: Server,
        secrets: Path,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        default = write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN}, 0o644)
        localhost_file = secrets / f"localhost:{service.port}-cave-secret.json"
        write_secret(localhost_file, {"token": INVALID_TOKEN})

        # Lookups, and the objects that describe them.
        source = find_token(service.url("/"))
        auth = CAVETokenAuth(server_address=service.url(""))
        explicit = CAVETokenAuth(OTHER_TOKEN)
        adapter = CAVEAuthAdapter(auth)
        pool = CAVEPoolManager(auth)
        texts.objects += [source, auth, explicit, adapter, pool]
        texts.objects.append(auth.attachment_for(service.url("/")))
        texts.objects.append(explicit.attachment_for(service.url("/")))

        # Requests: accepted, refused (401 with a file token, 401 with an invalid
        # token, 403), through the session, the adapter and the pool manager.
        with requests.Session() as session:
            session.auth = auth
            assert session.get(service.url("/api/data")).json()["user"] == "Ada"
            assert session.get(service.url("/always401")).status_code == 401
            assert session.get(service.url("/always403")).status_code == 403
            assert session.get(service.url("/api/data", "localhost")).status_code == 401
            assert session.get(service.redirect(service.url("/api/data"), 307)).status_code == 200
        with requests.Session() as session:
            session.mount(service.url("/"), adapter)
            assert session.get(service.url("/api/data")).status_code == 200
        assert pool.request("GET", service.url("/api/data")).status == 200
        assert pool.request("GET", service.url("/always401")).status == 401

        # A retry after the token file changed (logged at INFO).
        with requests.Session() as session:
            session.auth = auth
            write_secret(localhost_file, {"token": OTHER_TOKEN})
            retried = session.get(service.url("/api/data", "localhost"))
            assert [r.status_code for r in retried.history] == [401]
            assert retried.json()["user"] == "Grace"
        texts.objects.append(auth)  # its repr after use

        # Every error of the tree, raised where a user meets it.
        strict = CAVETokenAuth(raise_on_auth_error=True)
        write_secret(localhost_file, {"token": INVALID_TOKEN})
        texts.expect(
            AuthResponseError,
            lambda: requests.get(service.url("/api/data", "localhost"), auth=strict),
        )
        texts.expect(
            AuthResponseError, lambda: requests.get(service.url("/always401"), auth=strict)
        )
        texts.expect(
            AuthResponseError, lambda: requests.get(service.url("/always403"), auth=strict)
        )
        texts.expect(
            AuthResponseError, lambda: requests.get(service.url("/api/minnie/edit"), auth=strict)
        )
        refused = requests.get(service.url("/api/data"), auth=CAVETokenAuth(INVALID_TOKEN))
        texts.expect(AuthResponseError, lambda: raise_for_auth(refused))
        texts.expect(requests.HTTPError, lambda: refused.raise_for_status())
        texts.expect(
            AuthResponseError,
            lambda: whoami(CAVETokenAuth(INVALID_TOKEN), server_address=service.url("")),
        )
        texts.expect(
            AuthResponseError,
            lambda: requests.get(
                recorder.url("/403-echo"), auth=CAVETokenAuth(VALID_TOKEN, raise_on_auth_error=True)
            ),
        )
        bad = tmp_path / "bad.json"
        write_secret(bad, {"token": f"{VALID_TOKEN}\r\nX-Injected: {OTHER_TOKEN}"})
        texts.expect(
            InvalidTokenError,
            lambda: requests.get(service.url("/"), auth=CAVETokenAuth(token_file=bad)),
        )
        texts.expect(InvalidTokenError, lambda: CAVETokenAuth(f"{VALID_TOKEN} {OTHER_TOKEN}"))
        texts.expect(InvalidTokenError, lambda: CAVETokenAuth(VALID_TOKEN.encode()))  # type: ignore[arg-type]
        corrupt = write_secret(tmp_path / "corrupt.json", f'{{"token": "{VALID_TOKEN}", "x": ')
        texts.expect(TokenFileError, lambda: find_token(token_file=corrupt))
        duplicate = write_secret(
            tmp_path / "duplicate.json", f'{{"token": "{VALID_TOKEN}", "token": "{OTHER_TOKEN}"}}'
        )
        texts.expect(TokenFileError, lambda: find_token(token_file=duplicate))
        texts.expect(TokenNotFoundError, lambda: find_token(secrets_dir=tmp_path / "empty"))
        texts.expect(
            TokenNotFoundError,
            lambda: requests.get(
                service.url("/"), auth=CAVETokenAuth(secrets_dir=tmp_path / "empty")
            ),
        )
        texts.expect(
            InsecureTransportError,
            lambda: requests.get("http://minnie.example.invalid/", auth=CAVETokenAuth(VALID_TOKEN)),
        )
        texts.expect(
            InsecureTransportError, lambda: pool.request("GET", "http://minnie.example.invalid/")
        )
        # The deprecated file and the readable default file gave warnings.
        deprecated = tmp_path / "old"
        write_secret(deprecated / "chunkedgraph-secret.json", {"token": OTHER_TOKEN})
        assert find_token(secrets_dir=deprecated).token == OTHER_TOKEN
        assert {w.category.__name__ for w in texts.warnings} >= {
            "TokenFileModeWarning",
            "DeprecatedTokenFileWarning",
        }
        assert (
            sum(isinstance(error, CAVEAuthError) for error in texts.errors) == len(texts.errors) - 1
        )

        # The command, every subcommand but `token`.
        server = ["--server", service.url("")]
        for argv, stdin, expected in [
            (("status",), "", 0),
            (("status", "--check", *server), "", 0),
            (("status", "https://minnie.example.org/"), "", 0),
            (("save", OTHER_TOKEN, *server), "", 0),
            (("save", "-", *server), VALID_TOKEN + "\n", 0),
            (("save", f"{VALID_TOKEN};x"), "", 1),
            (("login", "--no-verify", *server), OTHER_TOKEN + "\n", 0),
            (("login", "--no-verify", "--existing"), f"{VALID_TOKEN} {OTHER_TOKEN}\n", 1),
            (("login", *server), INVALID_TOKEN + "\n", 1),
            (("login", *server), VALID_TOKEN + "\n", 0),
            (("whoami", *server), "", 0),
            (("whoami", "--token-file", str(bad), *server), "", 1),
            (("status", "--token-file", str(corrupt)), "", 1),
            (("logout", *server), "", 0),
            (("status", *server), "", 1),
            (("whoami", *server), "", 1),
        ]:
            code, out, err = run_cli(capsys, *argv, stdin=stdin)
            output = out + err
            assert code == expected
            assert "Traceback" not in output
            texts.outputs.append(output)
        write_secret(default, {"token": VALID_TOKEN})
        code, out, err = run_cli(capsys, "token", stdin="")
        assert (code, out + err) == (0, VALID_TOKEN + "\n")  # its one job

        assert len(texts.caplog.records) > 10
        assert any(r.name.startswith("urllib3") for r in texts.caplog.records)
        texts.assert_no_token()
        out, err = capsys.readouterr()
        assert all(token not in out + err for token in TOKENS)

    @pytest.mark.parametrize(
        "path",
        [
            "/403-echo",
            pytest.param(
                "/403-permission-echo",
            ),
        ],
    )
    def test_a_server_echoing_the_token_in_its_answer(
        self, texts: Texts, recorder: Server, path: str
    ) -> None:
        url = recorder.url(path)
        strict = CAVETokenAuth(VALID_TOKEN, raise_on_auth_error=True)
        texts.expect(AuthResponseError, lambda: requests.get(url, auth=strict))
        response = requests.get(url, auth=CAVETokenAuth(VALID_TOKEN))  # logged once instead
        assert VALID_TOKEN in response.text  # the server did echo it
        texts.expect(AuthResponseError, lambda: raise_for_auth(response))
        texts.assert_no_token()

    def test_a_server_echoing_the_new_token_after_a_retry(
        self, texts: Texts, recorder: Server, secrets: Path
    ) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": INVALID_TOKEN})
        auth = CAVETokenAuth(raise_on_auth_error=True)
        auth(requests.Request("GET", recorder.url("/")).prepare())  # INVALID_TOKEN cached
        write_secret(path, {"token": VALID_TOKEN})
        error = texts.expect(
            AuthResponseError, lambda: requests.get(recorder.url("/403-echo-accepted"), auth=auth)
        )
        assert isinstance(error, AuthResponseError)
        assert [hit.authorization for hit in recorder.seen] == [
            f"Bearer {INVALID_TOKEN}",
            f"Bearer {VALID_TOKEN}",
        ]
        texts.assert_no_token()

    def test_pickled_session_and_auth_hold_no_token(self, service: Service, secrets: Path) -> None:
        import pickle

        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        with requests.Session() as session:
            session.auth = CAVETokenAuth()
            session.mount(service.url("/"), CAVEAuthAdapter(CAVETokenAuth()))
            session.get(service.url("/api/data"))
            data = pickle.dumps(session)
        assert VALID_TOKEN.encode() not in data
        assert json.dumps(session.auth.__getstate__(), default=str).find(VALID_TOKEN) == -1
