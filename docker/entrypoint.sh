#!/usr/bin/env bash
# Starts a Ray head or worker node in the foreground (the container lives as long as Ray does).
#   snnsearch-entrypoint head              GCS + dashboard/job API, no trials (num-gpus 0)
#   snnsearch-entrypoint worker            joins $RAY_HEAD_ADDRESS (default ray-head:6379)
#   snnsearch-entrypoint <any command>     runs it (e.g. ray job submit ...)
# Token authentication is mandatory: without a readable token file the node refuses to start,
# because a Ray cluster without it executes code for anyone who reaches its ports.
set -euo pipefail

role="${1:-head}"
token_file="${RAY_AUTH_TOKEN_PATH:-/run/secrets/ray_auth_token}"

require_token() {
    if [[ "${RAY_AUTH_MODE:-}" != "token" ]]; then
        echo "error: RAY_AUTH_MODE must be 'token' (got '${RAY_AUTH_MODE:-}')" >&2
        exit 64
    fi
    if [[ ! -s "$token_file" ]]; then
        echo "error: Ray token file $token_file missing or empty; create docker/secrets/ray_auth_token (ray get-auth-token --generate)" >&2
        exit 64
    fi
    export RAY_AUTH_TOKEN_PATH="$token_file"
}

# MLflow's client reads MLFLOW_TRACKING_PASSWORD; the value comes from a mounted secret file
# so that it never appears in compose files, manifests or `docker inspect`.
if [[ -n "${MLFLOW_TRACKING_PASSWORD_FILE:-}" && -s "${MLFLOW_TRACKING_PASSWORD_FILE}" ]]; then
    MLFLOW_TRACKING_PASSWORD="$(tr -d '\n' < "$MLFLOW_TRACKING_PASSWORD_FILE")"
    export MLFLOW_TRACKING_PASSWORD
fi

case "$role" in
    head)
        require_token
        # Dashboard/job API bind to all interfaces of the *container*; compose publishes 8265
        # on the host's loopback only and never publishes 6379 (see docs/cluster.md).
        exec ray start --head --block \
            --port=6379 \
            --dashboard-host=0.0.0.0 --dashboard-port=8265 \
            --num-gpus=0
        ;;
    worker)
        require_token
        exec ray start --block --address="${RAY_HEAD_ADDRESS:-ray-head:6379}"
        ;;
    *)
        exec "$@"
        ;;
esac
