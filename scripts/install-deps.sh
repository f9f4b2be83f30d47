#!/usr/bin/env bash
# Installs what joust needs to build and test on Debian 12 (run as root or
# with sudo available). Safe to run again.
set -euo pipefail
pkgs=(build-essential cmake pkg-config git python3
      libzmq3-dev libprotobuf-c-dev protobuf-c-compiler librocksdb-dev
      libturbojpeg0-dev libspng-dev libwebp-dev libcjson-dev libxxhash-dev
      libcurl4-openssl-dev libmicrohttpd-dev libarchive-dev
      iproute2 clang libclang-rt-14-dev
      python3-yaml curl systemd strace
      zlib1g-dev libzstd-dev zstd python3-venv python3-pip
      chromium python3-websocket)
# iproute2: tests/integration/test_netns.sh. clang + libclang-rt-14-dev (libFuzzer
# and the sanitizer runtimes, only "recommended" by clang on Debian 12, so not
# pulled in with --no-install-recommends): tests/fuzz. python3-yaml, curl,
# systemd (systemd-analyze): the deployment checks in tests/cluster/.
# zlib1g-dev, libzstd-dev: gzip and zstd manifests (zstd, the tool: their test). python3-venv: the test
# virtualenv below. libmicrohttpd-dev: --metrics (/metrics over HTTP).
# libarchive-dev: WebDataset tar input and `joust export dpo --format wds`. strace: test_webdataset
# checks that a worker reads shard members, never whole shards. chromium, python3-websocket: the
# report in a headless browser (tests/browser/, driven over the DevTools protocol by /usr/bin/python3).
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The remote-image tests' S3 server (moto, from PyPI) lives in a virtualenv
# in the checkout, ignored by git: .venv-test/. Without it test_fetch and
# test_remote_run report "skipped". JOUST_NO_VENV=1 skips this step.
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${JOUST_NO_VENV:-}" ] && ! "$root/.venv-test/bin/python" -c 'import moto.server, boto3' 2>/dev/null; then
    python3 -m venv "$root/.venv-test"
    "$root/.venv-test/bin/pip" install -q 'moto[server]==5.2.5'
fi
