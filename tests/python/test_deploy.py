"""deploy/: the Dockerfile, the compose file and the Kubernetes manifests (issue 10, "Container").

No Docker engine or cluster runs here, so each file is checked as far as a machine without them can:
the Dockerfile by hadolint, the compose file against the compose-spec JSON schema, the manifests against
Kubernetes' own OpenAPI schemas (kubernetes-validate), all installed into the venv from PyPI. Then every
path, port, probe and command the files name is checked against the code: the configs they carry load in
bindproxy, the ports they publish are the ports those configs listen on, and the probes they wire answer
on a running bindproxy.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, bindproxy_bin, free_port, pg_config

DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
K8S = DEPLOY / "kubernetes"
VENV_BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = VENV_BIN / name
    assert path.exists(), f"{name} is not installed in the venv (tests/python/requirements.txt)"
    return str(path)


def run(*args: str, cwd: Path = ROOT, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def dockerfile_env() -> dict[str, str]:
    env = {}
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        m = re.match(r"ENV\s+(\w+)=(\S+)", line)
        if m:
            env[m.group(1)] = m.group(2)
    return env


def manifests() -> dict[str, dict]:
    docs = {}
    for f in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(f.read_text()):
            docs[doc["kind"]] = doc
    return docs


def load_with_bindproxy(config_text: str, tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`bindproxy route` loads and validates a config without connecting to any bind."""
    cfg = tmp_path / "config.yaml"
    cfg.write_text(config_text)
    (tmp_path / "data").mkdir(exist_ok=True)
    return run(str(bindproxy_bin()), "--config", str(cfg), "route", "SELECT 1",
               cwd=tmp_path, env={**os.environ, **env})


def env_vars(config_text: str) -> set[str]:
    """The ${VAR}s a config names, outside comments."""
    return {v for line in config_text.splitlines() for v in re.findall(r"\$\{(\w+)\}", line.split("#", 1)[0])}


def port_of(addr: str) -> int:
    return int(addr.rsplit(":", 1)[1])


# --------------------------------------------------------------------------------------------------------------
# linters and schemas
# --------------------------------------------------------------------------------------------------------------
def test_dockerfile_passes_hadolint():
    r = run(tool("hadolint"), "--config", str(ROOT / ".hadolint.yaml"), "Dockerfile")
    assert r.returncode == 0, r.stdout + r.stderr


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path):
    # the linter runs for real: a Dockerfile with a known problem fails
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:bookworm-slim\nRUN cd /tmp && apt-get install -y curl\n")
    r = run(tool("hadolint"), "--config", str(ROOT / ".hadolint.yaml"), str(bad))
    assert r.returncode != 0 and "DL3003" in r.stdout, r.stdout + r.stderr


def test_compose_file_matches_the_compose_spec():
    r = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE))
    assert r.returncode == 0, r.stdout + r.stderr


def test_kubernetes_manifests_match_kubernetes_schemas():
    files = sorted(str(f) for f in K8S.glob("*.yaml"))
    assert len(files) >= 3, files
    r = run(tool("kubernetes-validate"), "--strict", *files)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("passed") == len(files), r.stdout


# --------------------------------------------------------------------------------------------------------------
# what the files name exists in the code
# --------------------------------------------------------------------------------------------------------------
def test_dockerfile_copies_files_that_exist_and_names_the_config_path_bindproxy_reads():
    text = (ROOT / "Dockerfile").read_text()
    for line in text.splitlines():
        if line.startswith("COPY") and "--from" not in line:
            for src in line.split()[1:-1]:
                assert (ROOT / src).exists(), f"Dockerfile copies {src}, which does not exist"
    assert dockerfile_env()["BINDPROXY_CONFIG"] == "/etc/bindproxy/config.yaml"
    # the binary reads BINDPROXY_CONFIG (clap's env of --config)
    help_text = run(str(bindproxy_bin()), "--help").stdout
    assert "BINDPROXY_CONFIG" in help_text


def test_compose_paths_ports_and_healthcheck_agree_with_bindproxy(tmp_path):
    compose = yaml.safe_load(COMPOSE.read_text())
    bp = compose["services"]["bindproxy"]
    assert (COMPOSE.parent / bp["build"]["context"] / bp["build"]["dockerfile"]).exists()
    source_of = {v.split(":")[1]: v.split(":")[0] for v in bp["volumes"]}  # "src:target[:ro]"
    assert source_of[dockerfile_env()["BINDPROXY_CONFIG"]] == "./bindproxy.yaml"
    assert source_of["/var/lib/bindproxy/data"] in compose["volumes"]
    app = compose["services"]["app"]
    for v in app["volumes"]:
        assert (COMPOSE.parent / v.split(":")[0]).exists(), v
    config_text = (DEPLOY / "bindproxy.yaml").read_text()
    config = yaml.safe_load(config_text)
    published = {int(p.split(":")[-1]) for p in bp["ports"]}
    assert published == {port_of(config["listen"]), port_of(config["admin_http"])}
    assert config["listen"].startswith("0.0.0.0:"), "a container's loopback is unreachable from the app container"
    # the app connects to the port bindproxy listens on, by the service name
    assert f"@bindproxy:{port_of(config['listen'])}/" in app["environment"]["DATABASE_URL"]
    # every ${VAR} of the config is given to the container
    assert env_vars(config_text) == {"POSTGRES_PASSWORD", "MARIADB_ROOT_PASSWORD"}
    for var in env_vars(config_text):
        assert var in bp["environment"], var
    # the config loads in bindproxy as the container would load it
    r = load_with_bindproxy(config_text, tmp_path, {"POSTGRES_PASSWORD": "x", "MARIADB_ROOT_PASSWORD": "y"})
    assert r.returncode == 0, r.stdout + r.stderr
    # the healthcheck is a bindproxy subcommand
    assert bp["healthcheck"]["test"][:2] == ["CMD", "bindproxy"]
    sub = bp["healthcheck"]["test"][2]
    assert run(str(bindproxy_bin()), sub, "--help").returncode == 0, sub


def test_kubernetes_config_probes_and_ports_agree_with_bindproxy(tmp_path):
    docs = manifests()
    config_text = docs["ConfigMap"]["data"]["config.yaml"]
    config = yaml.safe_load(config_text)
    pod = docs["StatefulSet"]["spec"]["template"]["spec"]
    (sidecar,) = [c for c in pod["containers"] if c["name"] == "bindproxy"]
    env = {e["name"]: e for e in sidecar["env"]}
    mount = {m["name"]: m["mountPath"] for m in sidecar["volumeMounts"]}
    # the ConfigMap's key lands where BINDPROXY_CONFIG points
    assert env["BINDPROXY_CONFIG"]["value"] == f"{mount['config']}/config.yaml"
    assert docs["StatefulSet"]["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] == \
        docs["ConfigMap"]["metadata"]["name"]
    # the decision log is on the persistent volume
    assert config["transactions"]["log_dir"].startswith(mount["data"])
    # ports: the named probe port is admin_http's, the postgres port is listen's
    ports = {p["name"]: p["containerPort"] for p in sidecar["ports"]}
    assert ports["admin-http"] == port_of(config["admin_http"])
    assert ports["postgres"] == port_of(config["listen"])
    for probe in ("livenessProbe", "readinessProbe"):
        assert sidecar[probe]["httpGet"]["port"] == "admin-http"
    # secrets come from the Secret the manifests define, and every ${VAR} of the config has a source
    (secret_ref,) = sidecar["envFrom"]
    secret = docs["Secret"]
    assert secret_ref["secretRef"]["name"] == secret["metadata"]["name"]
    given = set(env) | set(secret["stringData"])
    assert "POD_INDEX" in env_vars(config_text)
    for var in env_vars(config_text):
        assert var in given, var
    # the app's connection string reaches the sidecar's listen address
    (app,) = [c for c in pod["containers"] if c["name"] == "app"]
    app_env = {e["name"]: e["value"] for e in app["env"]}
    assert f"@{config['listen']}/" in app_env["DATABASE_URL"]
    # the config loads in bindproxy as the pod would load it (POD_INDEX as Kubernetes sets it)
    values = {k: "secret" for k in secret["stringData"]} | {"POD_INDEX": "1"}
    r = load_with_bindproxy(config_text, tmp_path, values)
    assert r.returncode == 0, r.stdout + r.stderr
    # the runtime user is the Dockerfile's numeric user
    assert f"USER {sidecar['securityContext']['runAsUser']}" in (ROOT / "Dockerfile").read_text()


def test_probes_named_by_the_manifests_answer_on_a_running_bindproxy(backends, start_proxy, tmp_path):
    docs = manifests()
    (sidecar,) = [c for c in docs["StatefulSet"]["spec"]["template"]["spec"]["containers"]
                  if c["name"] == "bindproxy"]
    cfg = pg_config(backends)
    del cfg["binds"]["dead"], cfg["tables"]["ghost"]
    admin = free_port()
    cfg["admin_http"] = f"127.0.0.1:{admin}"
    proxy = start_proxy(cfg, name="deploy")
    for probe in ("livenessProbe", "readinessProbe"):
        path = sidecar[probe]["httpGet"]["path"]
        with urllib.request.urlopen(f"http://127.0.0.1:{admin}{path}", timeout=10) as r:
            assert r.status == 200, (probe, path)
    # `bindproxy ready` (the compose healthcheck) reads the same config and says ready
    r = run(str(bindproxy_bin()), "--config", str(proxy.config_path), "ready")
    assert r.returncode == 0, r.stdout + r.stderr
    assert '"main"' in r.stdout or "main" in r.stdout


def test_ready_command_fails_when_a_bind_is_down_or_nothing_listens(backends, start_proxy, tmp_path):
    cfg = pg_config(backends)  # has the bind `dead`: /readyz is 503
    admin = free_port()
    cfg["admin_http"] = f"127.0.0.1:{admin}"
    proxy = start_proxy(cfg, name="deploy-dead")
    r = run(str(bindproxy_bin()), "--config", str(proxy.config_path), "ready")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "dead" in r.stdout
    # no daemon on the admin port: exit 1 with a reason
    nobody = tmp_path / "nobody.yaml"
    nobody.write_text(proxy.config_path.read_text().replace(f"127.0.0.1:{admin}", f"127.0.0.1:{free_port()}"))
    r = run(str(bindproxy_bin()), "--config", str(nobody), "ready")
    assert r.returncode == 1 and "cannot reach" in r.stderr, r.stdout + r.stderr
    # no admin_http at all: exit 2, saying so
    none = tmp_path / "none.yaml"
    none.write_text("\n".join(l for l in proxy.config_path.read_text().splitlines() if "admin_http" not in l))
    r = run(str(bindproxy_bin()), "--config", str(none), "ready")
    assert r.returncode == 2 and "admin_http is not set" in r.stderr, r.stdout + r.stderr
