#!/usr/bin/env bash
# Virtualenvs for the peer systems of benchmarks/peers.py (issue 7). Idempotent: an existing venv
# whose pinned packages are already installed is left alone.
#
#   bash benchmarks/setup_peers.sh            # both venvs
#   HYPEROPT_MONGO_VENV=/x OPTUNA_PG_VENV=/y bash benchmarks/setup_peers.sh
#
# 1. $HYPEROPT_MONGO_VENV (default /tmp/venv-hyperopt-mongo): Hyperopt with MongoTrials and
#    hyperopt-mongo-worker. Hyperopt's mongoexp.py calls pymongo 3 APIs that pymongo 4 removed
#    (Collection.insert/remove/update/find_and_modify, Cursor.count), so it needs pymongo 3.x.
# 2. $OPTUNA_PG_VENV (default /tmp/venv-optuna-pg): Optuna with SQLAlchemy and psycopg2-binary, for
#    JournalStorage (file) and RDBStorage (PostgreSQL).
# PostgreSQL itself comes from Debian: apt-get install postgresql-15 (peers.py looks in
# /usr/lib/postgresql/*/bin, or $PG_BIN).
set -euo pipefail
PY=${PYTHON:-python3}
HYPEROPT_MONGO_VENV=${HYPEROPT_MONGO_VENV:-/tmp/venv-hyperopt-mongo}
OPTUNA_PG_VENV=${OPTUNA_PG_VENV:-/tmp/venv-optuna-pg}

HYPEROPT_PINS=(hyperopt==0.2.7 pymongo==3.13.0 numpy==1.26.4 scipy==1.13.1 networkx==3.3 future==1.0.0
               cloudpickle==3.0.0 tqdm==4.66.4 py4j==0.10.9.7 six==1.16.0)
OPTUNA_PINS=(optuna==5.0.0 SQLAlchemy==2.1.9 psycopg2-binary==2.9.13 numpy==2.4.6)

make_venv() {  # make_venv DIR PINS...
    local dir=$1; shift
    if [ -x "$dir/bin/python" ] && "$dir/bin/python" - "$@" <<'PYEOF'
import sys
from importlib.metadata import version, PackageNotFoundError
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    try:
        if version(name) != want:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PYEOF
    then
        echo "$dir: up to date"
        return
    fi
    [ -x "$dir/bin/python" ] || "$PY" -m venv "$dir"
    "$dir/bin/python" -m pip install -q --upgrade pip
    "$dir/bin/python" -m pip install -q "$@"
    echo "$dir: installed $*"
}

make_venv "$HYPEROPT_MONGO_VENV" "${HYPEROPT_PINS[@]}"
make_venv "$OPTUNA_PG_VENV" "${OPTUNA_PINS[@]}"
