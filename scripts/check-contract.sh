#!/usr/bin/env bash
# Checks the event contract: lints the .proto files with buf, checks them
# for breaking changes against the commit that first added proto/, and
# validates docs/asyncapi.yaml with the AsyncAPI parser and its payload
# schemas with Ajv (tools/contract/check-asyncapi.mjs lists what it checks).
#
# Needs Node.js and npm. Installs the pinned tools of tools/contract with
# `npm ci` when its package-lock.json changed since the last install. The
# breaking check needs the git history, so it fails in a shallow clone.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() {
    echo "check-contract: $*" >&2
}

for tool in node npm git; do
    if ! command -v "$tool" >/dev/null; then
        echo "check-contract: $tool not found; install Node.js, npm and git (apt-get install nodejs npm git)" >&2
        exit 1
    fi
done

# Install scripts stay off: buf finds its platform binary without its
# script, and the script of @scarf/scarf (a dependency of the AsyncAPI
# parser) would send usage analytics over the network.
lock_hash=$(sha256sum tools/contract/package-lock.json | cut -d' ' -f1)
stamp=tools/contract/node_modules/.installed-lock-sha256
if [[ ! -f $stamp || $(cat "$stamp") != "$lock_hash" ]]; then
    step "npm ci in tools/contract"
    (cd tools/contract && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    echo "$lock_hash" > "$stamp"
fi
buf=$PWD/tools/contract/node_modules/.bin/buf

step "buf lint (configuration: proto/buf.yaml)"
(cd proto && "$buf" lint)

against=$(git log --diff-filter=A --format=%H -- proto/ | tail -n 1)
if [[ -z $against ]] || ! git cat-file -e "$against^{commit}" 2>/dev/null; then
    echo "check-contract: the commit that added proto/ is not in this clone; fetch the full history (git fetch --unshallow)" >&2
    exit 1
fi
step "buf breaking against $against, the commit that added proto/"
"$buf" breaking proto --against ".git#ref=$against,subdir=proto"

step "docs/asyncapi.yaml"
(cd tools/contract && node check-asyncapi.mjs)
