#!/usr/bin/env bash
# Rollout benchmarks through the real binary (`slipway up`, real processes,
# the real router), each figure next to its baseline measured in the same
# run:
#   - Rolling overhead: a rollout of 10 replicas beyond the sample app's own
#     start-to-ready time (10 copies started directly, no Slipway);
#   - promotion latency: from `rollout promote` of a BlueGreen rollout to
#     every new request answered by the new revision, under load.
# Medians of RUNS runs (default 3).
#
#   bench/rollout/run.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
export ZD_BENCH_RUNS=${1:-3}
go test -count=1 -timeout 20m ./test/e2e -run 'TestRolloutBench' -bench 'RolloutBench' -v |
  grep -E 'BENCH|^(--- |ok|FAIL)'
