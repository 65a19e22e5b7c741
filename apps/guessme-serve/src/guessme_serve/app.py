"""The Ray Serve application: `guessme_serve.app:app` (see serve-config.yaml).

One deployment is both the HTTP ingress and the model: no deployment-handle hop on the
latency path. `reconfigure()` receives the user_config (model_uri, WebSocket rate limit)
and swaps models in place, without a new replica.
"""

from typing import Any

from ray import serve

from guessme_serve import heap, micro_batch, ws_connections
from guessme_serve.api import bind_service, create_api
from guessme_serve.autoscaling_policy import METRIC
from guessme_serve.service import GuessmeService

api = create_api()


@serve.deployment
@serve.ingress(api)
class GuessmeServe:
    def __init__(self) -> None:
        micro_batch.hand_over_the_gil_quickly()  # the forward thread gets the GIL back in time
        self.service = GuessmeService()
        bind_service(self.service)
        self._heap_frozen = False

    def record_autoscaling_stats(self) -> dict[str, float]:
        """Ray Serve's custom-metrics hook, read by autoscaling_policy.InflightPredictionPolicy."""
        return {METRIC: self.service.load.read_mean()}

    async def reconfigure(self, user_config: dict[str, Any]) -> None:
        # Through the module: Ray pickles this class by value, and a module-level object named
        # here directly would arrive as a copy, not the one the WebSocket route counts with.
        ws_connections.CONNECTIONS.configure(user_config)
        await self.service.configure(user_config)
        if not self._heap_frozen and self.service.holder.current is not None:
            # Once, with the first model in (at start-up, before players as a rule): start-up's
            # objects leave the collector's full passes (guessme_serve.heap). Later swaps add few.
            heap.freeze_long_lived()
            self._heap_frozen = True


app = GuessmeServe.bind()  # type: ignore[attr-defined]  # serve.deployment makes it a Deployment
