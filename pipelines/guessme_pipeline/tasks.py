"""The DAG's tasks as plain functions: small JSON-able dicts in and out (they travel as XComs).

ML work runs in the ML interpreter (guessme_pipeline.ml: DVC stages, guessme_pipeline.compare); Git and
the MLflow REST calls run here. The DVC stages run in the run's scratch checkout of the branch head
(guessme_pipeline.checkout), so the developer's working copy is never written to but by `promote`.
Nothing touches the overlay before `promote`, and `promote` is one compare-and-swap commit, so a
failure anywhere leaves the overlay as it was.
"""

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from guessme_contracts.layout import Layout
from guessme_contracts.model_uri import ModelRef
from guessme_pipeline import checkout, mlflow_rest, publish
from guessme_pipeline.gate import GateParams, decide
from guessme_pipeline.ml import run_json_step, run_step
from guessme_pipeline.promote import Candidate, deployed_model
from guessme_pipeline.promote import promote as promote_commit
from guessme_pipeline.settings import RUN_PARAM_DEFAULTS, PipelineSettings, RunSettings


class GateBlocked(RuntimeError):
    """The candidate is not better than the deployed model; nothing is promoted (the DAG skips)."""


@contextlib.contextmanager
def scratch_checkout(s: RunSettings, commit: str, last: bool = False) -> Iterator[Path]:
    """The run's checkout at `commit`; removed when the task fails (its downstream tasks will not run)
    or, with `last`, when the task ends."""
    path = checkout.ensure(s, commit)
    try:
        yield path
    except BaseException:
        checkout.remove(s)
        raise
    if last:
        checkout.remove(s)


def _dvc_repro(s: RunSettings, workdir: Path, stage: str, *extra: str) -> None:
    run_step(f"dvc repro {stage}", ["-m", "dvc", "repro", *extra, stage], workdir, checkout.dvc_env(s))


def _keep(source: Path, s: RunSettings) -> Path:
    """Copy a step result out of the scratch checkout into the run's folder (the checkout is transient)."""
    target = s.work_dir / source.name
    shutil.copyfile(source, target)
    return target


def snapshot_player_data(source: Path, snapshot: Path) -> dict[str, Any] | None:
    """A fixed copy of the folder's JSON-lines files (round shards, tombstones) and its hash; None if
    nobody has played. Closed shards never change, so only the open one can differ between runs."""
    files = sorted(p for p in source.glob("*.jsonl") if p.is_file()) if source.is_dir() else []
    if not any(p.stat().st_size for p in files):
        return None
    snapshot.mkdir(parents=True)
    digest, lines = hashlib.md5(), 0
    for path in files:
        data = path.read_bytes()  # the app appends while we read: what we read is what we keep
        (snapshot / path.name).write_bytes(data)
        digest.update(path.name.encode() + b"\0" + data)
        lines += data.count(b"\n")
    return {"player_file": str(snapshot), "player_rounds": lines, "player_md5": digest.hexdigest()}


def prepare_data(s: RunSettings) -> dict[str, Any]:
    """DVC reproduces the data stages (fetch, player -> prepare, cached when unchanged) at the branch
    head. With `include_player_data` (evaluate) or `train_on_player_data`, the players' rounds (in the
    working copy) are first snapshotted into the run, identified by their hash: the evaluation uses that
    copy, and with `train_on_player_data` the scratch checkout trains on it too (DVC stage `player`,
    `data.include_player`, see guessme_pipeline.checkout)."""
    s.work_dir.mkdir(parents=True, exist_ok=True)
    commit = checkout.branch_head(s)
    player: dict[str, Any] = {"player_file": None}
    snapshot = checkout.player_snapshot(s)
    shutil.rmtree(snapshot, ignore_errors=True)
    if s.include_player_data or s.train_on_player_data:  # train and evaluate a fixed copy
        player = snapshot_player_data(s.layout.player_data, snapshot) or player
    with scratch_checkout(s, commit) as work:
        _dvc_repro(s, work, "prepare")
        data_tests(s, work)
        test = _keep(work / "data" / "prepared" / "test.npz", s)
    return {"commit": commit, "test": str(test), **player}


def data_tests(s: RunSettings, work: Path) -> None:
    """The data tier's expectations (tests/data/test_dataset.py) on what this run will train on: the
    prepared splits and the player data version in the checkout. A failure fails the data task:
    nothing trains."""
    expectations = work / "tests" / "data" / "test_dataset.py"
    if not expectations.is_file():  # a commit from before the tier
        return
    prepared, player = work / "data" / "prepared", Layout.at(work).player_data
    args = ["-m", "pytest", str(expectations), "-q", "--prepared-dir", str(prepared)]
    # The code the stages themselves run: this commit's, not the scheduler's.
    code = os.pathsep.join(str(work / p) for p in stage_pythonpath(work))
    run_step(
        "data tests", [*args, "--player-dir", str(player)], work, {**checkout.dvc_env(s), "PYTHONPATH": code}
    )


def stage_pythonpath(work: Path) -> list[str]:
    """The checkout-relative PYTHONPATH the DVC stages run with: the one dvc.yaml's `py` variable sets."""
    variables: dict[str, Any] = {}
    for entry in yaml.safe_load((work / "dvc.yaml").read_text()).get("vars", []):
        variables.update(entry if isinstance(entry, dict) else {})
    for word in str(variables.get("py", "")).split():
        if word.startswith("PYTHONPATH="):
            return word.removeprefix("PYTHONPATH=").split(":")
    raise ValueError(f"{work / 'dvc.yaml'}: its `py` variable sets no PYTHONPATH")


def train(s: RunSettings, data: dict[str, Any]) -> dict[str, Any]:
    """DVC stage `train`: Ray Train on RAY_ADDRESS's cluster, else a local Ray started for the run.
    Unchanged data, params and code reuse the cached model (DVC restores it instead of training)."""
    with scratch_checkout(s, data["commit"]) as work:
        _dvc_repro(s, work, "train")
        model_file = _keep(work / "models" / "model.pt", s)
        history = json.loads((work / "models" / "history.json").read_text())
    return {
        "commit": data["commit"],
        "model_file": str(model_file),
        "model_md5": hashlib.md5(model_file.read_bytes()).hexdigest(),
        "epochs": len(history),
        "val_accuracy": history[-1]["val_accuracy"] if history else None,
    }


def evaluate(s: RunSettings, data: dict[str, Any], trained: dict[str, Any]) -> dict[str, Any]:
    """DVC stage `evaluate` (metrics, plots), then the candidate vs. the model the branch deploys now
    (read from the committed overlay) on the same data, and the gate's decision (params.yaml's `gate`
    at the trained commit)."""
    with scratch_checkout(s, data["commit"]) as work:
        _dvc_repro(s, work, "evaluate")
        deployed = deployed_model(s.repo, s.env, s.branch)
        args = ["-m", "guessme_pipeline.compare", "--model", trained["model_file"], "--test", data["test"]]
        args += ["--deployed", deployed.uri if deployed else ""]
        if data.get("player_file"):
            args += ["--player", data["player_file"]]
        report = run_json_step("compare", args, s.work_dir / "compare.json", s.repo)
        gate = GateParams.from_params_file(work / "params.yaml")
    decision = decide(report["candidate"], report["deployed"], gate)
    report["decision"] = decision.as_dict()
    print(f"gate: {'PROMOTE' if decision.promote else 'KEEP'} - {decision.reason}", flush=True)
    return report


def register(s: RunSettings, trained: dict[str, Any], evaluation: dict[str, Any]) -> dict[str, Any]:
    """DVC stage `register`: a new `guessme-cnn` version for a new model (an unchanged one keeps the
    version DVC's run-cache recorded). A recorded registration that this MLflow does not hold (another
    server, a wiped store) is redone. The last DVC step: the scratch checkout goes with it."""
    with scratch_checkout(s, trained["commit"], last=True) as work:
        _dvc_repro(s, work, "register")
        registered: dict[str, Any] = json.loads((work / "reports" / "registered.json").read_text())
        if not mlflow_rest.version_matches(
            registered["name"], int(registered["version"]), registered["run_id"]
        ):
            print(f"register: {registered['uri']} is not in this registry; registering again", flush=True)
            _dvc_repro(s, work, "register", "--force", "--single-item")
            registered = json.loads((work / "reports" / "registered.json").read_text())
        checkout.save_state(s)  # the next run starts from here: an unchanged model keeps this version
    decision = evaluation["decision"]
    mlflow_rest.set_version_tags(
        registered["name"],
        int(registered["version"]),
        {
            "gate.promote": str(decision["promote"]).lower(),
            "gate.reason": decision["reason"][:250],
            "gate.compared_with": evaluation.get("deployed_uri") or "none",
            **{f"gate.candidate.{k}": str(v) for k, v in evaluation["candidate"].items()},
        },
    )
    return registered


def gated_candidate(
    registered: dict[str, Any],
    evaluation: dict[str, Any],
    force_promote: bool,
    metrics: dict[str, Any] | None = None,
) -> Candidate:
    """The registered model as a promotion candidate (its metrics: the evaluation's, unless given);
    GateBlocked when the gate said no and the run does not force it. Both DAGs promote through this."""
    decision = evaluation["decision"]
    if not decision["promote"] and not force_promote:
        raise GateBlocked(f"not promoting {registered['uri']}: {decision['reason']}")
    return Candidate(
        model=ModelRef.parse(registered["uri"]),
        run_id=registered["run_id"],
        metrics=evaluation["candidate"] if metrics is None else metrics,
    )


def promote(s: RunSettings, registered: dict[str, Any], evaluation: dict[str, Any]) -> dict[str, Any]:
    accuracy = {k: v for k, v in evaluation["candidate"].items() if k.endswith("accuracy")}
    candidate = gated_candidate(registered, evaluation, s.force_promote, accuracy)
    model = candidate.model
    out: dict[str, Any] = {"uri": model.uri, "name": model.name, "version": model.version}
    if s.push and s.push.pull_request:  # the environment changes when the pull request is merged
        return {**out, **publish.propose(s.repo, s.env, candidate, s.push)}
    result = promote_commit(s.repo, s.env, candidate, branch=s.branch)
    verb = "committed" if result.committed else "already deployed at"
    print(f"promote: {candidate.model.uri} {verb} {result.commit[:12]} on {result.branch}", flush=True)
    out |= result.as_dict()
    if s.push:  # also when nothing was committed: an earlier run's push may have failed
        out["pushed"] = publish.push_branch(s.repo, result.branch, s.push)
    return out


def mark_champion(promoted: dict[str, Any]) -> dict[str, Any]:
    """Informational only: deployments name the immutable version, never the alias."""
    mlflow_rest.set_alias(promoted["name"], mlflow_rest.CHAMPION, int(promoted["version"]))
    return {"alias": mlflow_rest.CHAMPION, "version": promoted["version"]}


def verify(s: RunSettings, promoted: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The DAG's last task (guessme_pipeline.verify): the promoted model serves and passes the probe set."""
    from guessme_contracts.deploy_status import status_path
    from guessme_contracts.layout import Layout
    from guessme_pipeline.verify import verify_promoted

    mode = str(params.get("verify") or RUN_PARAM_DEFAULTS["verify"])
    if mode == "cluster" and not params.get("serve_url"):
        raise ValueError("verify=cluster needs serve_url: the game's URL as this worker reaches it")
    serve_url = str(params.get("serve_url") or f"http://127.0.0.1:{PipelineSettings().serve_port}")
    k8s = None
    if mode == "cluster":  # the RayService's status, through the Kubernetes API (as the cluster DAG reads it)
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

        from guessme_pipeline.cluster_tasks import K8S_CONN_ID

        k8s = KubernetesHook(conn_id=K8S_CONN_ID)
    result = verify_promoted(
        s.repo,
        s.env,
        promoted,
        mode,
        serve_url,
        status_path(Layout.at(s.repo, s.state_dir), s.env),
        k8s=k8s,
    )
    print(f"verify: {result['uri']} serves; probe set {result['probe_accuracy']:.0%}", flush=True)
    return result
