"""Ray Serve custom autoscaling policy: replicas for the predictions in flight, not the sockets.

Runs in the Serve controller, which receives it cloudpickled by value (ray.serve.config
AutoscalingPolicy.serialize_policy registers this module by value): keep it free of imports
beyond the standard library. Ray wraps it (ray.serve.autoscaling_policy._apply_autoscaling_config)
with min/max_replicas, the up/downscaling factors and the up/downscale delays of the
deployment's autoscaling_config, so this only says how many replicas the load calls for.
"""

from typing import Any

METRIC = "inflight_predictions"  # GuessmeServe.record_autoscaling_stats reports it


class InflightPredictionPolicy:
    """Desired replicas = total mean predictions in flight / `target_per_replica`.

    With no report yet (a replica just started) the current target stands.
    """

    def __init__(self, target_per_replica: float = 4.0) -> None:
        if target_per_replica <= 0:
            raise ValueError("target_per_replica must be > 0")
        self.target_per_replica = float(target_per_replica)

    def __call__(self, ctx: Any) -> tuple[float, dict[str, Any]]:
        per_replica: dict[Any, float] = (ctx.aggregated_metrics or {}).get(METRIC, {})
        if not per_replica:
            return ctx.target_num_replicas, {}
        total = sum(per_replica.values())
        return total / self.target_per_replica, {"inflight_predictions": total}
