#!/usr/bin/env bash
# Router benchmark: the Slipway router against HAProxy, nginx, a plain Go
# httputil.ReverseProxy and direct access, on one machine, in one run.
# See bench/router/README.md for what it measures and how to read it.
#
#   sudo bench/router/run.sh                 # full: 3 rounds of 10 s at 64 and 256 connections
#   ROUNDS=1 DURATION=4 bench/router/run.sh  # quick look (about 2 minutes)
#
#   SUITES=https bench/router/run.sh         # HTTPS only: HTTP/1.1, h2 and new connections, ECDSA and RSA
#
# Knobs (environment): ROUNDS (3), DURATION seconds per run (10), CONNS
# ("64 256"), SUITES ("http": plain HTTP; "https"; or both), CONTENDERS
# (all, space-separated names) and TLS_CONTENDERS for HTTPS, TLS_KEYS
# ("ecdsa rsa"), TLS_LOADS ("h1 h2 handshake"), WRK_CPU (core the load
# generator is pinned to, 1), IDLE_MIN percent idle CPU awaited before
# each run (80), IDLE_WAIT seconds at most to wait for it (30), OUT
# results directory, BASELINE (a git revision whose router also runs, as
# slipway-base).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNS=${CONNS:-"64 256"}
WRK_CPU=${WRK_CPU:-1}
IDLE_MIN=${IDLE_MIN:-80}
IDLE_WAIT=${IDLE_WAIT:-30}
ALL="direct slipway slipway-1p slipway-std goproxy haproxy-1t haproxy-2t nginx-1w nginx-auto"
CONTENDERS=${CONTENDERS:-$ALL}
SUITES=${SUITES:-http}
TLS_ALL="slipway slipway-std haproxy-1t haproxy-2t nginx-1w nginx-auto"
TLS_CONTENDERS=${TLS_CONTENDERS:-$TLS_ALL}
TLS_KEYS=${TLS_KEYS:-"ecdsa rsa"}
TLS_LOADS=${TLS_LOADS:-"h1 h2 handshake"}
HOST=bench.test
# The HTTPS contenders' host: a name that resolves to 127.0.0.1 (wrk and
# h2load send it as SNI and Host), in the certificate made for the run.
TLS_HOST=localhost
has_suite() { [[ " $SUITES " == *" $1 "* ]]; }

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
has_suite https && { command -v h2load >/dev/null || need+=(nghttp2-client); command -v openssl >/dev/null || need+=(openssl); }
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
	# A baseline from before the HTTPS contenders has no TLS listener flag.
	if "$OUT/benchsrv-base" slipway -h 2>&1 | grep -q -- -tls-cert; then
		[[ " $TLS_CONTENDERS " == *" slipway-base "* ]] || TLS_CONTENDERS="$TLS_CONTENDERS slipway-base"
	else
		TLS_CONTENDERS=${TLS_CONTENDERS/slipway-base/}
	fi
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

# --- HTTPS contenders ------------------------------------------------------
# One certificate per key type, made for the run, served by every
# contender: each runs once per key type on its own port (tlsname@key).
if has_suite https; then
	ki=0
	for key in $TLS_KEYS; do
		d=$OUT/tls-$key
		mkdir -p "$d"
		case $key in
		ecdsa) newkey=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1) ;;
		rsa) newkey=(-newkey rsa:2048) ;;
		*) echo "TLS_KEYS: unknown key type $key (want ecdsa or rsa)" >&2; exit 2 ;;
		esac
		openssl req -x509 "${newkey[@]}" -nodes -days 2 -subj "/CN=$TLS_HOST" \
			-addext "subjectAltName=DNS:$TLS_HOST" -keyout "$d/key.pem" -out "$d/cert.pem" >"$d/openssl.log" 2>&1
		cat "$d/cert.pem" "$d/key.pem" >"$d/haproxy.pem"
		b=$((18200 + 20 * ki))
		ki=$((ki + 1))
		tls_args=(-backends $BACKENDS -host $TLS_HOST -tls-cert "$d/cert.pem" -tls-key "$d/key.pem")
		start "slipway@$key" $((b + 0)) "$B" slipway -engine fast -addr 127.0.0.1:$((b + 0)) "${tls_args[@]}"
		start "slipway-std@$key" $((b + 1)) "$B" slipway -engine std -addr 127.0.0.1:$((b + 1)) "${tls_args[@]}"
		if [[ " $TLS_CONTENDERS " == *" slipway-base "* ]]; then
			start "slipway-base@$key" $((b + 2)) "$OUT/benchsrv-base" slipway -engine fast -addr 127.0.0.1:$((b + 2)) "${tls_args[@]}"
		fi
		for t in 1 2; do
			p=$((b + 2 + t))
			haproxy_cfg $t $p | sed "s#bind 127.0.0.1:$p#bind 127.0.0.1:$p ssl crt $d/haproxy.pem alpn h2,http/1.1 ssl-min-ver TLSv1.2#" >"$d/haproxy-${t}t.cfg"
			start "haproxy-${t}t@$key" $p haproxy -db -f "$d/haproxy-${t}t.cfg"
		done
		for w in 1w auto; do
			p=$((b + 5))
			[ $w = auto ] && p=$((b + 6))
			nginx_cfg "tls-$key/nginx-$w" "${w%w}" $p | sed \
				-e "s#listen 127.0.0.1:$p backlog=4096;#listen 127.0.0.1:$p ssl http2 backlog=4096;\n\t\tssl_certificate $d/cert.pem;\n\t\tssl_certificate_key $d/key.pem;\n\t\tssl_protocols TLSv1.2 TLSv1.3;\n\t\tssl_session_cache shared:SSL:10m;#" \
				-e "s#proxy_set_header X-Forwarded-For#proxy_set_header X-Forwarded-Proto https;\n\t\t\tproxy_set_header X-Forwarded-For#" >"$d/nginx-$w.conf"
			start "nginx-$w@$key" $p "$NGINX" -p "$OUT/tls-$key/nginx-$w" -c "$d/nginx-$w.conf"
		done
	done
fi

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
# load_run contender load conns seconds file: one run of a load, its
# result written as wrk writes it (what measure parses). Loads: http
# (plain keep-alive, wrk), h1 (HTTPS keep-alive, wrk), h2 (HTTP/2 over TLS,
# h2load, one stream in flight per connection as wrk has one request),
# handshake (a new connection, full handshake, per request: benchsrv
# handshakes, as wrk pinned to WRK_CPU).
load_run() {
	local c=$1 load=$2 n=$3 d=$4 f=$5 url="https://$TLS_HOST:${port[$1]}/"
	case $load in
	http) wrk_run "$c" "$n" "$d" "$f" ;;
	h1) taskset -c "$WRK_CPU" wrk -t1 -c"$n" -d"$d"s --latency "$url" >"$f" 2>&1 ;;
	h2)
		taskset -c "$WRK_CPU" h2load -t1 -c"$n" -m1 -D "$d" --log-file="$f.log" "$url" >"$f.h2load" 2>&1 || true
		h2load_as_wrk "$f.h2load" "$f.log" >"$f"
		rm -f "$f.log"
		;;
	handshake) taskset -c "$WRK_CPU" env GOMAXPROCS=1 "$B" handshakes -url "$url" -c "$n" -d "${d}s" >"$f" 2>&1 ;;
	esac
}
h2load_as_wrk() { # h2load output, its per-request log → wrk's lines
	local out=$1 log=$2
	awk '/^finished in/{gsub(",", ""); for (i = 1; i <= NF; i++) if ($(i+1) == "req/s") print "Requests/sec: " $i}' "$out"
	awk '/^requests:/{gsub(",", ""); print "  " $8 " requests in"; e = $2 - $8; if (e > 0) print "  Non-2xx or failed responses: " e}
		/^status codes:/{gsub(",", ""); e = $5 + $7 + $9; if (e > 0) print "  Non-2xx or 3xx responses: " e}' "$out"
	if [ -s "$log" ]; then
		cut -f3 "$log" | sort -n | awk '{v[NR] = $1} END {
			printf "  Latency Distribution\n     50%%   %.3fms\n     99%%   %.3fms\n", v[int(NR * 0.5) + 1] / 1000, v[int(NR * 0.99) + 1] / 1000 }'
	fi
}

# The runs of a round: "process load" pairs (a result's contender is
# process for plain HTTP, name@load-key for HTTPS).
jobs=()
if has_suite http; then
	for c in $CONTENDERS; do jobs+=("$c http"); done
fi
if has_suite https; then
	for key in $TLS_KEYS; do
		for load in $TLS_LOADS; do
			for c in $TLS_CONTENDERS; do jobs+=("$c@$key $load"); done
		done
	done
fi
label() { # process load → the contender's name in the results
	local c=$1 load=$2
	if [ "$load" = http ]; then echo "$c"; else echo "${c%@*}@$load-${c#*@}"; fi
}

# Wait for every listener, then warm each contender up (pools, JIT-free
# but page cache and connection pools) and check it answers 2xx.
for j in "${jobs[@]}"; do
	read -r c load <<<"$j"
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/${port[$c]}") 2>/dev/null && break
		sleep 0.1
	done
	w=$OUT/warmup-$(label "$c" "$load").txt
	load_run "$c" "$load" 64 1 "$w"
	if grep -q "Non-2xx" "$w" || ! grep -q "Requests/sec" "$w" || grep -q "^Requests/sec: *0.00$" "$w"; then
		echo "contender $c ($load) does not answer 2xx:" >&2
		cat "$w" "$OUT/$c.log" >&2
		exit 1
	fi
done

echo "# round conns contender req/s p50_ms p99_ms rss_kib cpu_us_per_req requests errors" >"$results"
echo "results in $OUT; $ROUNDS rounds of ${DURATION}s at $CONNS connections: ${#jobs[@]} contenders (suites: $SUITES)"
for round in $(seq "$ROUNDS"); do
	for conns in $CONNS; do
		for j in "${jobs[@]}"; do
			read -r c load <<<"$j"
			wait_idle
			pid=${pidof[$c]}
			before=$(cpu_ticks "$pid")
			name=$(label "$c" "$load")
			f=$OUT/wrk-r$round-c$conns-$name.txt
			load_run "$c" "$load" "$conns" "$DURATION" "$f"
			after=$(cpu_ticks "$pid")
			rps=$(awk '/^Requests\/sec/{print $2}' "$f")
			reqs=$(awk '/requests in/{print $1}' "$f")
			p50=$(to_ms "$(awk '$1=="50%"{print $2}' "$f")")
			p99=$(to_ms "$(awk '$1=="99%"{print $2}' "$f")")
			errs=$(awk '/Socket errors/{gsub(",", ""); print $4+$6+$8+$10} /Non-2xx/{print $5}' "$f" | awk '{s+=$1} END {print s+0}')
			cpu=$(awk -v t=$((after - before)) -v tck="$tck" -v n="$reqs" 'BEGIN { printf "%.2f", t / tck * 1e6 / n }')
			printf "%s %s %s %s %s %s %s %s %s %s\n" "$round" "$conns" "$name" "$rps" "$p50" "$p99" "$(rss_kib "$pid")" "$cpu" "$reqs" "$errs" | tee -a "$results"
		done
	done
done

"$B" summarize "$results" | tee "$OUT/summary.txt"
