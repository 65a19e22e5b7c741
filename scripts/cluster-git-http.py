"""A Git smart-HTTP server for the kind workflow's GitOps remote (scripts/cluster-git-remote.sh).

    python3 scripts/cluster-git-http.py <project-root> <port>

Serves the bare repositories under <project-root> with git's own `git http-backend` (as CGI): clones
and fetches need nothing; a push needs Basic auth whose password is $GUESSME_GIT_TOKEN, as a GitHub
token would (the pipeline sends it through GIT_ASKPASS). Standard library only: the runner's Python.
"""

import base64
import os
import subprocess
import sys
from collections.abc import Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIServer, make_server

# The request headers git http-backend reads from its CGI environment.
PASSED = (
    "CONTENT_TYPE",
    "CONTENT_LENGTH",
    "QUERY_STRING",
    "REQUEST_METHOD",
    "PATH_INFO",
    "HTTP_CONTENT_ENCODING",
)


def user_with_token(environ: dict[str, Any], token: str) -> str | None:
    header = environ.get("HTTP_AUTHORIZATION", "")
    if not token or not header.startswith("Basic "):
        return None
    user, _, password = base64.b64decode(header[6:]).decode(errors="replace").partition(":")
    return user if password == token else None


def make_app(root: str, token: str) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path, query = environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
        push = path.endswith("/git-receive-pack") or "service=git-receive-pack" in query
        user = user_with_token(environ, token)
        if push and user is None:
            start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="guessme"')])
            return [b"a push needs the token\n"]
        cgi = {k: str(environ[k]) for k in PASSED if environ.get(k)}
        cgi |= {
            "GIT_PROJECT_ROOT": root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "REMOTE_USER": user or "",
            "REMOTE_ADDR": str(environ.get("REMOTE_ADDR", "")),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        }
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        out = subprocess.run(["git", "http-backend"], input=body, env=cgi, capture_output=True, check=False)
        head, _, payload = out.stdout.partition(b"\r\n\r\n")
        headers = [tuple(line.split(": ", 1)) for line in head.decode().split("\r\n") if ": " in line]
        status = next((v for k, v in headers if k.lower() == "status"), "200 OK")
        start_response(status, [(k, v) for k, v in headers if k.lower() != "status"])
        if out.returncode != 0:
            sys.stderr.write(out.stderr.decode(errors="replace"))
        return [payload]

    return app


class ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def main() -> None:
    root, port = sys.argv[1], int(sys.argv[2])
    app = make_app(root, os.environ.get("GUESSME_GIT_TOKEN", ""))
    server = make_server("0.0.0.0", port, app, ThreadingServer)
    server.serve_forever()


if __name__ == "__main__":
    main()
