"""Interop with the real CAVEclient (the ``interop`` extra, ``tox -e interop``).

CAVEclient imports pandas and numpy (about a second), so it runs in subprocesses
with ``HOME`` set to the test's home, never in this process: the token files each
library writes are read by the other, and the same request made through a session
built by CAVEclient's own ``ClientBase`` and through ours gets the same answer
from the loopback ``middle_auth_client`` service. Without caveclient installed
the whole module is skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from cave_requests_auth import (
    DEFAULT_SERVER_ADDRESS,
    CAVETokenAuth,
    TokenFileModeWarning,
    find_token,
    save_token,
)
from helpers import (
    DEFAULT_SERVER_FILE,
    INVALID_TOKEN,
    OTHER_TOKEN,
    VALID_TOKEN,
    Service,
    assert_retried_with_the_new_token,
)

TIMEOUT = 60  # seconds for one subprocess; each takes about one (the caveclient import)
SERVER = "https://minnie.example.org"  # only names files here: nothing is sent to it
SERVER_FILE = "minnie.example.org-cave-secret.json"

PRELUDE = """
import json, os, sys
os.umask(0o022)  # what CAVEclient's files get on most machines: 0644
args = json.loads(sys.argv[1])
def done(result):
    print(json.dumps(result))
"""

# AuthClient(**kwargs) for each entry of args["clients"]: the token and the file it read.
READ_TOKENS = """
from caveclient.auth import AuthClient
found = []
for kwargs in args["clients"]:
    client = AuthClient(**kwargs)
    found.append({"token": client.token, "file": client._token_file})
done(found)
"""

# AuthClient(**args["client"]).save_token(**args["save"]): the files now in the folder.
SAVE_TOKEN = """
from caveclient.auth import AuthClient
AuthClient(**args["client"]).save_token(**args["save"])
folder = os.path.expanduser("~/.cloudvolume/secrets")
done(sorted(os.listdir(folder)) if os.path.isdir(folder) else [])
"""

# GET each URL through the session CAVEclient's ClientBase builds for its sub-clients:
# session.headers.update(auth.request_header), and middle_auth_token in the cookie jar.
REQUEST = """
from caveclient.auth import AuthClient
from caveclient.base import ClientBase
auth = AuthClient()
base = ClientBase(
    server_address=args["server"],
    auth_header=auth.request_header,
    api_version=None,
    endpoints={},
    server_name="test_server_address",
)
answers = []
for url in args["urls"]:
    response = base.session.get(url, timeout=30)
    answers.append(
        {
            "status": response.status_code,
            "json": response.json(),
            "www_authenticate": response.headers.get("WWW-Authenticate"),
        }
    )
done(answers)
"""


@pytest.fixture(scope="module", autouse=True)
def caveclient_version() -> str:
    """caveclient's version, from a subprocess; without caveclient the module is skipped."""
    result = subprocess.run(
        [sys.executable, "-c", "import caveclient; print(caveclient.__version__)"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        said = (result.stderr.strip().splitlines() or ["import failed"])[-1]
        pytest.skip(f"caveclient is not installed ({said}); pip install -e '.[interop]'")
    return result.stdout.strip()


def caveclient(script: str, home: Path, **args: Any) -> Any:
    """Run ``script`` (after PRELUDE) with HOME at ``home``; what it passed to ``done``."""
    env = {
        "HOME": str(home),
        "CLOUD_VOLUME_DIR": str(home / ".cloudvolume"),
        "PATH": os.environ.get("PATH", os.defpath),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    result = subprocess.run(
        [sys.executable, "-c", PRELUDE + script, json.dumps(args)],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


class TestCAVEclientReadsOurFiles:
    @pytest.mark.parametrize(
        ("saves", "clients", "expected"),
        [
            pytest.param(
                [{"token": VALID_TOKEN, "server_address": SERVER}],
                [{"server_address": SERVER}, {}],
                [(VALID_TOKEN, SERVER_FILE), (VALID_TOKEN, "cave-secret.json")],
                id="server-file-and-default-file",
            ),
            pytest.param(
                [{"token": VALID_TOKEN, "server_address": SERVER, "write_server_file": False}],
                [{"server_address": SERVER}],
                [(VALID_TOKEN, "cave-secret.json")],
                id="default-file-only",
            ),
            pytest.param(
                [
                    {"token": OTHER_TOKEN, "write_server_file": False},
                    {
                        "token": VALID_TOKEN,
                        "server_address": SERVER,
                        "token_file": SERVER_FILE,
                        "write_server_file": False,
                    },
                ],
                [{"server_address": SERVER}, {"server_address": "https://other.example.org"}],
                [(VALID_TOKEN, SERVER_FILE), (OTHER_TOKEN, "cave-secret.json")],
                id="server-file-wins",
            ),
            pytest.param(
                [{"token": VALID_TOKEN, "server_address": SERVER, "token_key": "minnie"}],
                [{"server_address": SERVER, "token_key": "minnie"}, {"server_address": SERVER}],
                [(VALID_TOKEN, SERVER_FILE), (None, SERVER_FILE)],
                id="another-key",
            ),
        ],
    )
    def test_auth_client_reads_what_we_saved(
        self,
        isolated_home: Path,
        secrets: Path,
        saves: list[dict[str, Any]],
        clients: list[dict[str, Any]],
        expected: list[tuple[str | None, str]],
    ) -> None:
        for kwargs in saves:
            if "token_file" in kwargs:
                kwargs = {**kwargs, "token_file": secrets / kwargs["token_file"]}
            save_token(**kwargs)
        found = caveclient(READ_TOKENS, isolated_home, clients=clients)
        assert [(entry["token"], entry["file"]) for entry in found] == [
            (token, str(secrets / name)) for token, name in expected
        ]


@pytest.mark.filterwarnings("ignore::cave_requests_auth.TokenFileModeWarning")
class TestWeReadCAVEclientsFiles:
    def test_default_and_server_file(
        self, isolated_home: Path, secrets: Path, service: Service
    ) -> None:
        written = caveclient(
            SAVE_TOKEN,
            isolated_home,
            client={"server_address": SERVER},
            save={"token": VALID_TOKEN},
        )
        assert written == ["cave-secret.json", SERVER_FILE]
        with pytest.warns(TokenFileModeWarning, match="mode 0644"):  # CAVEclient sets no mode
            by_server = find_token(SERVER)
        assert (by_server.token, by_server.path, by_server.key) == (
            VALID_TOKEN,
            str(secrets / SERVER_FILE),
            "token",
        )
        assert find_token().path == str(secrets / "cave-secret.json")
        response = requests.get(service.url("/api/data"), auth=CAVETokenAuth())
        assert response.json()["user"] == "Ada"

    def test_another_file_and_key(
        self, isolated_home: Path, tmp_path: Path, service: Service
    ) -> None:
        path = tmp_path / "lab-secrets.json"
        caveclient(
            SAVE_TOKEN,
            isolated_home,
            client={"server_address": SERVER},
            save={
                "token": VALID_TOKEN,
                "token_key": "minnie_token",
                "token_file": str(path),
                "write_to_server_file": False,
            },
        )
        auth = CAVETokenAuth(token_file=path, token_key="minnie_token")
        assert requests.get(service.url("/api/data"), auth=auth).json()["user"] == "Ada"
        assert find_token(token_file=path, token_key="minnie_token").token == VALID_TOKEN

    @pytest.mark.parametrize(
        "server_address",
        [
            pytest.param(DEFAULT_SERVER_ADDRESS, id="server_address-given"),
            pytest.param(
                None,
                id="default-auth",
            ),
        ],
    )
    def test_a_token_replaced_by_caveclient_is_picked_up(
        self,
        isolated_home: Path,
        secrets: Path,
        service: Service,
        seen: list[dict[str, Any]],
        server_address: str | None,
    ) -> None:
        save_token(INVALID_TOKEN)  # the default file and global.daf-apis.com's
        with requests.Session() as session:
            session.auth = CAVETokenAuth(server_address=server_address)
            assert session.get(service.url("/api/data")).status_code == 401
            caveclient(  # as CAVEclient users replace a token
                SAVE_TOKEN, isolated_home, client={}, save={"token": VALID_TOKEN, "overwrite": True}
            )
            assert json.loads((secrets / DEFAULT_SERVER_FILE).read_text()) == {"token": VALID_TOKEN}
            seen.clear()
            response = session.get(service.url("/api/data"))
        assert_retried_with_the_new_token(response, seen)


class TestSameRequest:
    @pytest.mark.parametrize(
        ("token", "status", "body"),
        [
            (VALID_TOKEN, 200, {"user": "Ada", "body": ""}),
            (
                INVALID_TOKEN,
                401,
                {"error": "invalid_token", "message": "Unauthorized - Token is Invalid or Expired"},
            ),
        ],
        ids=["valid", "invalid"],
    )
    def test_same_answer_from_the_service(
        self,
        isolated_home: Path,
        service: Service,
        seen: list[dict[str, Any]],
        token: str,
        status: int,
        body: dict[str, Any],
    ) -> None:
        save_token(token)
        urls = [service.url("/api/data"), service.url("/api/data", "localhost")]
        theirs = caveclient(REQUEST, isolated_home, server=service.url(""), urls=urls)
        their_hits = list(seen)
        seen.clear()
        ours = []
        for url in urls:
            response = requests.get(url, auth=CAVETokenAuth(cookie=True))
            ours.append(
                {
                    "status": response.status_code,
                    "json": response.json(),
                    "www_authenticate": response.headers.get("WWW-Authenticate"),
                }
            )
        assert [(answer["status"], answer["json"]) for answer in ours] == [(status, body)] * 2
        assert ours == theirs
        assert [(hit["headers"]["Authorization"], hit["cookies"]) for hit in seen] == [
            (f"Bearer {token}", {"middle_auth_token": token})
        ] * 2
        assert [(hit["headers"]["Authorization"], hit["cookies"]) for hit in their_hits] == [
            (hit["headers"]["Authorization"], hit["cookies"]) for hit in seen
        ]

    def test_their_cookie_follows_a_redirect_to_another_host_ours_does_not(
        self, isolated_home: Path, service: Service, seen: list[dict[str, Any]]
    ) -> None:
        save_token(VALID_TOKEN)
        away = service.redirect(service.url("/echo", "localhost"))
        (theirs,) = caveclient(REQUEST, isolated_home, server=service.url(""), urls=[away])
        ours = requests.get(away, auth=CAVETokenAuth()).json()
        assert theirs["json"]["cookies"] == {"middle_auth_token": VALID_TOKEN}  # the known leak
        assert "Authorization" not in theirs["json"]["headers"]
        assert ours["cookies"] == {}
        assert "Authorization" not in ours["headers"]
        assert [hit["host"].split(":")[0] for hit in seen] == ["127.0.0.1", "localhost"] * 2
