#!/usr/bin/env bash
# Builds the chorus:dev image from static binaries compiled here, so
# docker-compose needs no registry. Usage: deploy/build-images.sh [tag]
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:-chorus:dev}"
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
echo "building static binaries (the first build of the Temporal server takes minutes)..."
CGO_ENABLED=0 GOTOOLCHAIN=local go build -trimpath -ldflags "-s -w" -o "$ctx/worker" ./worker
CGO_ENABLED=0 GOTOOLCHAIN=local go build -trimpath -ldflags "-s -w" -o "$ctx/starter" ./starter
if [ ! -x /bin/busybox ]; then
  echo "/bin/busybox is missing: apt-get install busybox-static" >&2
  exit 1
fi
cp /bin/busybox "$ctx/busybox"
mkdir -m 1777 "$ctx/tmp"
cp deploy/docker/Dockerfile "$ctx/Dockerfile"
docker build -q -t "$tag" "$ctx"
echo "built $tag"
