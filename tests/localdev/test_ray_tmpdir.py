"""scripts/lib.sh keeps Ray's Unix sockets under the kernel's 107-byte path limit, whatever the
clone's depth (a clone in ~/projects/guessme is already too deep for .guessme/ray itself)."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from guessme_contracts.layout import Layout

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
# The longest path Ray 2.60 puts under RAY_TMPDIR: a dashboard module's socket, in a session
# folder named by date, time, microseconds and a (up to 7-digit) PID.
RAY_SUFFIX = "/ray/session_2026-11-26_09-22-29_373966_4194304/sockets/dash_MetricsHead"
SOCKET_LIMIT = 107


def ray_tmpdir(state: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k != "RAY_TMPDIR"} | {"GUESSME_STATE": str(state)}
    script = f'source "{REPO}/scripts/lib.sh" && printf %s "$RAY_TMPDIR"'
    return subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("depth", [1, 4, 8, 12, 20, 60])
def test_ray_sockets_fit_for_any_clone_depth(depth: int) -> None:
    base = Path(tempfile.mkdtemp(prefix="g", dir="/tmp"))  # short: pytest's tmp_path is deep already
    state = base / ("d" * depth) / ".guessme"  # .guessme/ray of 29 to 88 characters
    tmpdir = ray_tmpdir(state)
    try:
        assert len(tmpdir + RAY_SUFFIX) <= SOCKET_LIMIT, tmpdir
        link = Layout.at(REPO, state).ray_tmp
        if tmpdir != str(link):  # relocated: reachable from the clone's state folder
            assert link.resolve() == Path(tmpdir).resolve()
    finally:
        shutil.rmtree(base)
        if tmpdir.startswith("/tmp/guessme-ray-"):
            shutil.rmtree(tmpdir, ignore_errors=True)
