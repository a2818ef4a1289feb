"""README.rst: every code block runs as pasted, against the loopback service.

The only changes made to a block: its example addresses point at the loopback
service (``https://minnie.example.org`` at ``127.0.0.1``, ``https://global.daf-apis.com``
at ``localhost``, and the default auth server of ``cave-auth`` at the service).
Python blocks run each in a fresh interpreter, with a token saved in the test's
home and on standard input (for a block that asks for one). Shell lines run in
bash; the development commands (``pip``, ``pytest``, ``tox``, the benchmarks, CI)
are not run here, but what they name must exist.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from helpers import VALID_TOKEN, Service, write_secret

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.rst"

_DIRECTIVE = re.compile(r"^(\s*)\.\. code-block:: (\w+)\s*$")
_UNDERLINE = re.compile(r"^([-=~^])\1+$")


class Block(NamedTuple):
    language: str
    section: str
    line: int
    code: str

    def __str__(self) -> str:
        return f"README.rst:{self.line} ({self.section})"


def code_blocks(text: str) -> list[Block]:
    """The ``.. code-block::`` blocks of an RST text, dedented, with their section titles."""
    lines = text.splitlines()
    blocks = []
    section = ""
    index = 0
    while index < len(lines):
        line = lines[index]
        if index + 1 < len(lines) and line.strip() and _UNDERLINE.match(lines[index + 1]):
            section = line.strip()
        match = _DIRECTIVE.match(line)
        index += 1
        if match is None:
            continue
        indent = len(match.group(1))
        body: list[str] = []
        while index < len(lines):
            current = lines[index]
            if current.strip() and len(current) - len(current.lstrip()) <= indent:
                break
            body.append(current)
            index += 1
        code = "\n".join(body).strip("\n")
        width = min(len(row) - len(row.lstrip()) for row in code.splitlines() if row.strip())
        code = "\n".join(row[width:] for row in code.splitlines())
        blocks.append(Block(match.group(2), section, index - len(body), code + "\n"))
    return blocks


BLOCKS = code_blocks(README.read_text(encoding="utf-8"))
PYTHON = [block for block in BLOCKS if block.language == "python"]
SHELL = [block for block in BLOCKS if block.language == "sh"]


def test_the_readme_has_blocks_of_both_kinds() -> None:
    assert len(PYTHON) >= 10
    assert len(SHELL) >= 3
    assert {block.language for block in BLOCKS} == {"python", "sh"}


def substituted(code: str, service: Service) -> str:
    """The example addresses pointed at the loopback service."""
    return code.replace("https://minnie.example.org", service.url("")).replace(
        "https://global.daf-apis.com", service.url("", host="localhost")
    )


@pytest.mark.parametrize("block", PYTHON, ids=str)
def test_python_block_runs_as_pasted(
    block: Block, service: Service, secrets: Path, tmp_path: Path
) -> None:
    write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
    code = substituted(block.code, service)
    service.seen.clear()
    script = tmp_path / "block.py"
    script.write_text(code)
    done = subprocess.run(
        [sys.executable, str(script)],
        input=VALID_TOKEN + "\n",  # for a block that asks for the token
        capture_output=True,
        text=True,
        env=dict(os.environ),
        cwd=tmp_path,
        timeout=60,
        check=False,
        start_new_session=True,  # no terminal: getpass reads standard input
    )
    assert done.returncode == 0, f"{block} failed:\n{done.stderr[-2000:]}"
    if service.url("") in code or service.url("", host="localhost") in code:
        assert service.seen, f"{block} sent nothing to the service"
        carried = [
            hit["headers"].get("Authorization") == f"Bearer {VALID_TOKEN}"
            for hit in service.seen
            if hit["path"] != "/auth_info"  # finding the auth server: asked without a token
        ]
        assert carried, f"{block} sent nothing but /auth_info to the service"
        assert all(carried), f"{block}: a request went without the token"


def _extras(text: str) -> list[str]:
    found = re.search(r"\.\[([\w,]+)\]", text)
    return found.group(1).split(",") if found else []


def _check_development_command(command: str, block: Block) -> bool:
    """For a command the tests cannot run: check what it names exists. Whether it was one."""
    words = shlex.split(command)
    if words[:2] == ["pip", "install"]:
        config = configparser.ConfigParser()
        config.read(ROOT / "setup.cfg")
        extras = set(config["options.extras_require"])
        assert set(_extras(command)) <= extras, f"{block}: unknown extra in {command!r}"
        assert (ROOT / "setup.cfg").exists()
        return True
    if words[:3] == ["python", "-m", "pytest"]:
        assert (ROOT / "tests").is_dir()
        return True
    if words[:2] == ["tox", "-e"]:
        tox = (ROOT / "tox.ini").read_text()
        for env in words[2].split(","):
            assert f"[testenv:{env}]" in tox, f"{block}: no tox env {env!r}"
        return True
    if words[:2] == ["python", "benchmarks/run.py"]:
        source = (ROOT / "benchmarks" / "run.py").read_text()
        for option in re.findall(r"--\w+", command):
            assert f'"{option}"' in source, f"{block}: benchmarks/run.py has no {option}"
        return True
    if words[:1] == ["bash"]:
        assert (ROOT / words[1]).is_file(), f"{block}: no {words[1]}"
        return True
    return False


@pytest.fixture
def shell_environment(tmp_path: Path, service: Service) -> dict[str, str]:
    """PATH with ``cave-auth`` (this Python's module, the service as its default auth server)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "cave-auth"
    module = f'"{sys.executable}" -m cave_requests_auth'
    shim.write_text(f'#!/bin/sh\nexec {module} --server {service.url("")} "$@"\n')
    shim.chmod(0o755)
    browser = bin_dir / "browser"
    browser.write_text(f'#!/bin/sh\necho "$1" >> {tmp_path / "opened"}\n')
    browser.chmod(0o755)
    environment = dict(os.environ)
    environment["PATH"] = f"{bin_dir}{os.pathsep}{environment['PATH']}"
    environment["BROWSER"] = str(browser)
    return environment


@pytest.mark.parametrize("block", SHELL, ids=str)
def test_shell_block_runs_as_pasted(
    block: Block, service: Service, secrets: Path, shell_environment: dict[str, str]
) -> None:
    write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
    exports: list[str] = []
    covered = 0
    for line in substituted(block.code, service).splitlines():
        command = line.split(" #", 1)[0].strip()
        if not command or command.startswith("#"):
            continue
        if command.startswith("export "):
            exports.append(command)
        head, _, rest = command.partition(" && ")
        if _check_development_command(head, block):
            covered += 1
            if not rest or _check_development_command(rest, block):
                continue
            command = rest
        assert command.split()[0] in ("cave-auth", "export"), (
            f"{block}: the test does not know how to run {command!r}"
        )
        done = subprocess.run(
            ["bash", "-c", "; ".join([*exports, command])],
            input=VALID_TOKEN + "\n",  # for `login` and `save -`
            capture_output=True,
            text=True,
            env=shell_environment,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"{block}: {command!r} failed:\n{done.stderr[-2000:]}"
        assert "Traceback" not in done.stderr
        covered += 1
    assert covered, f"{block}: nothing in it was run or checked"


def test_no_macos_only_clipboard_in_code() -> None:
    """`pbpaste` is macOS-only: the README gives the other forms too."""
    text = README.read_text(encoding="utf-8")
    for block in SHELL:
        assert "pbpaste" not in block.code, block
    if "pbpaste" in text:
        assert "xclip" in text
        assert "Get-Clipboard" in text
