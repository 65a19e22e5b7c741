"""A Kubernetes API server double for the cluster DAG's tests: the RayJob and RayService endpoints only,
on a local port.

It answers what the real API server answers for the calls the DAG makes through the cncf-kubernetes
provider (KubernetesHook -> the official `kubernetes` client): GET of the template RayJob, POST of the
run's RayJob (201, or 409 AlreadyExists), GET of that RayJob with the next recorded KubeRay status
(k8s_responses/rayjob_status.yaml), GET of a RayService as the test last set it (`rayservices`), and a
`Status` object with 404 for anything else. `on_create` runs
when a RayJob is created: a test uses it to do what the job's driver would (register in MLflow).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from support.http_stub import StubHandler, serving

RESPONSES = Path(__file__).resolve().parent / "k8s_responses"
PREFIX = "/apis/ray.io/v1/namespaces/"


def recorded_statuses() -> dict[str, list[dict[str, Any]]]:
    data: dict[str, list[dict[str, Any]]] = yaml.safe_load((RESPONSES / "rayjob_status.yaml").read_text())
    return data


@dataclass
class FakeRayJobs:
    template: dict[str, Any]
    statuses: list[dict[str, Any]]
    on_create: Callable[[dict[str, Any]], None] = lambda body: None
    created: dict[str, dict[str, Any]] = field(default_factory=dict)
    rayservices: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> object, status included
    requests: list[tuple[str, str]] = field(default_factory=list)
    _polls: dict[str, int] = field(default_factory=dict)

    def handle(self, method: str, path: str, body: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
        self.requests.append((method, path))
        if not path.startswith(PREFIX):
            return _status(404, "NotFound", f"no route for {path}")
        namespace, _, rest = path[len(PREFIX) :].partition("/")
        parts = rest.split("/")
        if parts[0] == "rayservices" and method == "GET" and len(parts) == 2:
            if parts[1] not in self.rayservices:
                return _status(404, "NotFound", f'rayservices.ray.io "{parts[1]}" not found')
            return 200, self.rayservices[parts[1]]
        if parts[0] != "rayjobs" or len(parts) > 2:
            return _status(404, "NotFound", f"no route for {path}")
        if method == "POST" and len(parts) == 1:
            assert body is not None
            name = body["metadata"]["name"]
            if name in self.created or name == self.template["metadata"]["name"]:
                return _status(409, "AlreadyExists", f'rayjobs.ray.io "{name}" already exists')
            stored = {**body, "metadata": {**body["metadata"], "namespace": namespace, "uid": f"uid-{name}"}}
            self.created[name] = stored
            self.on_create(stored)
            return 201, stored
        if method == "GET" and len(parts) == 2:
            name = parts[1]
            if name == self.template["metadata"]["name"]:
                return 200, self.template
            if name not in self.created:
                return _status(404, "NotFound", f'rayjobs.ray.io "{name}" not found')
            poll = self._polls.get(name, 0)
            self._polls[name] = poll + 1
            status = self.statuses[min(poll, len(self.statuses) - 1)]
            return 200, {**self.created[name], "status": status}
        return _status(405, "MethodNotAllowed", f"{method} {path}")


def _status(code: int, reason: str, message: str) -> tuple[int, dict[str, Any]]:
    return code, {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


@contextmanager
def serve(fake: FakeRayJobs, kubeconfig: Path) -> Iterator[Path]:
    """Serve `fake` on a free local port; yields a kubeconfig file that points at it."""

    class Handler(StubHandler):
        def _answer(self, method: str) -> None:
            self.send_json(*fake.handle(method, self.path.split("?")[0], self.read_json()))

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

    with serving(Handler) as url:
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "fake", "cluster": {"server": url}}],
                    "users": [{"name": "fake", "user": {"token": "fake-token"}}],
                    "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
                    "current-context": "fake",
                }
            )
        )
        yield kubeconfig
