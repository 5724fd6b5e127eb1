#!/usr/bin/env python3
"""Structural checks of the deployment files for tests/integration/test_deploy.sh.

  deploy_check.py render DIR
      prints the kustomization in DIR rendered, for machines without
      `kubectl kustomize` (Debian 12 has no kustomize package): resources,
      namespace, labels, images, replicas, strategic-merge and JSON patches,
      the subset deploy/k8s uses.
  deploy_check.py check --repo R --help-coordinator F --help-worker F
      [--help-cli F] --strings F --compose F --k8s NAME=FILE...
      checks the README's settings table, the binaries' --help, the compose
      file (`docker-compose config` output) and the rendered manifests; prints
      one "ok<TAB>name" or "FAIL<TAB>name<TAB>why" line per check.

The names a check compares come from the built binaries (their --help and
the strings they hold) and from the README, never from a list in here.
"""
import argparse
import copy
import os
import re
import sys

import yaml

BINARIES = ("mailshift-coordinator", "mailshift-worker", "mailshift")
NAME_RE = re.compile(r"MAILSHIFT_[A-Z0-9_]+")
# Placeholders in usage texts, not variables.
PLACEHOLDERS = {"MAILSHIFT_KAFKA_NAME", "MAILSHIFT_KAFKA_NAME_FILE", "MAILSHIFT_WORKER_NAME"}


# --- a small kustomize ------------------------------------------------------
def load_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def merge(base, patch):
    """Strategic merge as kustomize does it for the fields deploy/k8s patches:
    maps merge, lists of named items merge by name, other lists replace."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            out[k] = merge(base[k], v) if k in base else copy.deepcopy(v)
        return out
    if (isinstance(base, list) and isinstance(patch, list) and
            all(isinstance(x, dict) and "name" in x for x in base + patch)):
        out = [copy.deepcopy(x) for x in base]
        for item in patch:
            for i, old in enumerate(out):
                if old["name"] == item["name"]:
                    out[i] = merge(old, item)
                    break
            else:
                out.append(copy.deepcopy(item))
        return out
    return copy.deepcopy(patch)


def json_patch(doc, ops):
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        node = doc
        for p in parts[:-1]:
            node = node[int(p)] if isinstance(node, list) else node[p]
        last = parts[-1]
        if op["op"] in ("add", "replace"):
            if isinstance(node, list):
                if last == "-":
                    node.append(copy.deepcopy(op["value"]))
                elif op["op"] == "add":
                    node.insert(int(last), copy.deepcopy(op["value"]))
                else:
                    node[int(last)] = copy.deepcopy(op["value"])
            else:
                node[last] = copy.deepcopy(op["value"])
        elif op["op"] == "remove":
            del node[int(last) if isinstance(node, list) else last]
        else:
            raise SystemExit("render: JSON patch op %s not supported" % op["op"])


def selected(doc, target):
    if target is None:
        return True
    if "kind" in target and doc.get("kind") != target["kind"]:
        return False
    if "name" in target and doc["metadata"]["name"] != target["name"]:
        return False
    for sel in filter(None, (target.get("labelSelector") or "").split(",")):
        k, v = sel.split("=", 1)
        if doc["metadata"].get("labels", {}).get(k) != v:
            return False
    return True


def render(directory):
    with open(os.path.join(directory, "kustomization.yaml")) as f:
        k = yaml.safe_load(f)
    docs = []
    for r in k.get("resources", []):
        path = os.path.join(directory, r)
        docs += render(path) if os.path.isdir(path) else load_docs(path)
    for lab in k.get("labels", []):
        for d in docs:
            d["metadata"].setdefault("labels", {}).update(lab["pairs"])
    for p in k.get("patches", []):
        body = load_docs(os.path.join(directory, p["path"]))[0]
        target = p.get("target")
        if isinstance(body, list):
            for d in docs:
                if selected(d, target):
                    json_patch(d, body)
            continue
        target = target or {"kind": body["kind"], "name": body["metadata"]["name"]}
        for i, d in enumerate(docs):
            if selected(d, target):
                docs[i] = merge(d, body)
    for rep in k.get("replicas", []):
        for d in docs:
            if d["kind"] == "Deployment" and d["metadata"]["name"] == rep["name"]:
                d["spec"]["replicas"] = rep["count"]
    for img in k.get("images", []):
        for d in docs:
            for c in containers(d):
                name, _, tag = c["image"].partition(":")
                if name == img["name"]:
                    c["image"] = "%s:%s" % (img.get("newName", name), img.get("newTag", tag))
    if "namespace" in k:
        for d in docs:
            d["metadata"]["namespace"] = k["namespace"]
    return docs


def containers(doc):
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    return spec.get("containers", []) + spec.get("initContainers", [])


# --- what the binaries and the README say -----------------------------------
class Facts:
    def __init__(self, args):
        self.help = {}
        for binary, path in (("mailshift-coordinator", args.help_coordinator),
                             ("mailshift-worker", args.help_worker),
                             ("mailshift", args.help_cli)):
            if path:
                with open(path) as f:
                    self.help[binary] = f.read()
        with open(args.strings) as f:
            self.strings = set(f.read().split())
        self.flags = {b: set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", h))
                      for b, h in self.help.items()}
        coord = self.help["mailshift-coordinator"]
        block = coord.split("commands:", 1)[1].split("options:", 1)[0]
        self.commands = set(re.findall(r"^  ([a-z][a-z-]*)", block, re.M))
        # The worker's options that have a MAILSHIFT_WORKER_* twin.
        self.worker_vars = {"MAILSHIFT_WORKER_" + f[2:].upper().replace("-", "_")
                            for f in self.flags["mailshift-worker"]}
        self.api = "serve" in self.commands
        self.table, self.patterns, self.cli_vars = readme_table(
            os.path.join(args.repo, "README.md"))
        self.cli = "mailshift" in self.help

    def known_var(self, name):
        """Why name is not a documented variable, or None."""
        if name in self.table:
            return None
        for prefix in self.patterns:
            if name.startswith(prefix) and len(name) > len(prefix):
                if prefix == "MAILSHIFT_WORKER_" and name not in self.worker_vars:
                    return "%s: no worker option --%s in mailshift-worker --help" % (
                        name, name[len(prefix):].lower().replace("_", "-"))
                return None
        return "%s is not in the README's settings table" % name


def readme_table(path):
    with open(path) as f:
        text = f.read()
    section = text.split("### Settings", 1)[1].split("\n### ", 1)[0]
    names, patterns, cli = set(), set(), set()
    for m in re.finditer(r"^\| `(MAILSHIFT_[A-Z0-9_<>]+)` \|[^|]*\| *([^|]*)\|", section, re.M):
        name = m.group(1)
        if "<" in name:
            patterns.add(name.split("<", 1)[0])
        else:
            names.add(name)
            if m.group(2).startswith("CLI:"):
                cli.add(name)
    return names, patterns, cli


# --- checks -------------------------------------------------------------------
results = []


def check(name, problems):
    problems = [p for p in problems if p]
    results.append((name, problems))


def check_table(facts):
    for binary, text in facts.help.items():
        missing = sorted({n for n in NAME_RE.findall(text) if n not in PLACEHOLDERS and
                          facts.known_var(n)})
        check("README table documents every variable in %s --help" % binary,
              ["missing: " + ", ".join(missing)] if missing else [])
    api_names = {"MAILSHIFT_LISTEN", "MAILSHIFT_API_TOKENS_FILE", "MAILSHIFT_UI_DIR"}
    ghosts = []
    for name in sorted(facts.table):
        if name in facts.strings or name in facts.worker_vars:
            continue
        if name in api_names and not facts.api:
            continue  # said in a note: the API is not in this build
        if name in facts.cli_vars and not facts.cli:
            continue  # said by test_deploy.sh: the CLI is not built here
        ghosts.append(name)
    check("every variable in the README table is read by a built binary",
          ["not in any binary: " + ", ".join(ghosts)] if ghosts else [])


def command_problems(facts, where, command, env_names):
    """The binary, its flags and its environment against --help and README."""
    out = []
    if not command:
        return ["%s: no command" % where]
    binary = os.path.basename(command[0])
    if binary not in facts.help:
        return ["%s: %s is not a binary of the image (or was not built)" % (where, binary)]
    words = [w for w in command[1:] if not w.startswith("-")]
    if binary == "mailshift-coordinator":
        cmds = [w for w in words if w in facts.commands]
        if not cmds:
            out.append("%s: no coordinator command in %s" % (where, command))
    for w in command[1:]:
        if w.startswith("--"):
            flag = w.split("=", 1)[0]
            if flag not in facts.flags[binary]:
                if not facts.api and flag == "--listen" and binary == "mailshift-coordinator":
                    continue
                out.append("%s: %s not in %s --help" % (where, flag, binary))
    for name in env_names:
        if name.startswith("MAILSHIFT_"):
            why = facts.known_var(name)
            if why:
                out.append("%s: %s" % (where, why))
    return out


def listen_port(command):
    for i, w in enumerate(command):
        if w == "--listen" and i + 1 < len(command):
            return int(command[i + 1].rsplit(":", 1)[1])
    return None


def check_k8s(facts, name, docs):
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in by_kind.get("ConfigMap", [])}
    deployments = {d["metadata"]["name"]: d for d in by_kind.get("Deployment", [])}
    check("%s: a coordinator and a worker Deployment" % name,
          [] if {"mailshift-coordinator", "mailshift-worker"} <= set(deployments)
          else ["Deployments: %s" % sorted(deployments)])
    for dname, d in sorted(deployments.items()):
        pod = d["spec"]["template"]["spec"]
        psc = pod.get("securityContext", {})
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for c in pod["containers"]:
            where = "%s/%s" % (dname, c["name"])
            p = []
            command = list(c.get("command", [])) + list(c.get("args", []))
            env = [e["name"] for e in c.get("env", [])]
            for ef in c.get("envFrom", []):
                cm = ef.get("configMapRef", {}).get("name")
                if cm not in configmaps:
                    p.append("%s: envFrom ConfigMap %s not in the manifests" % (where, cm))
                env += list(configmaps.get(cm, {}))
            p += command_problems(facts, where, command, env)
            ports = {pt.get("name"): pt["containerPort"] for pt in c.get("ports", [])}
            lport = listen_port(command)
            for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                get = c.get(probe, {}).get("httpGet", {})
                if get.get("path") != path:
                    p.append("%s: %s is not an HTTP GET of %s" % (where, probe, path))
                port = get.get("port")
                port = ports.get(port, port) if isinstance(port, str) else port
                if port is None or port != lport:
                    p.append("%s: %s port %s is not the --listen port %s" % (
                        where, probe, port, lport))
            res = c.get("resources", {})
            for kind in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in res.get(kind, {}):
                        p.append("%s: no resources.%s.%s" % (where, kind, r))
            sc = c.get("securityContext", {})
            if not (sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True):
                p.append("%s: runAsNonRoot not true" % where)
            if sc.get("allowPrivilegeEscalation") is not False:
                p.append("%s: allowPrivilegeEscalation not false" % where)
            if sc.get("readOnlyRootFilesystem") is not True:
                p.append("%s: readOnlyRootFilesystem not true" % where)
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                p.append("%s: capabilities do not drop ALL" % where)
            uid = sc.get("runAsUser", psc.get("runAsUser"))
            if not uid:
                p.append("%s: no non-zero runAsUser (the image's user is numeric 10001)" % where)
            # The only writable place: an emptyDir on the temporary directory.
            tmpdir = "/tmp"
            for i, w in enumerate(command):
                if w == "--tmpdir":
                    tmpdir = command[i + 1]
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            if "emptyDir" not in volumes.get(mounts.get(tmpdir), {}):
                p.append("%s: no emptyDir mounted on the temporary directory %s" % (where, tmpdir))
            for m in c.get("volumeMounts", []):
                v = volumes.get(m["name"], {})
                if "emptyDir" not in v and not m.get("readOnly"):
                    p.append("%s: volume %s mounted writable" % (where, m["name"]))
            if os.path.basename(command[0]) == "mailshift-worker":
                bound = 10
                for i, w in enumerate(command):
                    if w == "--shutdown-timeout":
                        bound = int(command[i + 1])
                grace = pod.get("terminationGracePeriodSeconds", 30)
                if grace < bound + 5:
                    p.append("%s: terminationGracePeriodSeconds %s leaves less than 5 s past"
                             " --shutdown-timeout %s" % (where, grace, bound))
            check("%s: %s: command, probes, resources, securityContext, tmp" % (name, where), p)
    coord = deployments.get("mailshift-coordinator")
    if name != "dev" and coord is not None:
        check("%s: two coordinator replicas" % name,
              [] if coord["spec"].get("replicas") == 2 else
              ["replicas %s" % coord["spec"].get("replicas")])
    hpas = [h for h in by_kind.get("HorizontalPodAutoscaler", [])
            if h["spec"]["scaleTargetRef"]["name"] == "mailshift-worker"]
    check("%s: an HPA scales the workers" % name,
          [] if hpas and hpas[0]["spec"]["maxReplicas"] >= hpas[0]["spec"].get("minReplicas", 1)
          else ["no HorizontalPodAutoscaler for mailshift-worker"])
    partitions = None
    for data in configmaps.values():
        if "MAILSHIFT_TOPIC_PARTITIONS" in data:
            partitions = int(data["MAILSHIFT_TOPIC_PARTITIONS"])
    if hpas and partitions:
        check("%s: HPA maxReplicas within the jobs topic's partitions" % name,
              [] if hpas[0]["spec"]["maxReplicas"] <= partitions else
              ["maxReplicas %d > %d partitions" % (hpas[0]["spec"]["maxReplicas"], partitions)])
    for dname, d in sorted(deployments.items()):
        labels = d["spec"]["selector"]["matchLabels"]
        pdbs = [b for b in by_kind.get("PodDisruptionBudget", [])
                if b["spec"]["selector"]["matchLabels"] == labels]
        svcs = [s for s in by_kind.get("Service", []) if s["spec"]["selector"] == labels]
        check("%s: %s has a PodDisruptionBudget and a Service" % (name, dname),
              ([] if pdbs else ["no PodDisruptionBudget"]) + ([] if svcs else ["no Service"]))


def check_compose(facts, path):
    with open(path) as f:
        conf = yaml.safe_load(f)
    services = conf["services"]
    need = {"kafka", "postgres", "coordinator", "worker", "src-imap", "dst-imap", "demo-init",
            "demo", "topics"}
    check("compose: the services of the demo",
          [] if need <= set(services) else ["missing: %s" % sorted(need - set(services))])
    kafka = services.get("kafka", {})
    env = kafka.get("environment", {})
    check("compose: Kafka is the official image in KRaft mode",
          [] if kafka.get("image", "").startswith("apache/kafka:") and
          "controller" in str(env.get("KAFKA_PROCESS_ROLES", "")) else
          ["kafka: image %s, roles %s" % (kafka.get("image"), env.get("KAFKA_PROCESS_ROLES"))])
    worker = services.get("worker", {})
    check("compose: workers scale (no container_name, no host port)",
          ["container_name set"] * ("container_name" in worker) +
          ["publishes %s" % worker.get("ports")] * bool(worker.get("ports")))
    ports = [str(p.get("published", p) if isinstance(p, dict) else p)
             for p in services.get("coordinator", {}).get("ports", [])]
    check("compose: the coordinator's API and dashboard are published",
          [] if any("8080" in p for p in ports) else ["ports %s" % ports])
    for sname, s in sorted(services.items()):
        cmd = s.get("command") or []
        if not cmd or os.path.basename(cmd[0]) not in BINARIES:
            continue
        p = command_problems(facts, sname, cmd, list(s.get("environment", {})))
        if s.get("read_only") is not True:
            p.append("%s: root filesystem not read-only" % sname)
        if not any(str(t).split(":")[0] == "/tmp" for t in s.get("tmpfs", [])):
            p.append("%s: no tmpfs on /tmp" % sname)
        if str(s.get("user", "")).split(":")[0] in ("", "0", "root"):
            p.append("%s: runs as root" % sname)
        if "ALL" not in s.get("cap_drop", []):
            p.append("%s: capabilities not dropped" % sname)
        check("compose: %s: binary, flags, environment, read-only" % sname, p)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="what", required=True)
    r = sub.add_parser("render")
    r.add_argument("dir")
    c = sub.add_parser("check")
    c.add_argument("--repo", required=True)
    c.add_argument("--help-coordinator", required=True)
    c.add_argument("--help-worker", required=True)
    c.add_argument("--help-cli")
    c.add_argument("--strings", required=True)
    c.add_argument("--compose", required=True)
    c.add_argument("--k8s", action="append", default=[], metavar="NAME=FILE")
    args = ap.parse_args()
    if args.what == "render":
        yaml.safe_dump_all(render(args.dir), sys.stdout, sort_keys=False)
        return 0
    facts = Facts(args)
    check_table(facts)
    check_compose(facts, args.compose)
    for spec in args.k8s:
        name, path = spec.split("=", 1)
        check_k8s(facts, name, load_docs(path))
    if not facts.api:
        print("#\tthe coordinator has no serve command (the HTTP API is not in this build):"
              " MAILSHIFT_LISTEN, MAILSHIFT_API_TOKENS_FILE, MAILSHIFT_UI_DIR and the"
              " coordinator's --listen are not checked against it")
    for name, problems in results:
        if problems:
            print("FAIL\t%s\t%s" % (name, "; ".join(problems)))
        else:
            print("ok\t%s" % name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
