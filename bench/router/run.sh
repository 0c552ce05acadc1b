#!/usr/bin/env bash
# Router benchmark: the Slipway router against HAProxy, nginx, a plain Go
# httputil.ReverseProxy and direct access, on one machine, in one run.
# See bench/router/README.md for what it measures and how to read it.
#
#   sudo bench/router/run.sh                 # full: 3 rounds of 10 s at 64 and 256 connections
#   ROUNDS=1 DURATION=4 bench/router/run.sh  # quick look (about 2 minutes)
#
# Knobs (environment): ROUNDS (3), DURATION seconds per run (10), CONNS
# ("64 256"), CONTENDERS (all, space-separated names), WRK_CPU (core wrk is
# pinned to, 1), IDLE_MIN percent idle CPU awaited before each run (80),
# IDLE_WAIT seconds at most to wait for it (30), OUT results directory,
# BASELINE (a git revision whose router also runs, as slipway-base).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNS=${CONNS:-"64 256"}
WRK_CPU=${WRK_CPU:-1}
IDLE_MIN=${IDLE_MIN:-80}
IDLE_WAIT=${IDLE_WAIT:-30}
ALL="direct slipway slipway-1p slipway-std goproxy haproxy-1t haproxy-2t nginx-1w nginx-auto"
CONTENDERS=${CONTENDERS:-$ALL}
HOST=bench.test

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
OUT=${OUT:-$(mktemp -d /tmp/slipway-routerbench.XXXXXX)}
mkdir -p "$OUT"
results=$OUT/results.tsv

# --- tools -----------------------------------------------------------------
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v haproxy >/dev/null || need+=(haproxy)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v taskset >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
	echo "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y "${need[@]}" >"$OUT/apt.log" 2>&1 ||
		{ apt-get update >>"$OUT/apt.log" 2>&1 && apt-get install -y "${need[@]}" >>"$OUT/apt.log" 2>&1; } ||
		{ [[ " ${need[*]} " == *" nginx-light "* ]] && apt-get install -y "${need[@]/nginx-light/nginx}" >>"$OUT/apt.log" 2>&1; }
	# Debian starts packaged daemons; the benchmark runs its own.
	systemctl stop nginx haproxy >/dev/null 2>&1 || true
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
command -v go >/dev/null || { echo "go is required to build the backend and the routers" >&2; exit 1; }

echo "building benchsrv"
(cd "$repo" && go build -o "$OUT/benchsrv" ./bench/router/benchsrv)
B=$OUT/benchsrv

# --- contenders ------------------------------------------------------------
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

declare -A port pidof
start() { # name port command...
	local name=$1 p=$2
	shift 2
	"$@" >"$OUT/$name.log" 2>&1 &
	pids+=($!)
	pidof[$name]=$!
	port[$name]=$p
}

start backend1 18081 "$B" backend -addr 127.0.0.1:18081
start backend2 18082 "$B" backend -addr 127.0.0.1:18082
BACKENDS=127.0.0.1:18081,127.0.0.1:18082
port[direct]=18081
pidof[direct]=${pidof[backend1]}
start slipway 18090 "$B" slipway -engine fast -addr 127.0.0.1:18090 -backends $BACKENDS -host $HOST
# One P, as HAProxy's nbthread 1: on 2 cores shared with wrk and the
# backends, fewer threads waking each other costs less.
start slipway-1p 18092 env GOMAXPROCS=1 "$B" slipway -engine fast -addr 127.0.0.1:18092 -backends $BACKENDS -host $HOST
start slipway-std 18091 "$B" slipway -engine std -addr 127.0.0.1:18091 -backends $BACKENDS -host $HOST
start goproxy 18093 "$B" goproxy -addr 127.0.0.1:18093 -backends $BACKENDS
# BASELINE=REV: the router of git revision REV runs beside this tree's as
# the contender slipway-base, interleaved with the others in the same run:
# a before/after comparison that the machine's drift hits alike.
if [ -n "${BASELINE:-}" ]; then
	echo "building benchsrv at $BASELINE"
	git -C "$repo" worktree add -q --detach "$OUT/base-src" "$BASELINE"
	(cd "$OUT/base-src" && go build -o "$OUT/benchsrv-base" ./bench/router/benchsrv)
	git -C "$repo" worktree remove --force "$OUT/base-src"
	start slipway-base 18099 "$OUT/benchsrv-base" slipway -engine fast -addr 127.0.0.1:18099 -backends $BACKENDS -host $HOST
	[[ " $CONTENDERS " == *" slipway-base "* ]] || CONTENDERS="$CONTENDERS slipway-base"
fi

haproxy_cfg() { # threads port
	cat <<EOF
global
	nbthread $1
	maxconn 4096
defaults
	mode http
	option http-keep-alive
	option forwardfor
	http-reuse always
	timeout connect 5s
	timeout client 90s
	timeout server 90s
	timeout http-keep-alive 90s
frontend fe
	bind 127.0.0.1:$2
	default_backend be
backend be
	balance roundrobin
	server s1 127.0.0.1:18081
	server s2 127.0.0.1:18082
EOF
}
haproxy_cfg 1 18094 >"$OUT/haproxy-1t.cfg"
haproxy_cfg 2 18095 >"$OUT/haproxy-2t.cfg"
start haproxy-1t 18094 haproxy -db -f "$OUT/haproxy-1t.cfg"
start haproxy-2t 18095 haproxy -db -f "$OUT/haproxy-2t.cfg"

nginx_cfg() { # name workers port
	mkdir -p "$OUT/$1"
	cat <<EOF
worker_processes $2;
daemon off;
pid $OUT/$1/nginx.pid;
error_log $OUT/$1/error.log error;
events { worker_connections 8192; }
http {
	access_log off;
	keepalive_timeout 90s;
	keepalive_requests 100000000;
	client_body_temp_path $OUT/$1/body;
	proxy_temp_path $OUT/$1/proxy;
	fastcgi_temp_path $OUT/$1/fastcgi;
	uwsgi_temp_path $OUT/$1/uwsgi;
	scgi_temp_path $OUT/$1/scgi;
	upstream be {
		server 127.0.0.1:18081;
		server 127.0.0.1:18082;
		keepalive 512;
		keepalive_requests 100000000;
		keepalive_timeout 90s;
	}
	server {
		listen 127.0.0.1:$3 backlog=4096;
		location / {
			proxy_pass http://be;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host \$host;
			proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
		}
	}
}
EOF
}
nginx_cfg nginx-1w 1 18096 >"$OUT/nginx-1w.conf"
nginx_cfg nginx-auto auto 18097 >"$OUT/nginx-auto.conf"
start nginx-1w 18096 "$NGINX" -p "$OUT/nginx-1w" -c "$OUT/nginx-1w.conf"
start nginx-auto 18097 "$NGINX" -p "$OUT/nginx-auto" -c "$OUT/nginx-auto.conf"

# --- measurement -----------------------------------------------------------
procs() { # a contender's processes: the one started and its children (nginx workers)
	echo "$1"
	pgrep -P "$1" || true
}
cpu_ticks() { # utime+stime of a contender's processes
	local t=0 p
	for p in $(procs "$1"); do
		[ -r "/proc/$p/stat" ] || continue
		# Fields after the command (which may hold spaces): utime is 14, stime 15.
		t=$((t + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
	done
	echo $t
}
rss_kib() {
	local t=0 p
	for p in $(procs "$1"); do
		t=$((t + $(awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
	done
	echo $t
}
wait_idle() { # until IDLE_MIN percent of the CPU was idle over a second, or IDLE_WAIT s
	local deadline=$((SECONDS + IDLE_WAIT)) a b
	while :; do
		a=($(head -1 /proc/stat))
		sleep 1
		b=($(head -1 /proc/stat))
		local idle=$(((b[4] + b[5]) - (a[4] + a[5]))) total=0 i
		for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
		if [ "$total" -gt 0 ] && [ $((100 * idle / total)) -ge "$IDLE_MIN" ]; then return; fi
		if [ $SECONDS -ge $deadline ]; then
			echo "  (CPU not idle after ${IDLE_WAIT}s: $((100 * idle / (total > 0 ? total : 1)))% idle; running anyway)" >&2
			return
		fi
	done
}
to_ms() { # wrk latency (850.00us, 1.20ms, 2.00s) → ms
	awk -v v="$1" 'BEGIN {
		n = v + 0
		if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000
		printf "%.3f", n }'
}
tck=$(getconf CLK_TCK)

wrk_run() { # contender conns seconds → wrk output file
	taskset -c "$WRK_CPU" wrk -t1 -c"$2" -d"$3"s --latency -H "Host: $HOST" "http://127.0.0.1:${port[$1]}/" >"$4" 2>&1
}

# Wait for every listener, then warm each contender up (pools, JIT-free
# but page cache and connection pools) and check it answers 2xx.
for c in $CONTENDERS; do
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/${port[$c]}") 2>/dev/null && break
		sleep 0.1
	done
	wrk_run "$c" 64 1 "$OUT/warmup-$c.txt"
	if grep -q "Non-2xx" "$OUT/warmup-$c.txt" || ! grep -q "Requests/sec" "$OUT/warmup-$c.txt"; then
		echo "contender $c does not answer 2xx:" >&2
		cat "$OUT/warmup-$c.txt" "$OUT/$c.log" >&2
		exit 1
	fi
done

echo "# round conns contender req/s p50_ms p99_ms rss_kib cpu_us_per_req requests errors" >"$results"
echo "results in $OUT; $ROUNDS rounds of ${DURATION}s at $CONNS connections: $CONTENDERS"
for round in $(seq "$ROUNDS"); do
	for conns in $CONNS; do
		for c in $CONTENDERS; do
			wait_idle
			pid=${pidof[$c]}
			before=$(cpu_ticks "$pid")
			f=$OUT/wrk-r$round-c$conns-$c.txt
			wrk_run "$c" "$conns" "$DURATION" "$f"
			after=$(cpu_ticks "$pid")
			rps=$(awk '/^Requests\/sec/{print $2}' "$f")
			reqs=$(awk '/requests in/{print $1}' "$f")
			p50=$(to_ms "$(awk '$1=="50%"{print $2}' "$f")")
			p99=$(to_ms "$(awk '$1=="99%"{print $2}' "$f")")
			errs=$(awk '/Socket errors/{gsub(",", ""); print $4+$6+$8+$10} /Non-2xx/{print $5}' "$f" | awk '{s+=$1} END {print s+0}')
			cpu=$(awk -v t=$((after - before)) -v tck="$tck" -v n="$reqs" 'BEGIN { printf "%.2f", t / tck * 1e6 / n }')
			printf "%s %s %s %s %s %s %s %s %s %s\n" "$round" "$conns" "$c" "$rps" "$p50" "$p99" "$(rss_kib "$pid")" "$cpu" "$reqs" "$errs" | tee -a "$results"
		done
	done
done

"$B" summarize "$results" | tee "$OUT/summary.txt"
