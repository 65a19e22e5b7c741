"""The same API under plain uvicorn, without Ray: the benchmark's baseline and a quick dev server.

python -m guessme_serve.standalone --port 8001 --model-uri models:/guessme-cnn/3
"""

import argparse
import asyncio
import json

import uvicorn

from guessme_serve import heap, micro_batch
from guessme_serve.api import bind_service, create_api
from guessme_serve.service import GuessmeService, ServiceSettings
from guessme_serve.ws_connections import CONNECTIONS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--model-uri", default="")
    # No defaults of their own: unset, the app's (ServiceSettings) apply, as in the serve config.
    parser.add_argument("--ws-rate-per-s", type=float, help=f"default {ServiceSettings.ws_rate_per_s:g}")
    parser.add_argument("--ws-burst", type=float, help=f"default {ServiceSettings.ws_burst:g}")
    parser.add_argument("--user-config", default="{}", help="more user_config settings, as JSON")
    args = parser.parse_args()

    micro_batch.hand_over_the_gil_quickly()  # as the Ray replica does: the baselines compare alike
    service = GuessmeService()
    flags = {"ws_rate_per_s": args.ws_rate_per_s, "ws_burst": args.ws_burst}
    config = {
        **json.loads(args.user_config),
        **{key: value for key, value in flags.items() if value is not None},
        "model_uri": args.model_uri,
    }
    CONNECTIONS.configure(config)
    asyncio.run(service.configure(config))
    if service.holder.last_error:
        raise SystemExit(service.holder.last_error)
    bind_service(service)
    heap.freeze_long_lived()  # as the Ray replica does once its model is in: the baselines compare alike
    uvicorn.run(create_api(), host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
