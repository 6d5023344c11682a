"""Check that the deployment files agree with each other and with smsfold.

Run by scripts/check-deploy.sh after it has built the release binary:

    python3 deploy/check_deploy.py SMSFOLD_BINARY

Reads docker-compose.yml, the Dockerfile, .dockerignore and everything under
deploy/, runs `SMSFOLD_BINARY run --help` to learn the worker's environment
variables and defaults, and `ldd SMSFOLD_BINARY` for the libraries the
runtime image must provide. Prints one line per failed check and exits 1 if
any failed. Schema validation of the files is done by the shell script with
real validators. This script checks what no schema covers.
"""

import fnmatch
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent

# Series Prometheus itself provides.
PROMETHEUS_METRICS = {"up"}

# Packages every debian:bookworm-slim image contains.
ESSENTIAL_PACKAGES = {"libc6", "libgcc-s1"}

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
    return condition


def load_yaml(relative):
    with open(ROOT / relative, encoding="utf-8") as file:
        return yaml.safe_load(file)


def run_help(binary):
    """Return {ENV_VAR: default or None} from `smsfold run --help`."""
    text = subprocess.run([binary, "run", "--help"], check=True, capture_output=True, text=True).stdout
    variables = {}
    for entry in re.split(r"\n\s*(?=-)", text):
        env = re.search(r"\[env: (\w+)=", entry)
        if env:
            default = re.search(r"\[default: ([^\]]+)\]", entry)
            variables[env.group(1)] = default.group(1) if default else None
    return variables


def image_tag(image):
    """Return the tag of an image reference, or None when it has none."""
    name = image.split("@")[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def check_image(where, image):
    tag = image_tag(image)
    check(tag is not None, f"{where}: image {image} has no tag; pin it to a version")
    check(tag != "latest", f"{where}: image {image} uses the floating tag latest; pin it to a version")


def port_of(address):
    return int(address.rsplit(":", 1)[1])


def check_compose(help_vars):
    compose = load_yaml("docker-compose.yml")
    services = compose["services"]
    for name in ["kafka", "create-topics", "smsfold", "demo", "prometheus", "grafana"]:
        check(name in services, f"docker-compose.yml: service {name} is missing")

    for name, service in services.items():
        where = f"docker-compose.yml: service {name}"
        if check("image" in service, f"{where} has no image"):
            if "build" in service:
                check(image_tag(service["image"]) is not None, f"{where}: name the built image with a tag")
            else:
                check_image(where, service["image"])
        for port in service.get("ports", []):
            check(str(port).startswith("127.0.0.1:"), f"{where}: port {port} is not bound to 127.0.0.1")
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                check((ROOT / source).exists(), f"{where}: mounted path {source} does not exist")

    # Kafka in compose is the version the tests run against.
    pom = (ROOT / "scripts/kafka/pom.xml").read_text(encoding="utf-8")
    kafka_version = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom).group(1)
    for name in ["kafka", "create-topics", "demo"]:
        check(
            services[name]["image"] == f"apache/kafka:{kafka_version}",
            f"docker-compose.yml: service {name} runs {services[name]['image']}, "
            f"but the test broker is Kafka {kafka_version} (scripts/kafka/pom.xml)",
        )

    # smsfold's environment names real options.
    smsfold = services["smsfold"]
    environment = smsfold["environment"]
    for variable in environment:
        check(variable in help_vars, f"docker-compose.yml: smsfold sets {variable}, which `smsfold run --help` does not list")
    http_port = port_of(environment["SMSFOLD_HTTP_ADDR"])
    check(
        environment["SMSFOLD_HTTP_ADDR"].startswith("0.0.0.0:"),
        "docker-compose.yml: SMSFOLD_HTTP_ADDR must listen on 0.0.0.0 inside the container so Prometheus can reach it",
    )
    published = [str(port).rsplit(":", 1)[1] for port in smsfold.get("ports", [])]
    check(str(http_port) in published, f"docker-compose.yml: smsfold's http port {http_port} is not published")
    check("/readyz" in " ".join(smsfold["healthcheck"]["test"]), "docker-compose.yml: smsfold's healthcheck should ask /readyz")
    check(
        f"/dev/tcp/127.0.0.1/{http_port}" in " ".join(smsfold["healthcheck"]["test"]),
        f"docker-compose.yml: smsfold's healthcheck does not use port {http_port}",
    )

    # The topics compose creates are the worker's default input topics.
    created = set(re.findall(r"--topic (\S+)", services["create-topics"]["command"][0]))
    inputs = {help_vars["SMSFOLD_TOPIC_MESSAGE_EVENTS"], help_vars["SMSFOLD_TOPIC_CAMPAIGN_EVENTS"]}
    check(created == inputs, f"docker-compose.yml: create-topics creates {sorted(created)}, the inputs are {sorted(inputs)}")

    # Prometheus scrapes smsfold's http port.
    prometheus = load_yaml("deploy/prometheus/prometheus.yml")
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    if check("smsfold" in jobs, "deploy/prometheus/prometheus.yml: no scrape job named smsfold (alerts.yml selects it)"):
        targets = [t for config in jobs["smsfold"]["static_configs"] for t in config["targets"]]
        check(targets == [f"smsfold:{http_port}"], f"deploy/prometheus/prometheus.yml: targets {targets}, expected smsfold:{http_port}")
    for rule_file in prometheus.get("rule_files", []):
        check((ROOT / "deploy/prometheus" / rule_file).exists(), f"deploy/prometheus/prometheus.yml: rule file {rule_file} does not exist")
    prom_service = services["prometheus"]
    check(
        "./deploy/prometheus:/etc/prometheus:ro" in prom_service["volumes"],
        "docker-compose.yml: prometheus must mount deploy/prometheus at /etc/prometheus",
    )
    check(
        "--config.file=/etc/prometheus/prometheus.yml" in prom_service["command"],
        "docker-compose.yml: prometheus must read /etc/prometheus/prometheus.yml",
    )
    listen = [arg for arg in prom_service["command"] if arg.startswith("--web.listen-address")]
    prom_port = port_of(listen[0]) if listen else 9090
    check(
        any(str(port).endswith(f":{prom_port}") for port in prom_service.get("ports", [])),
        f"docker-compose.yml: prometheus's port {prom_port} is not published",
    )

    # Grafana's datasource is the prometheus service, and its dashboards folder is mounted.
    datasources = load_yaml("deploy/grafana/provisioning/datasources/prometheus.yml")["datasources"]
    urls = [source["url"] for source in datasources if source["type"] == "prometheus"]
    check(urls == [f"http://prometheus:{prom_port}"], f"deploy/grafana: datasource URLs {urls}, expected http://prometheus:{prom_port}")
    scrape_interval = prometheus["global"]["scrape_interval"]
    check(
        datasources[0].get("jsonData", {}).get("timeInterval") == scrape_interval,
        f"deploy/grafana: datasource timeInterval should equal the scrape interval {scrape_interval}",
    )
    grafana = services["grafana"]
    mounts = dict(volume.rsplit(":", 1)[0].split(":", 1)[::-1] for volume in grafana["volumes"])
    check(
        mounts.get("/etc/grafana/provisioning") == "./deploy/grafana/provisioning",
        "docker-compose.yml: grafana must mount deploy/grafana/provisioning at /etc/grafana/provisioning",
    )
    providers = load_yaml("deploy/grafana/provisioning/dashboards/smsfold.yml")["providers"]
    dashboards_path = providers[0]["options"]["path"]
    check(
        mounts.get(dashboards_path) == "./deploy/grafana/dashboards",
        f"docker-compose.yml: grafana must mount deploy/grafana/dashboards at {dashboards_path}, the provider's path",
    )
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    check(
        home.startswith(dashboards_path + "/") and (ROOT / "deploy/grafana/dashboards" / Path(home).name).exists(),
        f"docker-compose.yml: the home dashboard {home} is not a file of deploy/grafana/dashboards",
    )

    # The demo runs the mounted script.
    demo = services["demo"]
    check(demo["entrypoint"][-1] == "/demo/produce.sh", "docker-compose.yml: demo must run /demo/produce.sh")
    check("./deploy/demo:/demo:ro" in demo["volumes"], "docker-compose.yml: demo must mount deploy/demo at /demo")
    check(demo["environment"]["BOOTSTRAP_SERVERS"] == environment["SMSFOLD_BOOTSTRAP_SERVERS"], "docker-compose.yml: demo and smsfold use different brokers")


def check_dockerfile(binary):
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    for image in re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE):
        check_image("Dockerfile", image)
    check(
        re.search(r"^RUN cargo build --release -p smsfold --locked$", text, re.MULTILINE) is not None,
        "Dockerfile: the build stage must run `cargo build --release -p smsfold --locked`, as scripts/check-deploy.sh does",
    )
    check(
        "COPY --from=build /src/target/release/smsfold /usr/local/bin/smsfold" in text,
        "Dockerfile: the runtime stage must copy /src/target/release/smsfold",
    )
    user = re.search(r"^USER (\d+)$", text, re.MULTILINE)
    check(user is not None, "Dockerfile: the runtime stage must run as a numeric non-root USER")

    # Each library the binary links comes from a package the runtime stage installs.
    runtime = text.split("FROM debian:", 1)[1]
    install = re.search(r"apt-get install -y --no-install-recommends ([^\\&]+)", runtime).group(1).split()
    libraries = re.findall(r"=> (\S+) \(", subprocess.run(["ldd", binary], check=True, capture_output=True, text=True).stdout)
    for library in libraries:
        owner = subprocess.run(["dpkg", "-S", str(Path(library).resolve())], capture_output=True, text=True)
        if owner.returncode != 0:
            owner = subprocess.run(["dpkg", "-S", library], capture_output=True, text=True)
        package = owner.stdout.split(":", 1)[0] if owner.returncode == 0 else None
        if check(package is not None, f"Dockerfile: no Debian package provides {library}, which smsfold links"):
            check(
                package in install or package in ESSENTIAL_PACKAGES,
                f"Dockerfile: smsfold links {library} from package {package}, which the runtime stage does not install",
            )

    # The build context keeps everything cargo reads.
    patterns = [line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()]
    patterns = [p for p in patterns if p and not p.startswith("#")]
    cargo = (ROOT / "Cargo.toml").read_text(encoding="utf-8")
    members = re.findall(r'"(crates/[^"]+)"', cargo)
    for needed in ["Cargo.toml", "Cargo.lock", "src", "proto", *members]:
        for pattern in patterns:
            check(
                not (fnmatch.fnmatch(needed, pattern) or needed.startswith(pattern + "/")),
                f".dockerignore: pattern {pattern} leaves {needed} out of the build context",
            )
    return int(user.group(1)) if user else None


def metric_names(expr):
    """Return the smsfold_* and up series an expression selects, with
    histogram suffixes stripped."""
    names = set()
    for name in re.findall(r"\b(smsfold_\w+|up)\s*[{\[(]|\b(smsfold_\w+)\b", expr):
        name = name[0] or name[1]
        names.add(re.sub(r"_(bucket|sum|count)$", "", name) if name.startswith("smsfold_") else name)
    return names


def known_metrics():
    source = (ROOT / "crates/smsfold-worker/src/metrics.rs").read_text(encoding="utf-8")
    return set(re.findall(r'pub const \w+: &str = "(smsfold_\w+)"', source))


def check_metric_use(where, names, existing):
    for name in sorted(names):
        if name in existing or name in PROMETHEUS_METRICS:
            continue
        failures.append(f"{where}: {name} is not a metric smsfold exports (crates/smsfold-worker/src/metrics.rs)")


def check_dashboard(existing):
    path = "deploy/grafana/dashboards/smsfold.json"
    dashboard = json.loads((ROOT / path).read_text(encoding="utf-8"))
    check(dashboard.get("uid") == "smsfold", f"{path}: uid should be smsfold")
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    check(variables.get("datasource", {}).get("type") == "datasource", f"{path}: no datasource variable")

    panels = dashboard["panels"]
    ids = [panel["id"] for panel in panels]
    check(len(ids) == len(set(ids)), f"{path}: panel ids repeat")
    cells = {}
    used = set()
    for panel in panels:
        where = f"{path}: panel {panel['id']} ({panel['title']})"
        grid = panel["gridPos"]
        check(grid["x"] + grid["w"] <= 24, f"{where} is wider than the 24-column grid")
        for row in range(grid["y"], grid["y"] + grid["h"]):
            for column in range(grid["x"], grid["x"] + grid["w"]):
                other = cells.setdefault((row, column), panel["id"])
                check(other == panel["id"], f"{where} overlaps panel {other}")
        if panel["type"] == "row":
            continue
        check(panel.get("datasource", {}).get("uid") == "${datasource}", f"{where} does not use the datasource variable")
        check(bool(panel.get("description")), f"{where} has no description")
        refs = [target["refId"] for target in panel["targets"]]
        check(len(refs) == len(set(refs)), f"{where}: refIds repeat")
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            check(bool(names), f"{where}: query {target['expr']} selects no smsfold metric")
            used |= names
            check_metric_use(where, names, existing)

    required = {
        "smsfold_events_consumed_total", "smsfold_status_changes_total", "smsfold_campaigns",
        "smsfold_consumer_lag_records", "smsfold_consumer_lag_seconds", "smsfold_dead_letters_total",
        "smsfold_processing_latency_seconds", "smsfold_restore_remaining_records", "smsfold_restored_records_total",
    }
    check(required <= used, f"{path}: no panel shows {sorted(required - used)}")


def check_alerts(existing):
    rules = load_yaml("deploy/prometheus/alerts.yml")
    tests = (ROOT / "deploy/prometheus/alerts_test.yml").read_text(encoding="utf-8")
    for group in rules["groups"]:
        for rule in group["rules"]:
            where = f"deploy/prometheus/alerts.yml: {rule['alert']}"
            check_metric_use(where, metric_names(rule["expr"]), existing)
            check(rule.get("labels", {}).get("severity") in {"warning", "critical"}, f"{where}: severity must be warning or critical")
            check(f"alertname: {rule['alert']}\n" in tests, f"{where} has no case in alerts_test.yml")


def check_k8s(help_vars, image_user):
    documents = {}
    for path in sorted((ROOT / "deploy/k8s").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            documents[document["kind"]] = document
    config = documents["ConfigMap"]["data"]
    for variable in config:
        check(variable in help_vars, f"deploy/k8s/configmap.yaml: {variable} is not listed by `smsfold run --help`")
    http_port = port_of(config["SMSFOLD_HTTP_ADDR"])

    pod = documents["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    check(
        container["envFrom"][0]["configMapRef"]["name"] == documents["ConfigMap"]["metadata"]["name"],
        "deploy/k8s/deployment.yaml: envFrom does not name the ConfigMap",
    )
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    check(ports.get("http") == http_port, f"deploy/k8s/deployment.yaml: containerPort http should be {http_port}, from SMSFOLD_HTTP_ADDR")
    for probe, path in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")]:
        get = container.get(probe, {}).get("httpGet", {})
        check(get.get("path") == path and get.get("port") == "http", f"deploy/k8s/deployment.yaml: {probe} should GET {path} on port http")
    for kind in ["requests", "limits"]:
        for resource in ["cpu", "memory"]:
            check(resource in container["resources"].get(kind, {}), f"deploy/k8s/deployment.yaml: no {resource} {kind}")
    check(pod["securityContext"].get("runAsUser") == image_user, "deploy/k8s/deployment.yaml: runAsUser differs from the Dockerfile's USER")
    annotations = documents["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    check(annotations.get("prometheus.io/port") == str(http_port), "deploy/k8s/deployment.yaml: prometheus.io/port differs from the http port")

    service = documents["Service"]["spec"]
    check(service["selector"] == documents["Deployment"]["spec"]["selector"]["matchLabels"], "deploy/k8s/service.yaml: selector differs from the Deployment's")
    check(service["ports"][0]["targetPort"] == "http", "deploy/k8s/service.yaml: targetPort should be http")


def check_demo(help_vars):
    inputs = {
        "message-events": help_vars["SMSFOLD_TOPIC_MESSAGE_EVENTS"],
        "campaign-events": help_vars["SMSFOLD_TOPIC_CAMPAIGN_EVENTS"],
    }
    check(inputs == {"message-events": "message-events", "campaign-events": "campaign-events"},
          f"deploy/demo/produce.sh writes to message-events and campaign-events, but the default inputs are {inputs}")
    poison = 0
    for kind, id_field in [("message-events", "message_id"), ("campaign-events", "campaign_id")]:
        lines = subprocess.run(["sh", str(ROOT / "deploy/demo/events.sh"), kind], check=True, capture_output=True, text=True).stdout
        for number, line in enumerate(lines.splitlines(), 1):
            where = f"deploy/demo/events.sh {kind} line {number}"
            fields = line.split("\t")
            if not check(len(fields) == 3, f"{where}: expected headers, key and value separated by tabs"):
                continue
            headers, key, value = fields
            check(headers == "content-type:application/json", f"{where}: unexpected headers {headers}")
            try:
                event = json.loads(value)
            except json.JSONDecodeError:
                poison += 1
                continue
            if event.get(id_field) != key:
                poison += 1
    check(poison == 2, f"deploy/demo/events.sh: {poison} records smsfold would dead-letter, expected the 2 poison records")


def main():
    binary = sys.argv[1]
    help_vars = run_help(binary)
    check(len(help_vars) > 10, f"`{binary} run --help` listed only {len(help_vars)} environment variables")
    check_compose(help_vars)
    image_user = check_dockerfile(binary)
    existing = known_metrics()
    check(len(existing) >= 10, "crates/smsfold-worker/src/metrics.rs: found fewer than 10 metric names")
    check_dashboard(existing)
    check_alerts(existing)
    check_k8s(help_vars, image_user)
    check_demo(help_vars)
    for failure in failures:
        print(f"FAILED: {failure}")
    if failures:
        sys.exit(1)
    print("deploy files: all cross-checks passed")


if __name__ == "__main__":
    main()
