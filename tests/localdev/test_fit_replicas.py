"""Local runs cap the autoscaler at this machine's cores (guessme_local.ray_head.fit_replicas_to_cores):
the shared serve config's max_replicas is for a cluster, where each further replica brings cores."""

import pytest

from guessme_local.ray_head import SERVE_CONFIG, fit_replicas_to_cores, load_serve_config

pytestmark = pytest.mark.unit


def _scaling(config: dict) -> dict:
    (deployment,) = config["applications"][0]["deployments"]
    return deployment["autoscaling_config"]


def test_max_replicas_is_capped_at_the_cores_and_nothing_else_changes() -> None:
    shared = load_serve_config(SERVE_CONFIG)
    assert _scaling(shared)["max_replicas"] == 4, "the cluster's ceiling, kept in the shared config"
    local = fit_replicas_to_cores(shared, cores=2)
    assert _scaling(local)["max_replicas"] == 2
    assert _scaling(shared)["max_replicas"] == 4, "the caller's config is not modified"
    _scaling(local)["max_replicas"] = 4
    assert local == shared, "only max_replicas may differ"


def test_the_cap_never_goes_below_min_or_initial_replicas_or_above_the_config() -> None:
    shared = load_serve_config(SERVE_CONFIG)
    assert _scaling(fit_replicas_to_cores(shared, cores=1))["max_replicas"] == 2  # min_replicas: 2
    assert _scaling(fit_replicas_to_cores(shared, cores=64))["max_replicas"] == 4
