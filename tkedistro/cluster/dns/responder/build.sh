#!/bin/sh
# Builds tkedistro-dns in GOPATH mode against the Kubernetes tree's vendor folder, read-only
# and offline. Runs in the builder container: the tree at /src (read-only), the Go sources
# at /dns (read-only), the writable work folder at /out. Usage: build.sh OUTPUT VERSION
set -eu
out=$1
version=$2
pkg=/tmp/gopath/src/tkedistro-dns
mkdir -p "$pkg"
cp /dns/*.go "$pkg/"
# vendor/k8s.io/* are relative links into staging/, so they resolve inside /src.
ln -s /src/vendor "$pkg/vendor"
cd "$pkg"
export GO111MODULE=off GOPATH=/tmp/gopath GOFLAGS= CGO_ENABLED=0
go version
unformatted=$(gofmt -l /dns)
[ -z "$unformatted" ] || { echo "not gofmt-formatted: $unformatted" >&2; exit 1; }
go vet .
go test -count=1 .
go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$out" .
"$out" --version
