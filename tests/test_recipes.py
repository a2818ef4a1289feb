"""The recipes in ``docs/recipes/``, each run as a user would run it.

Each recipe runs in a subprocess (``sys.executable``) with ``HOME`` and
``CLOUD_VOLUME_DIR`` in the test's home and the loopback service's URL in
``CAVE_RECIPE_URL``; the tests check what it printed and what the service saw.
The libraries a recipe shows are imported only in its subprocess (caveclient,
cloud-volume, pandas and dask take a second or so each); a recipe whose library is
not installed is skipped, saying which.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask
import pytest
from middle_auth_client import decorators as mac
from werkzeug.serving import make_server

from cave_requests_auth import save_token
from helpers import OTHER_TOKEN, TTLS, VALID_TOKEN, Service

RECIPES = Path(__file__).resolve().parent.parent / "docs" / "recipes"
TIMEOUT = 120  # seconds for one recipe; each takes one to three
TOKENS = {VALID_TOKEN: "VALID_TOKEN", OTHER_TOKEN: "OTHER_TOKEN"}
USER_OF = {"VALID_TOKEN": "Ada", "OTHER_TOKEN": "Grace"}
USER_CACHE = "/auth/api/v1/user/cache"

# The distribution that brings each module, for the skip message.
DISTRIBUTIONS = {
    "caveclient": "caveclient==8.2.1",
    "cloudvolume": "cloud-volume",
    "cloudfiles": "cloud-files",
    "pandas": "pandas",
    "requests_cache": "requests-cache",
    "requests_futures": "requests-futures",
    "distributed": "dask[distributed]",
    "neuroglancer": "neuroglancer",
}


def requires(*modules: str) -> None:
    """Skip the test, naming what to install, where a module is missing."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        wanted = " ".join(DISTRIBUTIONS[m] for m in missing)
        pytest.skip(f"not installed: {wanted}, which the recipe shows (pip install {wanted})")


def masked(text: str) -> str:
    """``text`` with every run of hexadecimal digits that shares 8 characters with a
    test token replaced by the token's name: safe to show."""

    def hide(match: re.Match[str]) -> str:
        run = match.group()
        for token, name in TOKENS.items():
            if any(run[i : i + 8] in token for i in range(len(run) - 7)):
                return f"<{name}>"
        return run

    return re.sub(r"[0-9a-f]{8,}", hide, text)


def run_python(
    argv: list[str],
    home: Path,
    env: dict[str, str],
    cave_token: str | None = None,
    typed: str | None = None,
) -> tuple[bool, str, str]:
    """Run ``python *argv`` with HOME at ``home``, ``env``, and ``CAVE_TOKEN`` set to the
    token named ``cave_token`` ("VALID_TOKEN", ...), the token named ``typed`` on its
    standard input (else none): (succeeded, stdout, stderr), tokens masked. Tokens are
    passed by name and nothing here raises, so that no traceback shows one (pytest
    shows a failing frame's arguments).
    """
    environment = {
        "HOME": str(home),
        "CLOUD_VOLUME_DIR": str(home / ".cloudvolume"),
        "TMPDIR": str(home),
        "PATH": os.environ.get("PATH", os.defpath),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        **env,
    }
    if "PYTHONPATH" in os.environ:  # where this package may come from
        environment["PYTHONPATH"] = os.environ["PYTHONPATH"]
    by_name = {name: token for token, name in TOKENS.items()}
    if cave_token is not None:
        environment["CAVE_TOKEN"] = by_name[cave_token]
    try:
        result = subprocess.run(
            [sys.executable, *argv],
            input="" if typed is None else by_name[typed] + "\n",
            env=environment,
            cwd=home,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False, "", f"timed out after {TIMEOUT} s"
    return result.returncode == 0, masked(result.stdout), masked(result.stderr)


def run_recipe(name: str, home: Path, env: dict[str, str], cave_token: str | None = None) -> str:
    """Run ``docs/recipes/<name>`` as :func:`run_python` does; what it printed.

    It must succeed and print no token (nor 8 characters of one).
    """
    succeeded, out, err = run_python([str(RECIPES / name)], home, env, cave_token)
    assert succeeded, err
    assert "_TOKEN>" not in out + err, f"{name} printed a token: {out}{err}"
    return out


def fresh(service: Service) -> list[dict[str, Any]]:
    """The requests the service answers from now on (as the ``seen`` fixture, but not
    a test's argument: pytest would show its headers, tokens and all, on a failure)."""
    service.seen.clear()
    return service.seen


def sent(hit: dict[str, Any]) -> str:
    """Which token a request the service saw carried as ``Authorization: Bearer``, by name."""
    header = hit["headers"].get("Authorization")
    if header is None:
        return "nothing"
    return TOKENS.get(header.removeprefix("Bearer "), "another value")


def cookie_sent(hit: dict[str, Any]) -> bool:
    """Whether a request the service saw carried a ``middle_auth_token`` cookie."""
    return "middle_auth_token" in hit["cookies"]


def hits(seen: list[dict[str, Any]], host: str, path: str | None = None) -> list[dict[str, Any]]:
    """The requests the service saw for ``host`` (``127.0.0.1`` or ``localhost``)."""
    return [
        hit
        for hit in seen
        if hit["host"].split(":")[0] == host and (path is None or hit["path"] == path)
    ]


class TestCAVEclient:
    """caveclient 8.2.1's own sub-client sessions, scoped with ``CAVEAuthAdapter.mount``."""

    @pytest.mark.parametrize("token_in", ["file", "CAVE_TOKEN"])
    def test_mount_on_its_sessions(
        self, token_in: str, service: Service, isolated_home: Path
    ) -> None:
        requires("caveclient")
        seen = fresh(service)
        elsewhere = service.url("/echo", "localhost")
        env = {"CAVE_RECIPE_URL": service.url(""), "CAVE_RECIPE_OTHER_URL": elsewhere}
        if token_in == "file":
            save_token(VALID_TOKEN)
            expected = "VALID_TOKEN"
        else:  # CAVEclient does not read CAVE_TOKEN: load_token hands it over
            expected = "OTHER_TOKEN"
            # Under the mounted prefix first, then a redirect to another host.
            env["CAVE_RECIPE_OTHER_URL"] = service.redirect(elsewhere)

        printed = run_recipe(
            "caveclient_sessions.py", isolated_home, env, None if token_in == "file" else expected
        )

        assert "CAVEAuthAdapter keeps the retries: 3 (502, 503, 504)" in printed
        assert "Authorization in session.headers: False" in printed
        assert "middle_auth_token in the cookie jar: False" in printed
        assert f"the server knows the token as: {USER_OF[expected]}" in printed
        assert "another host got: nothing" in printed
        (asked,) = hits(seen, "127.0.0.1", USER_CACHE)
        assert (sent(asked), cookie_sent(asked)) == (expected, False)
        (away,) = hits(seen, "localhost")
        assert (sent(away), cookie_sent(away)) == ("nothing", False)
        if token_in == "CAVE_TOKEN":  # the hop under the prefix had it
            (hop,) = hits(seen, "127.0.0.1", "/redirect/302")
            assert sent(hop) == expected


GRAPHENE_INFO = {
    "data_dir": "file:///nonexistent/segmentation",  # nothing is read from it
    "type": "segmentation",
    "data_type": "uint64",
    "num_channels": 1,
    "scales": [
        {
            "key": "8_8_40",
            "resolution": [8, 8, 40],
            "size": [64, 64, 64],
            "voxel_offset": [0, 0, 0],
            "chunk_sizes": [[64, 64, 64]],
            "encoding": "raw",
        }
    ],
    "graph": {
        "chunk_size": [64, 64, 64],
        "bounding_box": [2048, 2048, 512],
        "n_layers": 3,
        "spatial_bit_masks": {"1": 10, "2": 10, "3": 1},
        "n_bits_for_layer_id": 8,
    },
    "app": {"supported_api_versions": [0, 1]},
}


@pytest.fixture
def graphene(service: Service, tmp_path: Path) -> Iterator[tuple[Service, str]]:
    """A chunkedgraph server's info endpoint over https on loopback, behind the real
    ``middle_auth_client`` (the ``service`` fixture sets up its token lookup).

    Yields (its Service record, the CA file to trust).
    """
    import trustme

    authority = trustme.CA()
    ca_file = tmp_path / "graphene-ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("127.0.0.1", "localhost").configure_cert(context)

    record = Service(0)
    record.scheme = "https"
    app = flask.Flask("cave-recipe-graphene")

    @app.before_request
    def note() -> None:
        record.seen.append(
            {
                "host": flask.request.host,
                "path": flask.request.path,
                "headers": dict(flask.request.headers),
                "cookies": dict(flask.request.cookies),
            }
        )

    @app.route("/segmentation/table/<table>/info")
    @mac.auth_required
    def info(table: str) -> Any:
        return GRAPHENE_INFO

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=context)
    record.port = server.server_port
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield record, str(ca_file)
    server.shutdown()
    thread.join(5)


class TestCloudVolume:
    @pytest.mark.parametrize("token_in", ["file", "CAVE_TOKEN"])
    def test_recipe(
        self, token_in: str, graphene: tuple[Service, str], isolated_home: Path
    ) -> None:
        """CloudVolume gets what ``load_token`` finds; CloudFiles reads the files."""
        requires("cloudvolume", "cloudfiles")
        record, ca_file = graphene
        save_token(VALID_TOKEN)
        env = {"CAVE_RECIPE_URL": record.url("").rstrip("/"), "REQUESTS_CA_BUNDLE": ca_file}

        printed = run_recipe(
            "cloudvolume_secrets.py",
            isolated_home,
            env,
            "OTHER_TOKEN" if token_in == "CAVE_TOKEN" else None,
        )

        assert "CloudVolume: 3 layers, data in file:///nonexistent/segmentation" in printed
        assert "CloudFiles: 3 layers" in printed
        volume, files = (sent(hit) for hit in record.seen)  # each accepted by the service
        # secrets=load_token(url): CAVE_TOKEN reaches CloudVolume too; CloudFiles reads
        # only the files.
        assert volume == ("OTHER_TOKEN" if token_in == "CAVE_TOKEN" else "VALID_TOKEN")
        assert files == "VALID_TOKEN"

    def test_cloudfiles_ignores_secrets_for_middleauth(
        self, graphene: tuple[Service, str], isolated_home: Path
    ) -> None:
        """Why the recipe keeps CloudFiles' token in a file: cloud-files 6.4 drops an
        explicit ``secrets=`` for ``middleauth+https://`` paths."""
        requires("cloudfiles")
        record, ca_file = graphene
        save_token(VALID_TOKEN)
        script = (
            "import os\n"
            "from cloudfiles import CloudFiles\n"
            "path = 'middleauth+' + os.environ['CAVE_RECIPE_URL'] + '/segmentation/table/x/'\n"
            "CloudFiles(path, secrets={'token': os.environ['CAVE_TOKEN']}).get('info')\n"
        )
        env = {"CAVE_RECIPE_URL": record.url("").rstrip("/"), "REQUESTS_CA_BUNDLE": ca_file}

        succeeded, _, err = run_python(["-c", script], isolated_home, env, "OTHER_TOKEN")

        assert succeeded, err
        assert [sent(hit) for hit in record.seen] == ["VALID_TOKEN"]  # the file's, not ours

    # For each case: the files (name: token letter) and CAVE_TOKEN, then which token
    # load_token, CloudVolume's cave_credentials and CloudFiles' find for the URL.
    LOOKUP = """
import json, os, shutil, sys
import cloudfiles.secrets, cloudvolume.secrets
from urllib.parse import urlsplit
from cave_requests_auth import load_token
tokens = {"A": "a" * 32, "B": "b" * 32}
letters = {token: letter for letter, token in tokens.items()}
folder = os.path.join(os.environ["CLOUD_VOLUME_DIR"], "secrets")
found = []
for files, env, url in json.loads(sys.argv[1]):
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder, mode=0o700)
    for file, letter in files.items():
        with open(os.path.join(folder, file), "w") as f:
            json.dump({"token": tokens[letter]}, f)
    os.environ.pop("CAVE_TOKEN", None)
    if env:
        os.environ["CAVE_TOKEN"] = tokens[env]
    cloudvolume.secrets.CAVE_CREDENTIALS_CACHE.clear()  # both cache what they read
    cloudfiles.secrets.CAVE_CREDENTIALS.clear()
    netloc = urlsplit(url).netloc
    found.append("".join([
        letters.get(load_token(url), "-"),
        letters.get(cloudvolume.secrets.cave_credentials(netloc).get("token"), "-"),
        letters.get((cloudfiles.secrets.cave_credentials(netloc) or {}).get("token"), "-"),
    ]))
print(json.dumps(found))
"""

    def test_lookup_agrees_with_load_token(self, isolated_home: Path) -> None:
        """The files CloudVolume and CloudFiles read, against ``load_token``: where they
        agree, and where only ``secrets=load_token(url)`` makes them agree."""
        requires("cloudvolume", "cloudfiles")
        default, server = "cave-secret.json", "global.daf-apis.com-cave-secret.json"
        host = "minnie.example.org-cave-secret.json"
        netloc = "minnie.example.org:4443-cave-secret.json"
        url, port_url = "https://minnie.example.org", "https://minnie.example.org:4443"
        cases = [  # files, CAVE_TOKEN, URL: what load_token, CloudVolume, CloudFiles find
            ({default: "A"}, None, url, "AAA"),
            ({default: "A", host: "B"}, None, url, "BBB"),
            ({default: "A", netloc: "B"}, None, port_url, "BBB"),
            # Where they differ: the host's file for a URL with a port (CloudVolume
            # wants the netloc's), the auth server's own file, CAVE_TOKEN.
            ({default: "A", host: "B"}, None, port_url, "BAA"),
            ({default: "A", server: "B"}, None, url, "BAA"),
            ({default: "A"}, "B", url, "BAA"),
        ]
        argument = json.dumps([case[:3] for case in cases])

        succeeded, out, err = run_python(["-c", self.LOOKUP, argument], isolated_home, {})

        assert succeeded, err
        assert json.loads(out) == [case[3] for case in cases]


class TestPandas:
    def test_safe_form_keeps_the_token_on_its_host(
        self, service: Service, isolated_home: Path
    ) -> None:
        requires("pandas")
        seen = fresh(service)
        save_token(VALID_TOKEN)
        url = service.redirect(service.url("/echo", "localhost"))

        printed = run_recipe("pandas_dataframes.py", isolated_home, {"CAVE_RECIPE_URL": url})

        assert f"fetched {service.url('/echo', 'localhost')} after 1 redirect(s)" in printed
        assert re.search(r"^method\s+GET$", printed, re.MULTILINE), printed
        (first,) = hits(seen, "127.0.0.1")
        (away,) = hits(seen, "localhost")
        assert (sent(first), sent(away), cookie_sent(away)) == ("VALID_TOKEN", "nothing", False)

    def test_storage_options_form_sends_the_token_to_the_other_host(
        self, service: Service, isolated_home: Path
    ) -> None:
        """What the README warns of: urllib forwards ``auth_headers`` on a redirect."""
        requires("pandas")
        seen = fresh(service)
        save_token(VALID_TOKEN)
        script = (
            "import os, pandas\n"
            "from cave_requests_auth import auth_headers\n"
            "url = os.environ['CAVE_RECIPE_URL']\n"
            "pandas.read_json(url, storage_options=auth_headers(url), typ='series')\n"
        )
        url = service.redirect(service.url("/echo", "localhost"))

        succeeded, _, err = run_python(["-c", script], isolated_home, {"CAVE_RECIPE_URL": url})

        assert succeeded, err
        (away,) = hits(seen, "localhost")
        assert sent(away) == "VALID_TOKEN"


class TestRequestsCache:
    def test_recipe(self, service: Service, isolated_home: Path) -> None:
        """One entry per token, each answered once; no token in the cache's files."""
        requires("requests_cache")
        seen = fresh(service)
        env = {"CAVE_RECIPE_URL": service.url("")}
        for name, cached in [("VALID_TOKEN", False), ("OTHER_TOKEN", False), ("VALID_TOKEN", True)]:
            printed = run_recipe("requests_cache_session.py", isolated_home, env, name)
            assert printed.splitlines()[:2] == [
                f"from cache: {cached} user: {USER_OF[name]}",
                f"from cache: True user: {USER_OF[name]}",
            ]
        assert [sent(hit) for hit in seen] == ["VALID_TOKEN", "OTHER_TOKEN"]

        (line,) = [x for x in printed.splitlines() if x.startswith("cache file: ")]
        cache_file = Path(line.removeprefix("cache file: "))
        assert cache_file.is_relative_to(isolated_home)
        assert cache_file.is_file()
        for file in cache_file.parent.iterdir():  # the database, and any journal beside it
            holds = [name for token, name in TOKENS.items() if token.encode() in file.read_bytes()]
            assert holds == [], file

    @pytest.mark.parametrize(
        ("options", "cookie", "answers", "stored"),
        [
            pytest.param({}, False, ["Ada", "Ada"], [], id="default"),
            pytest.param(
                {"match_headers": ["Authorization"]}, False, ["Ada", "Ada"], [], id="match_headers"
            ),
            pytest.param(
                {"match_headers": ["Authorization"], "ignored_parameters": []},
                False,
                ["Ada", "Grace"],
                ["VALID_TOKEN", "OTHER_TOKEN"],
                id="match_headers-without-redaction",
            ),
            pytest.param({}, True, ["Ada", "Ada"], ["VALID_TOKEN"], id="cookie"),
        ],
    )
    def test_what_the_recipe_avoids(
        self,
        options: dict[str, Any],
        cookie: bool,
        answers: list[str],
        stored: list[str],
        service: Service,
        tmp_path: Path,
    ) -> None:
        """What the recipe says of requests-cache's own options: by default an answer is
        served to another token; match_headers=["Authorization"] does not change that;
        without the redaction it does, with the tokens in the file; a cookie is stored."""
        requires("requests_cache")
        from requests_cache import CachedSession

        from cave_requests_auth import CAVETokenAuth

        cache = tmp_path / "cache"
        names = []
        for token in (VALID_TOKEN, OTHER_TOKEN):
            with CachedSession(str(cache), **options) as session:
                session.auth = CAVETokenAuth(token=token, cookie=cookie)
                names.append(session.get(service.url(USER_CACHE), timeout=30).json()["name"])
        data = cache.with_suffix(".sqlite").read_bytes()
        assert names == answers
        assert [name for token, name in TOKENS.items() if token.encode() in data] == stored


class TestRequestsFutures:
    def test_recipe(self, service: Service, isolated_home: Path) -> None:
        requires("requests_futures")
        seen = fresh(service)
        save_token(VALID_TOKEN)
        env = {
            "CAVE_RECIPE_URL": service.url(""),
            "CAVE_RECIPE_OTHER_URL": service.url("/echo", "localhost"),
        }

        printed = run_recipe("requests_futures_session.py", isolated_home, env)

        assert printed.count("the server knows the token as: Ada") == 4
        assert "another host got: nothing" in printed
        assert [sent(hit) for hit in hits(seen, "127.0.0.1")] == ["VALID_TOKEN"] * 4
        assert [sent(hit) for hit in hits(seen, "localhost")] == ["nothing"]


class TestDask:
    @pytest.mark.parametrize("token_in", ["file", "CAVE_TOKEN"])
    def test_recipe(self, token_in: str, service: Service, isolated_home: Path) -> None:
        """Workers in other processes find the token themselves; the pickle holds none."""
        requires("distributed")
        seen = fresh(service)
        if token_in == "file":
            save_token(VALID_TOKEN)
            expected = "VALID_TOKEN"
        else:
            expected = "OTHER_TOKEN"

        printed = run_recipe(
            "dask_cluster.py",
            isolated_home,
            {"CAVE_RECIPE_URL": service.url("")},
            None if token_in == "file" else expected,
        )

        assert "token in the pickled session: False" in printed
        workers = re.findall(
            r"^worker process (\d+) \(not (\d+)\): the server knows its token as (\w+)$",
            printed,
            re.MULTILINE,
        )
        assert len(workers) == 4, printed
        assert all(pid != main and name == USER_OF[expected] for pid, main, name in workers)
        assert [sent(hit) for hit in seen] == [expected] * 5  # the client's, and 4 tasks'


class TestNeuroglancer:
    @pytest.mark.parametrize("token_in", ["file", "CAVE_TOKEN"])
    def test_recipe(
        self, token_in: str, graphene: tuple[Service, str], isolated_home: Path
    ) -> None:
        """What the viewer gives its page for the graphene source's origin is what the
        library finds, and the server accepts it."""
        requires("neuroglancer")
        record, ca_file = graphene
        save_token(VALID_TOKEN)
        expected = "OTHER_TOKEN" if token_in == "CAVE_TOKEN" else "VALID_TOKEN"
        server = record.url("").rstrip("/")
        env = {"CAVE_RECIPE_URL": server, "REQUESTS_CA_BUNDLE": ca_file}

        printed = run_recipe(
            "neuroglancer_viewer.py", isolated_home, env, None if token_in == "file" else expected
        )

        source = f"graphene://middleauth+{server}/segmentation/table/minnie65_public"
        assert f"layer source: {source}" in printed
        assert re.search(r"^open in a browser to see it: http://127\.0\.0\.1:\d+/v/", printed, re.M)
        assert "the viewer gives the page a Bearer token: " in printed
        assert "the server accepts it: 3 layers" in printed
        assert [sent(hit) for hit in record.seen] == [expected]


class TestKubernetesSecretFile:
    """``CAVE_TOKEN_FILE`` at a Secret's file, laid out as the kubelet lays it out."""

    @staticmethod
    def mount(home: Path, token: str, mode: int) -> Path:
        """``<home>/var/run/secrets/cave``: ``token -> ..data/token``, ``..data`` a link to
        a folder named for the update, the file with ``mode``; the path to name."""
        mounted = home / "var" / "run" / "secrets" / "cave"
        update = mounted / "..2026_12_04_16_00_00.123456789"
        update.mkdir(parents=True)
        (update / "token").write_text(token + "\n")  # as a Secret made --from-file keeps it
        (update / "token").chmod(mode)
        (mounted / "..data").symlink_to(update.name)
        (mounted / "token").symlink_to("..data/token")
        return mounted / "token"

    @pytest.mark.parametrize("mode", [0o400, 0o644], ids=["defaultMode-0400", "default-0644"])
    def test_recipe(self, mode: int, service: Service, isolated_home: Path) -> None:
        seen = fresh(service)
        save_token(OTHER_TOKEN)  # a saved token, which the file wins over
        secret = self.mount(isolated_home, VALID_TOKEN, mode)
        env = {"CAVE_RECIPE_URL": service.url(""), "CAVE_TOKEN_FILE": str(secret)}

        succeeded, out, err = run_python(
            [str(RECIPES / "kubernetes_secret_file.py")], isolated_home, env
        )

        assert succeeded, err
        assert "_TOKEN>" not in out + err
        assert f"the token comes from: {secret} (named by $CAVE_TOKEN_FILE)" in out
        assert "the server knows the token as: Ada" in out
        assert [sent(hit) for hit in seen] == ["VALID_TOKEN"]
        warned = f"TokenFileModeWarning: {secret} can be read or written by other users (mode 0644)"
        assert (warned in err) == (mode == 0o644), err  # 0400: no warning at all
        assert ("Warning" in err) == (mode == 0o644), err

    def test_a_secret_that_was_not_mounted_is_an_error_naming_the_variable(
        self, service: Service, isolated_home: Path
    ) -> None:
        seen = fresh(service)
        save_token(OTHER_TOKEN)  # not used in its place
        missing = isolated_home / "var" / "run" / "secrets" / "cave" / "token"
        env = {"CAVE_RECIPE_URL": service.url(""), "CAVE_TOKEN_FILE": str(missing)}

        succeeded, out, err = run_python(
            [str(RECIPES / "kubernetes_secret_file.py")], isolated_home, env
        )

        assert not succeeded
        assert f"TokenFileError: $CAVE_TOKEN_FILE names {missing}, which does not exist" in err
        assert seen == []  # nothing was sent
        assert "_TOKEN>" not in out + err


class TestColabNotebook:
    """The notebook secret (lookup step 8), through the recipe's stand-in for Colab."""

    @staticmethod
    def colab_secrets(home: Path, **secrets: str) -> dict[str, str]:
        """The stand-in's secrets (name: token name), in a file; the recipe's environment."""
        by_name = {name: token for token, name in TOKENS.items()}
        path = home / "colab-secrets.json"
        path.write_text(json.dumps({key: by_name[value] for key, value in secrets.items()}))
        return {"CAVE_RECIPE_COLAB_SECRETS": str(path)}

    def test_the_secret_is_found_without_a_line_of_setup(
        self, service: Service, isolated_home: Path
    ) -> None:
        seen = fresh(service)
        env = {"CAVE_RECIPE_URL": service.url("")}
        env.update(self.colab_secrets(isolated_home, CAVE_TOKEN="VALID_TOKEN"))

        printed = run_recipe("colab_notebook.py", isolated_home, env)

        assert "the token comes from: the Colab notebook secret CAVE_TOKEN" in printed
        assert "the server knows the token as: Ada" in printed
        assert "To get a new CAVE token" not in printed  # login() was not needed
        assert [sent(hit) for hit in seen] == ["VALID_TOKEN"]
        assert not (isolated_home / ".cloudvolume").exists()  # nothing saved

    def test_without_the_secret_login_asks_checks_and_saves(
        self, service: Service, isolated_home: Path
    ) -> None:
        seen = fresh(service)
        env = {"CAVE_RECIPE_URL": service.url("")}
        env.update(self.colab_secrets(isolated_home, OTHER_SECRET="OTHER_TOKEN"))

        succeeded, out, err = run_python(
            [str(RECIPES / "colab_notebook.py")], isolated_home, env, typed="VALID_TOKEN"
        )

        assert succeeded, err
        assert "_TOKEN>" not in out + err
        server = service.url("")
        assert f"1. Go to {server}/auth/api/v1/create_token" in out
        assert "The token belongs to Ada <ada@example.org>, user id 1." in out
        saved = (
            isolated_home
            / ".cloudvolume"
            / "secrets"
            / f"127.0.0.1:{service.port}-cave-secret.json"
        )
        assert f"the token comes from: key 'token' of {saved}" in out
        assert "the server knows the token as: Ada" in out
        asked = [sent(hit) for hit in hits(seen, "127.0.0.1", USER_CACHE)]
        assert asked == ["VALID_TOKEN", "VALID_TOKEN"]  # login()'s check, then the request
        assert {sent(hit) for hit in seen} <= {"VALID_TOKEN", "nothing"}  # /auth_info: nothing


class TestTokenExpiry:
    """``cave-auth status --check`` before a long job, against middle_auth's ``ttl`` route
    on the loopback service (``helpers.TTLS``: the seconds each login token has left)."""

    def test_a_token_that_expires_within_a_day_stops_the_job(
        self, service: Service, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        server = service.url("")
        monkeypatch.setitem(TTLS, OTHER_TOKEN, 5 * 3600)
        files = save_token(OTHER_TOKEN, server)  # the default file, and the server's
        seen = fresh(service)

        succeeded, out, err = run_python(
            [str(RECIPES / "token_expiry.py")], isolated_home, {"CAVE_RECIPE_URL": server}
        )

        assert not succeeded
        assert "_TOKEN>" not in out + err
        assert f"  user    Grace <grace@example.org>, user id 2 (asked {server})" in out
        assert re.search(r"^  expires in 5 hours \(\d{4}-\d\d-\d\d \d\d:\d\d UTC\)$", out, re.M)
        warnings = [line for line in err.splitlines() if " expires in 5 hours (" in line]
        assert len(warnings) == 1  # one token, in two files: said once
        named = [path for path in files if f"from key 'token' of {path} expires" in warnings[0]]
        assert warnings[0].startswith("cave-auth: warning: the token fedc…3210 from key")
        assert len(named) == 1
        assert f"get a new one with `cave-auth login --server {server}`." in err
        assert "starting the job" not in out
        assert err.endswith("not starting the job: get a token that lasts, then start it again\n")
        assert any(hit["path"].endswith("/ttl") for hit in seen)  # the server was asked

    @pytest.mark.parametrize(
        ("saved", "expires"),
        [(OTHER_TOKEN, "in 6 days ("), (VALID_TOKEN, "never (an API key)")],
        ids=["login-token", "api-key"],
    )
    def test_a_token_that_lasts_starts_the_job(
        self, saved: str, expires: str, service: Service, isolated_home: Path
    ) -> None:
        server = service.url("")
        save_token(saved, server)

        succeeded, out, err = run_python(
            [str(RECIPES / "token_expiry.py")], isolated_home, {"CAVE_RECIPE_URL": server}
        )

        assert succeeded, err
        assert "_TOKEN>" not in out + err
        assert f"  expires {expires}" in out
        assert err == ""  # no warning
        assert out.endswith("starting the job\n")
