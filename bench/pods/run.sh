#!/usr/bin/env bash
# Slipway's own memory and CPU while idle: with no pods (the baseline, same
# run) and with N pods of the sample app (default 300), each probed every
# 10 s. Prints RSS and CPU time per second of `slipway up` for both.
#
#   bench/pods/run.sh [N] [IDLE_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-300}
IDLE=${2:-30}
work=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; wait "$pid" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/slipway" ./cmd/slipway
go build -o "$work/hello" ./examples/hello
export HOME="$work/home" XDG_CONFIG_HOME="$work/home/config"
mkdir -p "$HOME"
api=127.0.0.1:17990
"$work/slipway" up --data-dir "$work/data" --api-addr $api --http-addr 127.0.0.1:17991 --log-level warn 2>"$work/up.log" &
pid=$!
export SLIPWAY_SERVER=http://$api
for _ in $(seq 100); do curl -sf http://$api/readyz >/dev/null && break; sleep 0.1; done

ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14+$15}' "/proc/$pid/stat"; }
rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$pid/status"; }
measure() { # label; sets m_rss and m_cpu
  local t0 t1
  t0=$(cpu_ticks); sleep "$IDLE"; t1=$(cpu_ticks)
  m_cpu=$(( (t1 - t0) * 1000 / ticks ))
  m_rss=$(rss_kib)
  printf '%-12s rss=%6d KiB  cpu=%5d ms over %ds (%.2f%% of one core)\n' "$1" "$m_rss" "$m_cpu" "$IDLE" \
    "$(echo "scale=2; $m_cpu / ($IDLE * 10)" | bc)"
}

echo "== idle with 0 pods (baseline)"
measure "0 pods"
base_rss=$m_rss base_cpu=$m_cpu

cat > "$work/app.yaml" <<YAML
apiVersion: slipway.dev/v1
kind: App
metadata: {name: hello}
spec:
  replicas: $N
  template:
    containers:
      - name: web
        command: ["$work/hello"]
        ports: [{name: http, port: 8080}]
        readinessProbe:
          httpGet: {path: /healthz, port: http}
          periodSeconds: 10
YAML
start=$(date +%s.%N)
"$work/slipway" apply -f "$work/app.yaml" >/dev/null
until "$work/slipway" get app hello --no-headers | awk '{print $2}' | grep -qx "$N/$N"; do sleep 1; done
end=$(date +%s.%N)
printf '== %d pods ready in %.1fs\n' "$N" "$(echo "$end - $start" | bc)"
sleep 5 # let the start-up burst of status writes settle
measure "$N pods"
rss=$m_rss cpu=$m_cpu
printf '== ratio to the baseline: rss %.2fx (+%d KiB, %.1f KiB per pod), cpu +%d ms per %ds\n' \
  "$(echo "scale=2; $rss / $base_rss" | bc)" $((rss - base_rss)) "$(echo "scale=1; ($rss - $base_rss) / $N" | bc)" $((cpu - base_cpu)) "$IDLE"
