"""Before a long job: is the token still good for it? ``cave-auth status --check``.

A token from the create-token page lasts 7 days; an API key does not expire.
``cave-auth status --check`` asks the auth server whose each token is and when
it expires, and warns when that is within a day, naming the command that gets a
new token (``cave-auth login``). A job that runs for hours can check first, and
stop before it starts rather than fail halfway. Run it with the server in
``CAVE_RECIPE_URL``.
"""

import os
import subprocess
import sys

SERVER = os.environ.get("CAVE_RECIPE_URL", "https://global.daf-apis.com").rstrip("/")

# cave-auth, run by this Python: the same as `cave-auth status --check --server SERVER`.
checked = subprocess.run(  # noqa: S603  (a fixed command: this Python, this package)
    [sys.executable, "-m", "cave_requests_auth", "status", "--check", "--server", SERVER],
    capture_output=True,
    text=True,
    check=False,
)
print(checked.stdout, end="")
print(checked.stderr, end="", file=sys.stderr)

# Exit status 1: no token, or the server refused it. A token that expires soon is
# a warning on standard error, which names the command that gets a new one.
expiring = [
    line
    for line in checked.stderr.splitlines()
    if line.startswith("cave-auth: warning:") and " expires " in line
]
if checked.returncode != 0 or expiring:
    sys.exit("not starting the job: get a token that lasts, then start it again")
print("starting the job")
