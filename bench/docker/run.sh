#!/usr/bin/env bash
# A Rolling rollout (maxSurge 1, maxUnavailable 0) of N replicas (default 5)
# of the sample app from v1 to v2, on the Docker runtime and, as the
# baseline of the same run, on the process runtime. Prints each total, their
# ratio, and on Docker the time spent creating and starting containers
# (the engine's Created → StartedAt of every new infra and app container,
# which a surge of 1 puts one after another on the critical path) and
# Slipway's overhead beyond it (the rest: app start-up, probes, draining
# the old pods, controllers).
#
#   bench/docker/run.sh [N]
#
# Needs a Docker engine; builds everything locally FROM scratch, pulls
# nothing. The pod-start comparison of the two runtimes is the Go benchmark
# BenchmarkPodStart in internal/runtime/docker.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-5}
work=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; wait "$pid" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

docker info >/dev/null 2>&1 || { echo "bench: no Docker engine answers (docker info failed)" >&2; exit 1; }
go build -o "$work/slipway" ./cmd/slipway
CGO_ENABLED=0 go build -o "$work/img/hello" ./examples/hello
printf 'FROM scratch\nCOPY hello /hello\nENTRYPOINT ["/hello"]\n' >"$work/img/Dockerfile"
image=slipway-bench/hello:$(sha256sum "$work/img/hello" | cut -c1-12)
DOCKER_BUILDKIT=0 docker build -q -t "$image" "$work/img" >/dev/null 2>&1
export HOME="$work/home" XDG_CONFIG_HOME="$work/home/config"
mkdir -p "$HOME"
api=127.0.0.1:17995

manifest() { # runtime version
  local run
  if [ "$1" = docker ]; then run="image: $image"; else run="command: [\"$work/img/hello\"]"; fi
  cat <<YAML
apiVersion: slipway.dev/v1
kind: App
metadata: {name: hello}
spec:
  replicas: $N
  strategy:
    type: Rolling
    rolling: {maxSurge: 1, maxUnavailable: 0}
  template:
    terminationGracePeriodSeconds: 30
    containers:
      - name: web
        $run
        env: [{name: VERSION, value: $2}]
        ports: [{name: http, port: 8080}]
        readinessProbe:
          httpGet: {path: /healthz, port: http}
          periodSeconds: 1
YAML
}

rolled_out() { # revision: Healthy on it with N/N ready and no other pods
  "$work/slipway" get app hello -o custom-columns=R:.status.readyReplicas,V:.status.latestRevision,P:.status.phase --no-headers |
    awk -v n="$N" -v r="$1" '$1==n && $2==r && $3=="Healthy" {ok=1} END {exit !ok}' &&
    [ "$("$work/slipway" get pods -l app=hello --no-headers | wc -l)" -eq "$N" ]
}

now() { date +%s.%N; }

# rollout runtime: sets start (epoch seconds) and total (seconds)
rollout() {
  local rt=$1
  "$work/slipway" up --runtime "$rt" --data-dir "$work/data-$rt" --api-addr $api --http-addr 127.0.0.1:17996 --https-addr "" \
    --write-config "$work/config-$rt.yaml" --log-level warn 2>"$work/up-$rt.log" &
  pid=$!
  export SLIPWAY_CONFIG="$work/config-$rt.yaml"
  for _ in $(seq 100); do curl -sf http://$api/readyz >/dev/null && [ -f "$SLIPWAY_CONFIG" ] && break; sleep 0.1; done
  manifest "$rt" v1 >"$work/v1.yaml"
  manifest "$rt" v2 >"$work/v2.yaml"
  "$work/slipway" apply -f "$work/v1.yaml" >/dev/null
  until rolled_out 1; do sleep 0.2; done
  local end
  start=$(now)
  "$work/slipway" apply -f "$work/v2.yaml" >/dev/null
  until rolled_out 2; do sleep 0.05; done
  end=$(now)
  total=$(echo "$end - $start" | bc)
}

rollout docker
docker_total=$total
# Every container of this Slipway created since the rollout began.
id=$(cat "$work/data-docker/runtime/docker-id")
starting=0
count=0
for c in $(docker ps -aq --filter "label=slipway.dev/managed-by=$id"); do
  read -r created started < <(docker inspect -f '{{.Created}} {{.State.StartedAt}}' "$c")
  created=$(date -d "$created" +%s.%N)
  if [ "$(echo "$created > $start" | bc)" -eq 1 ]; then
    starting=$(echo "$starting + $(date -d "$started" +%s.%N) - $created" | bc)
    count=$((count + 1))
  fi
done
kill -TERM "$pid"; wait "$pid" || true; pid=""

rollout process
process_total=$total
kill -TERM "$pid"; wait "$pid" || true; pid=""

printf '== Rolling rollout of %d replicas (maxSurge 1, maxUnavailable 0), v1 -> v2\n' "$N"
printf 'process runtime: %6.2fs (baseline)\n' "$process_total"
printf 'docker runtime:  %6.2fs (%.2fx the process runtime)\n' "$docker_total" "$(echo "scale=4; $docker_total / $process_total" | bc)"
printf 'docker: %d containers created and started in %.2fs (engine create -> started); Slipway beyond that: %.2fs (%.0f%% of the total)\n' \
  "$count" "$starting" "$(echo "$docker_total - $starting" | bc)" "$(echo "scale=4; ($docker_total - $starting) * 100 / $docker_total" | bc)"
