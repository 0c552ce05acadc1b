#!/usr/bin/env bash
# Builds etcd from the Go module proxy into a cache directory this machine
# keeps, and prints the binary's path. A binary already there is reused.
#
#   .ci/etcd.sh                 # -> ~/.cache/slipway/etcd-v3.7.3/etcd
#   SLIPWAY_ETCD_BIN=$(.ci/etcd.sh) go test ./internal/store/etcd
#
# The etcd server module is built in a throwaway wrapper module so that its
# dependency tree never enters Slipway's go.mod.
set -euo pipefail

version=${ETCD_VERSION:-v3.7.3}
dir="${XDG_CACHE_HOME:-$HOME/.cache}/slipway/etcd-$version"
bin="$dir/etcd"

# has_version BIN: whether BIN is etcd $version (read whole: a pipe into
# grep -q could fail under pipefail when grep stops reading first).
has_version() {
  local v
  v=$("$1" --version 2>/dev/null) || return 1
  [[ "$v" == *"etcd Version: ${version#v}"$'\n'* ]]
}

if [ -x "$bin" ] && has_version "$bin"; then
  echo "$bin"
  exit 0
fi

export PATH="$PATH:/usr/local/go/bin"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$dir"
start=$(date +%s)
echo "etcd.sh: building etcd $version into $bin (minutes on a cold cache)" >&2
(
  cd "$work"
  cat >go.mod <<EOF
module slipway.dev/etcd-build

go 1.26
EOF
  export GOFLAGS=-mod=mod GOWORK=off
  go get "go.etcd.io/etcd/server/v3@$version" >&2
  # The module's root package is etcd's main (server/main.go).
  go build -trimpath -o "$bin.tmp" go.etcd.io/etcd/server/v3 >&2
)
mv "$bin.tmp" "$bin"
if ! has_version "$bin"; then
  echo "etcd.sh: $bin does not report version $version:" >&2
  "$bin" --version >&2
  exit 1
fi
echo "etcd.sh: built in $(($(date +%s) - start))s" >&2
echo "$bin"
