"""Loading a version over MLflow's REST API (guessme_serve.registry_rest, model_holder.load_from_registry)
against a stand-in registry on a real socket: the stored ONNX copy, the fallback for a version
without one, and each bad answer ending in a one-line error while the old model keeps serving."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from support.http_stub import StubHandler, serving

from guessme_contracts.model_uri import ModelRef
from guessme_core.onnx_model import ONNX_ARTIFACT, OnnxModel
from guessme_serve import model_holder
from guessme_serve.model_holder import ModelHolder, load_from_registry
from guessme_serve.registry_rest import NotFound, RegistryError, RegistryRest, VersionRecord

from .conftest import tiny_cnn, tiny_onnx

pytestmark = pytest.mark.unit

LOCATION = "mlflow-artifacts:/1/models/m-abc/artifacts"  # as the servers' proxied artifact root makes it
PROXIED = "/api/2.0/mlflow-artifacts/artifacts/1/models/m-abc/artifacts"


def flatten_onnx() -> bytes:
    """A valid ONNX graph with the served input name that answers (N, 784), not (N, 10) logits."""
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["images"], ["logits"])],
        "flatten",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["n", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 784])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8  # one every ONNX Runtime release reads
    onnx.checker.check_model(model)
    return model.SerializeToString()


@dataclass
class Registry:
    """What the stand-in registry holds, and the requests it saw (path, Authorization header)."""

    versions: dict[str, dict[str, Any]] = field(default_factory=dict)  # "name/version" -> model_version
    locations: dict[str, str] = field(default_factory=dict)  # "name/version" -> artifact_uri
    runs: dict[str, dict[str, float]] = field(default_factory=dict)  # run_id -> metrics
    files: dict[str, bytes] = field(default_factory=dict)  # proxy path -> bytes
    fail: dict[str, int] = field(default_factory=dict)  # path -> HTTP status to answer instead
    seen: list[tuple[str, str | None]] = field(default_factory=list)

    def add(
        self, version: int, *, run_id: str = "r1", tags: dict[str, str] | None = None, **fields: Any
    ) -> str:
        key = f"guessme-cnn/{version}"
        self.versions[key] = {
            "name": "guessme-cnn",
            "version": str(version),
            "run_id": run_id,
            "status": "READY",
            "source": "models:/m-abc",
            "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()],
            **fields,
        }
        self.locations[key] = LOCATION
        self.runs.setdefault(run_id, {})
        return f"models:/{key}"


def handler_for(registry: Registry, prefix: str = "") -> type[StubHandler]:
    class Handler(StubHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            if not url.path.startswith(prefix):  # a server under a path answers nothing outside it
                self.send_json(404, {"error_code": "ENDPOINT_NOT_FOUND", "message": url.path})
                return
            path, query = url.path.removeprefix(prefix), {k: v[0] for k, v in parse_qs(url.query).items()}
            registry.seen.append((path, self.headers.get("Authorization")))
            key = f"{query.get('name')}/{query.get('version')}"
            missing = {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"No such thing: {path}"}
            if path in registry.fail:
                self.send_json(registry.fail[path], {"error_code": "INTERNAL_ERROR", "message": "boom\nmore"})
            elif path == "/api/2.0/mlflow/model-versions/get" and key in registry.versions:
                self.send_json(200, {"model_version": registry.versions[key]})
            elif path == "/api/2.0/mlflow/model-versions/get-download-uri" and key in registry.locations:
                self.send_json(200, {"artifact_uri": registry.locations[key]})
            elif path == "/api/2.0/mlflow/runs/get" and query.get("run_id") in registry.runs:
                metrics = [{"key": k, "value": v} for k, v in registry.runs[query["run_id"]].items()]
                self.send_json(200, {"run": {"info": {}, "data": {"metrics": metrics}}})
            elif path in registry.files:
                data = registry.files[path]
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            else:
                self.send_json(404, missing)

    return Handler


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    """An empty stand-in registry that MLFLOW_TRACKING_URI names; the child fallback is refused unless a
    test allows it (it would start MLflow against the stand-in)."""
    held = Registry()

    def no_child(uri: str) -> Any:
        raise AssertionError(f"registry_child was started for {uri}")

    monkeypatch.setattr(model_holder, "load_through_child", no_child)
    with serving(handler_for(held)) as url:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        yield held


def test_a_version_loads_from_its_stored_onnx_copy(registry: Registry) -> None:
    uri = registry.add(3, tags={"test_accuracy": "0.97", "data.version": "abc"})
    registry.runs["r1"] = {"test_accuracy": 0.98, "val_loss": 0.1}
    registry.files[f"{PROXIED}/{ONNX_ARTIFACT}"] = tiny_onnx()
    loaded = load_from_registry(uri)
    assert (loaded.uri, loaded.version) == (uri, "3")
    probe = torch.rand(3, 1, 28, 28)
    with torch.inference_mode():
        want = tiny_cnn()(probe).numpy()
    np.testing.assert_allclose(loaded.module(probe.numpy()), want, atol=1e-5)
    # The run's metrics win over a numeric version tag of the same name; text tags are left out.
    assert loaded.metrics == {"test_accuracy": 0.98, "val_loss": 0.1}
    assert [p for p, _ in registry.seen][-1] == "/api/2.0/mlflow/runs/get"


def test_a_version_without_a_stored_copy_falls_back_to_registry_child(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Registered before registration stored copies: the proxy has no such file (404)."""
    uri = registry.add(2)
    children: list[str] = []

    def child(asked: str) -> OnnxModel:
        children.append(asked)
        return OnnxModel(tiny_onnx())

    monkeypatch.setattr(model_holder, "load_through_child", child)
    assert load_from_registry(uri).version == "2"
    assert children == [uri]
    assert f"{PROXIED}/{ONNX_ARTIFACT}" in [p for p, _ in registry.seen]


@pytest.mark.parametrize(
    "location",
    ["runs:/r1/broken", "s3://bucket/1/models/m-abc/artifacts", "mlflow-artifacts://other:5000/1/x"],
)
def test_artifacts_outside_this_servers_proxy_go_to_registry_child(registry: Registry, location: str) -> None:
    uri = registry.add(2)
    registry.locations["guessme-cnn/2"] = location
    record = RegistryRest.from_env().version(ModelRef.parse(uri))
    assert record.proxied_path(ONNX_ARTIFACT) is None
    assert RegistryRest.from_env().artifact(record, ONNX_ARTIFACT) is None
    assert not any(p.startswith("/api/2.0/mlflow-artifacts/") for p, _ in registry.seen)


def test_a_missing_version_fails_at_once_with_mlflows_reason(registry: Registry) -> None:
    with pytest.raises(NotFound) as failed:
        load_from_registry("models:/guessme-cnn/999")
    assert str(failed.value) == (
        "models:/guessme-cnn/999 is not in the registry: RESOURCE_DOES_NOT_EXIST: "
        "No such thing: /api/2.0/mlflow/model-versions/get"
    )
    assert [p for p, _ in registry.seen] == ["/api/2.0/mlflow/model-versions/get"]


def test_a_version_still_registering_is_not_loaded(registry: Registry) -> None:
    uri = registry.add(4, status="PENDING_REGISTRATION", status_message="copying")
    with pytest.raises(
        RegistryError, match=r"^models:/guessme-cnn/4 is PENDING_REGISTRATION, not READY \(copying\)$"
    ):
        load_from_registry(uri)


def test_a_corrupt_copy_is_a_clear_one_line_error_not_a_fallback(registry: Registry) -> None:
    uri = registry.add(5)
    data = tiny_onnx()
    registry.files[f"{PROXIED}/{ONNX_ARTIFACT}"] = data[: len(data) // 2]  # a truncated download
    with pytest.raises(ValueError, match="does not load: ") as failed:
        load_from_registry(uri)
    message = str(failed.value)
    assert message.startswith(
        f"the ONNX copy of {uri} ({ONNX_ARTIFACT}) does not load: "
        f"not a loadable ONNX model ({len(data) // 2} bytes): "
    )
    assert "\n" not in message


def test_a_copy_that_answers_the_wrong_shape_is_refused(registry: Registry) -> None:
    uri = registry.add(6)
    registry.files[f"{PROXIED}/{ONNX_ARTIFACT}"] = flatten_onnx()
    with pytest.raises(ValueError, match=r"model answers shape \(2, 784\), expected \(2, 10\)"):
        load_from_registry(uri)


def test_a_server_error_on_the_artifact_is_an_error_not_a_fallback(registry: Registry) -> None:
    """Only a 404 means "no copy": a failing proxy must not silently start the slow path."""
    uri = registry.add(7)
    registry.fail[f"{PROXIED}/{ONNX_ARTIFACT}"] = 500
    with pytest.raises(RegistryError) as failed:
        load_from_registry(uri)
    assert str(failed.value) == f"MLflow GET {PROXIED}/{ONNX_ARTIFACT} -> 500: INTERNAL_ERROR: boom more"


def test_bad_loads_keep_the_old_model_serving_with_a_one_line_reason(registry: Registry) -> None:
    good = registry.add(1)
    registry.files[f"{PROXIED}/{ONNX_ARTIFACT}"] = tiny_onnx()
    corrupt = registry.add(8)
    registry.locations["guessme-cnn/8"] = "mlflow-artifacts:/1/models/m-bad/artifacts"
    registry.files[f"/api/2.0/mlflow-artifacts/artifacts/1/models/m-bad/artifacts/{ONNX_ARTIFACT}"] = b"PK"

    async def scenario() -> None:
        holder = ModelHolder(load_from_registry)
        await holder.set_uri(good)
        assert holder.require().version == "1", holder.last_error
        for bad, reason in (
            (corrupt, "does not load"),
            ("models:/guessme-cnn/999", "is not in the registry"),
        ):
            await holder.set_uri(bad)
            assert holder.require().version == "1"
            assert holder.last_error is not None
            assert f" loading {bad}: " in holder.last_error
            assert reason in holder.last_error
            assert "\n" not in holder.last_error

    asyncio.run(scenario())


def test_the_tracking_uri_must_name_a_server() -> None:
    for uri in ("", "file:///tmp/mlruns", "sqlite:///mlflow.db"):
        with pytest.raises(RegistryError, match="MLFLOW_TRACKING_URI must name an MLflow server"):
            RegistryRest.from_env({"MLFLOW_TRACKING_URI": uri})


def test_an_unreachable_server_is_one_line() -> None:
    with serving(StubHandler) as url:  # a port that was just free, and is again
        pass
    rest = RegistryRest.from_env({"MLFLOW_TRACKING_URI": url})
    with pytest.raises(RegistryError, match=f"^MLflow at {url} unreachable: ") as failed:
        rest.version(ModelRef("guessme-cnn", 1))
    assert "\n" not in str(failed.value)


@pytest.mark.parametrize(
    ("env", "sent"),
    [
        ({}, None),
        ({"MLFLOW_TRACKING_TOKEN": "t0k"}, "Bearer t0k"),
        (
            {"MLFLOW_TRACKING_USERNAME": "ann", "MLFLOW_TRACKING_PASSWORD": "pw"},
            "Basic " + base64.b64encode(b"ann:pw").decode(),
        ),
        ({"MLFLOW_TRACKING_USERNAME": "ann"}, None),  # a user without a password sends nothing
    ],
)
def test_credentials_from_mlflows_environment_variables(env: dict[str, str], sent: str | None) -> None:
    held = Registry()
    uri = held.add(1)
    with serving(handler_for(held)) as url:
        RegistryRest.from_env({"MLFLOW_TRACKING_URI": url, **env}).version(ModelRef.parse(uri))
    assert {auth for _, auth in held.seen} == {sent}


def test_a_tracking_uri_with_a_path_prefix_keeps_it() -> None:
    """MLflow behind a path (`--static-prefix`, a proxy): every call, the artifact proxy's too, keeps it."""
    held = Registry()
    uri = held.add(1)
    held.files[f"{PROXIED}/{ONNX_ARTIFACT}"] = b"bytes"
    with serving(handler_for(held, prefix="/mlflow")) as url:
        rest = RegistryRest.from_env({"MLFLOW_TRACKING_URI": f"{url}/mlflow/"})
        record = rest.version(ModelRef.parse(uri))
        assert rest.artifact(record, ONNX_ARTIFACT) == b"bytes"
    assert record == VersionRecord(ModelRef.parse(uri), "r1", LOCATION, {})
    assert len(held.seen) == 3


def test_mlflow_error_bodies_are_read_as_one_line() -> None:
    held = Registry()
    held.fail["/api/2.0/mlflow/model-versions/get"] = 503
    with serving(handler_for(held)) as url, pytest.raises(RegistryError) as failed:
        RegistryRest.from_env({"MLFLOW_TRACKING_URI": url}).version(ModelRef("guessme-cnn", 1))
    assert (
        str(failed.value) == "MLflow GET /api/2.0/mlflow/model-versions/get -> 503: INTERNAL_ERROR: boom more"
    )
    assert failed.value.answer == "INTERNAL_ERROR: boom more"
