#!/bin/sh
# Worker container entrypoint: configuration from the environment, then exec so signals reach it.
#   HYPERDIST_MONGO_URL (required), HYPERDIST_EXP (optional), HYPERDIST_ALLOW (space-separated)
set -eu
: "${HYPERDIST_MONGO_URL:?set HYPERDIST_MONGO_URL to the MongoDB URL}"
: "${HYPERDIST_ALLOW:?set HYPERDIST_ALLOW to the objective modules this worker may import}"
set -- --idle-timeout "${HYPERDIST_IDLE_TIMEOUT:-300}" "$@"
if [ -n "${HYPERDIST_EXP:-}" ]; then
    set -- --exp "$HYPERDIST_EXP" "$@"
fi
exec hyperdist worker "$@"
