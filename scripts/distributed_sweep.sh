#!/usr/bin/env bash
# Several sweep workers sharing one Optuna study in PostgreSQL (the recipe behind
# `make sweep-distributed`):
#
#   scripts/distributed_sweep.sh WORKERS [lapp train -m overrides ...]
#   scripts/distributed_sweep.sh 2 hparams_search=digits_mlp hydra.sweeper.n_trials=20
#
# 1. storage: $LAPP_STORAGE_URL if set (a server every worker machine reaches), else a local
#    throwaway server (scripts/postgres.sh, state in $LAPP_PG_STATE, default outputs/.postgres);
# 2. the study is created once, by a sweep of 0 trials (workers starting together never race
#    to create it);
# 3. WORKERS `lapp train -m` processes run the same sweep, 1 thread each, logs in
#    $LAPP_OUTPUT_DIR/sweep_workers/worker_N.log; each asks the study for the next trial until
#    n_trials are done. The trial of a worker that dies is failed and run again by the others
#    (heartbeats); the exit status is non-zero when a worker failed;
# 4. the local server is stopped at the end unless KEEP_SERVER=1.
#
# On other machines, run step 3 by hand with the same overrides and the same URL:
#   LAPP_STORAGE_URL=... lapp train -m OVERRIDES 'hydra.sweeper.storage=${oc.env:LAPP_STORAGE_URL}' threads=1
set -euo pipefail
cd "$(dirname "$0")/.."

[[ $# -ge 1 && $1 =~ ^[1-9][0-9]*$ ]] || {
  echo "usage: $0 WORKERS [lapp train -m overrides ...]  (WORKERS: a positive integer)" >&2
  exit 2
}
workers=$1
shift
[[ $# -gt 0 ]] || set -- hparams_search=digits_mlp
read -ra lapp <<< "${LAPP:-.venv/bin/lapp}"  # the lapp command (may be several words)
out=${LAPP_OUTPUT_DIR:-outputs}
state=${LAPP_PG_STATE:-$out/.postgres}
logs=$out/sweep_workers
mkdir -p "$logs"

started_server=0
if [[ -z "${LAPP_STORAGE_URL:-}" ]]; then
  LAPP_STORAGE_URL=$(scripts/postgres.sh start "$state")
  started_server=1
fi
export LAPP_STORAGE_URL
cleanup() {
  if [[ $started_server -eq 1 && "${KEEP_SERVER:-0}" != 1 ]]; then scripts/postgres.sh stop "$state"; fi
}
trap cleanup EXIT

# The URL stays in the environment: not on any command line, not in Hydra's saved configs.
storage='hydra.sweeper.storage=${oc.env:LAPP_STORAGE_URL}'

echo "[distributed sweep] creating the study"
"${lapp[@]}" train -m "$@" "$storage" hydra.sweeper.n_trials=0 hydra.sweeper.plots=false

pids=()
for i in $(seq 1 "$workers"); do
  # one thread each, for torch (threads=1) and the BLAS and OpenMP pools loaded before it
  OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1} \
    OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1} \
    "${lapp[@]}" train -m "$@" "$storage" threads=1 >"$logs/worker_$i.log" 2>&1 &
  pids+=($!)
  echo "[distributed sweep] worker $i: pid $!, log $logs/worker_$i.log"
done
status=0
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then
    echo "[distributed sweep] worker $((i + 1)) failed; see $logs/worker_$((i + 1)).log" >&2
    status=1
  fi
done
grep -h "^\[sweep" "$logs"/worker_*.log | tail -n 3 || true
exit $status
