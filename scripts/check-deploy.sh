#!/usr/bin/env bash
# Checks the deployment files without a Docker engine or a Kubernetes
# cluster: docker-compose.yml against the Compose schema, the Prometheus
# configuration and alert rules with promtool (including the alert unit
# tests), the Kubernetes manifests against the Kubernetes schemas, the demo
# scripts with sh -n, and the release build the Dockerfile runs. Then
# deploy/check_deploy.py cross-checks ports, paths, image tags, metric names
# and environment variables against each other and the built binary.
#
# Needs promtool (Debian's prometheus package; .ci/run installs it) and
# python3 with PyYAML. Installs the pinned validators kubernetes-validate and
# check-jsonschema with pip when they are missing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() {
    echo "check-deploy: $*" >&2
}

if ! command -v promtool >/dev/null; then
    echo "check-deploy: promtool not found; install Debian's prometheus package (apt-get install prometheus)" >&2
    exit 1
fi
if ! python3 -c 'import yaml' 2>/dev/null; then
    step "installing PyYAML"
    python3 -m pip install --quiet --disable-pip-version-check 'PyYAML==6.0.3'
fi
if ! python3 -m kubernetes_validate --version >/dev/null 2>&1 || ! python3 -m check_jsonschema --version >/dev/null 2>&1; then
    step "installing kubernetes-validate and check-jsonschema"
    python3 -m pip install --quiet --disable-pip-version-check 'kubernetes-validate==1.37.0' 'check-jsonschema==0.39.0'
fi

step "docker-compose.yml against the Compose specification schema"
python3 -m check_jsonschema --builtin-schema vendor.compose-spec docker-compose.yml

step "promtool check config, check rules and test rules"
promtool check config deploy/prometheus/prometheus.yml
promtool check rules deploy/prometheus/alerts.yml
(cd deploy/prometheus && promtool test rules alerts_test.yml)

step "Kubernetes manifests against the Kubernetes 1.37 schemas (strict)"
python3 -m kubernetes_validate --strict --kubernetes-version 1.37.0 deploy/k8s/*.yaml

step "demo scripts parse as POSIX sh"
for script in deploy/demo/*.sh; do
    sh -n "$script"
done

step "cargo build --release -p smsfold --locked, as the Dockerfile runs it"
cargo build --release -p smsfold --locked
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')

step "cross-checks"
python3 deploy/check_deploy.py "$target_dir/release/smsfold"
