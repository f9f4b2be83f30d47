#!/usr/bin/env python3
"""Checks of the deployment templates in cluster/ that need no cluster:

- every Kubernetes YAML document parses; the coordinator is a Job (exits
  when the run completes) with its PersistentVolumeClaim, a podFailurePolicy
  that makes exit statuses 1 and 2 final, and a Service that selects its
  pod; the workers are a Job whose vLLM is a native sidecar (init container
  with restartPolicy Always) with a startupProbe, carrying a GPU request and
  a GPU toleration, connecting to that Service's name and port; every
  volume names a claim or Secret that exists (in the YAML or secrets.md);
  containers run as the image's user (cluster/Dockerfile);
- with the Kubernetes Python client installed (optional), every field of
  every object is one the Kubernetes API knows, at the right place;
- every `joust CMD --option` written in cluster/ (YAML, Slurm script,
  systemd units, secrets.md) is an option that `joust CMD --help` lists;
- with systemd-analyze, `systemd-analyze verify` accepts both units (with
  ExecStart pointed at the joust under test) without a single complaint.

usage: test_templates.py SOURCE_DIR JOUST_BINARY
Exit 0 when everything checked passed (parts skipped for a missing tool are
named), 1 on any failure, 77 when PyYAML is missing.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:
    print("skipped: python3-yaml is not installed")
    sys.exit(77)

SRC, JOUST = sys.argv[1], sys.argv[2]
CLUSTER = os.path.join(SRC, "cluster")
failures, passed, skipped = [], [0], []


def check(cond, what):
    if cond:
        passed[0] += 1
    else:
        failures.append(what)
        print("FAIL:", what)


def read(*parts):
    with open(os.path.join(CLUSTER, *parts)) as f:
        return f.read()


def load(name):
    docs = [d for d in yaml.safe_load_all(read("k8s", name)) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def pod_of(job):
    return job["spec"]["template"]["spec"]


def args_text(container):
    return " ".join(container.get("command", []) + container.get("args", []))


# --------------------------------------------------------------- Dockerfile
dockerfile = read("Dockerfile")
check(re.search(r"^FROM debian:12\S* AS build$", dockerfile, re.M), "Dockerfile: Debian 12 build stage")
check(len(re.findall(r"^FROM debian:12", dockerfile, re.M)) == 2, "Dockerfile: multi-stage, both Debian 12")
check("cmake --install" in dockerfile, "Dockerfile: installs with cmake --install")
check("COPY --from=build" in dockerfile, "Dockerfile: the runtime stage copies from the build stage")
uid = re.search(r"^USER (\d+):(\d+)$", dockerfile, re.M)
check(uid is not None, "Dockerfile: runs as a numeric non-root user")
image = re.search(r"-t (\S+) \.", dockerfile)
check(image is not None, "Dockerfile: names the image it builds")
image = image.group(1) if image else None
uid = int(uid.group(1)) if uid else None

# ------------------------------------------------------------- coordinator
co = load("coordinator.yaml")
pvc = co.get(("PersistentVolumeClaim", "joust-data"))
svc = co.get(("Service", "joust-coordinator"))
job = co.get(("Job", "joust-coordinator"))
check(pvc is not None and svc is not None and job is not None,
      "coordinator.yaml: a PVC joust-data, a Service and a Job joust-coordinator")
if job and svc and pvc:
    spec, pod = job["spec"], pod_of(job)
    check(spec.get("parallelism", 1) == 1 and spec.get("completions", 1) == 1,
          "coordinator Job: one pod, one completion")
    check(pod["restartPolicy"] == "Never", "coordinator Job: restartPolicy Never (podFailurePolicy needs it)")
    rules = spec.get("podFailurePolicy", {}).get("rules", [])
    final = [r for r in rules if r["action"] == "FailJob"]
    check(final and sorted(final[0]["onExitCodes"]["values"]) == [1, 2]
          and final[0]["onExitCodes"]["operator"] == "In",
          "coordinator Job: exit status 1 and 2 fail the Job at once")
    check(any(r["action"] == "Ignore" and r.get("onPodConditions") for r in rules),
          "coordinator Job: disruptions (drain, preemption) do not count as failures")
    labels = job["spec"]["template"]["metadata"]["labels"]
    check(all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()),
          "coordinator Service selects the Job's pod")
    claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
    check("joust-data" in claims, "coordinator Job mounts the PVC joust-data")
    [c] = pod["containers"]
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    data_vol = [v["name"] for v in pod["volumes"] if v.get("persistentVolumeClaim", {}).get("claimName") == "joust-data"]
    check(data_vol and mounts.get(data_vol[0]) == "/data" and "--db /data/" in args_text(c),
          "coordinator: the store (--db) is on the PVC")
    check(c["image"] == image, f"coordinator image {c['image']} is the one cluster/Dockerfile builds ({image})")
    check(pod["securityContext"]["runAsUser"] == uid, "coordinator runs as the image's user")
    port = svc["spec"]["ports"][0]
    check(port["targetPort"] == 5555 and "--bind \"tcp://${POD_IP}:5555\"" in args_text(c),
          "coordinator binds its pod IP on the Service's target port")

# ------------------------------------------------------------------ worker
wo = load("worker.yaml")
wjob = wo.get(("Job", "joust-worker"))
check(wjob is not None, "worker.yaml: a Job joust-worker")
if wjob and svc:
    spec, pod = wjob["spec"], pod_of(wjob)
    check("completions" not in spec and spec.get("parallelism", 1) >= 1,
          "worker Job: work-queue style (done when a worker exits 0 at run end)")
    check(pod["restartPolicy"] == "OnFailure", "worker Job: a crashed worker restarts in place")
    sidecars = [c for c in pod.get("initContainers", []) if c.get("restartPolicy") == "Always"]
    check(len(sidecars) == 1, "worker: vLLM is a native sidecar (init container, restartPolicy Always)")
    if sidecars:
        vllm = sidecars[0]
        probe = vllm.get("startupProbe", {})
        check("127.0.0.1:8000/health" in " ".join(probe.get("exec", {}).get("command", [])),
              "vLLM sidecar: startupProbe on its /health")
        check(str(vllm["resources"]["limits"].get("nvidia.com/gpu")) == "1"
              and str(vllm["resources"]["requests"].get("nvidia.com/gpu")) == "1",
              "vLLM sidecar: requests and limits one GPU")
        check("--host=127.0.0.1" in vllm["args"] and "--port=8000" in vllm["args"],
              "vLLM sidecar listens on 127.0.0.1:8000")
    tol = pod.get("tolerations", [])
    check(any(t.get("key") == "nvidia.com/gpu" and t.get("operator") == "Exists" for t in tol),
          "worker pod tolerates the GPU taint")
    [w] = pod["containers"]
    a = args_text(w)
    host = f"{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc.cluster.local:{svc['spec']['ports'][0]['port']}"
    check(f"--connect tcp://{host}" in a, "worker connects to the coordinator Service by name and port")
    check("--endpoint http://127.0.0.1:8000/v1" in a, "worker's endpoint is the sidecar")
    check(w["image"] == image, "worker image is the one cluster/Dockerfile builds")
    check(w["securityContext"]["runAsUser"] == uid, "worker runs as the image's user")

# ------------------------------------------------ volumes name what exists
secrets_md = read("k8s", "secrets.md")
created = set(re.findall(r"create secret generic (\S+)", secrets_md))
for name, objs in (("coordinator.yaml", co), ("worker.yaml", wo)):
    for (kind, _), obj in objs.items():
        if kind != "Job":
            continue
        pod = pod_of(obj)
        for v in pod["volumes"]:
            if "secret" in v:
                check(v["secret"]["secretName"] in created,
                      f"{name}: Secret {v['secret']['secretName']} is created in secrets.md")
        for c in pod.get("initContainers", []) + pod["containers"]:
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref and not ref.get("optional"):
                    check(ref["name"] in created, f"{name}: Secret {ref['name']} is created in secrets.md")
            vols = {v["name"] for v in pod["volumes"]}
            for m in c.get("volumeMounts", []):
                check(m["name"] in vols, f"{name}: {c['name']} mounts a declared volume {m['name']}")

# ------------------------------------- the Kubernetes API schema (optional)
try:
    import kubernetes.client as k8s
except ImportError:
    k8s = None
    skipped.append("field names against the Kubernetes API schema (pip package kubernetes not installed)")


def schema_check(obj, cls, path):
    """Every key of obj is a field of the client's model class cls."""
    model = getattr(k8s, cls, None)
    if model is None:
        return
    fields = {json_name: model.openapi_types[py] for py, json_name in model.attribute_map.items()}
    for key, val in obj.items():
        if key not in fields:
            check(False, f"{path}.{key}: not a field of {cls}")
            continue
        passed[0] += 1
        t = fields[key]
        if isinstance(val, dict) and not t.startswith("dict("):
            schema_check(val, t, f"{path}.{key}")
        elif isinstance(val, list) and t.startswith("list["):
            for i, item in enumerate(val):
                if isinstance(item, dict):
                    schema_check(item, t[5:-1], f"{path}.{key}[{i}]")


if k8s:
    for name in ("coordinator.yaml", "worker.yaml"):
        for (kind, oname), obj in load(name).items():
            api = obj["apiVersion"].split("/")[-1].capitalize()
            schema_check(obj, f"{api}{kind}", f"{name}:{kind}/{oname}")

# ------------------------------- joust options used in cluster/ all exist
help_cache = {}


def options_of(cmd):
    if cmd not in help_cache:
        out = subprocess.run([JOUST, cmd, "--help"], capture_output=True, text=True)
        help_cache[cmd] = set(re.findall(r"(--[a-z][a-z0-9-]*)", out.stdout)) if out.returncode == 0 else None
    return help_cache[cmd]


# (file, command lines): YAML from the containers' command and args; other
# files line by line, a line continued by a backslash joined to the next.
texts = []
for name in ("coordinator.yaml", "worker.yaml"):
    for (kind, _), obj in load(name).items():
        if kind == "Job":
            pod = pod_of(obj)
            for c in pod.get("initContainers", []) + pod["containers"]:
                texts.append((f"cluster/k8s/{name}", args_text(c)))
for root, _, files in os.walk(CLUSTER):
    for f in files:
        if f.endswith((".sbatch", ".service", ".md")):
            with open(os.path.join(root, f)) as fh:
                texts.append((os.path.relpath(os.path.join(root, f), SRC), re.sub(r"\\\n", " ", fh.read())))
uses = 0
for rel, text in texts:
    for line in text.split("\n"):
        for m in re.finditer(r"(?:^|[\s/\"'])joust (coordinator|worker|keygen|run|ingest|status)\b([^#]*)", line):
            cmd, rest = m.group(1), m.group(2)
            known = options_of(cmd)
            check(known is not None, f"{rel}: joust {cmd} --help works")
            for opt in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", rest):
                uses += 1
                check(known is not None and opt in known, f"{rel}: joust {cmd} has no option {opt}")
check(uses > 40, f"options found in cluster/ ({uses}): the scan sees the commands")

# ---------------------------------------------------- systemd-analyze verify
sa = shutil.which("systemd-analyze")
if not sa:
    skipped.append("systemd-analyze verify (not installed)")
else:
    with tempfile.TemporaryDirectory() as tmp:
        names = []
        for unit, as_name in (("joust-coordinator.service", "joust-coordinator.service"),
                              ("joust-worker@.service", "joust-worker@gpu0.service")):
            text = read("systemd", unit)
            check("/usr/local/bin/joust " in text, f"{unit}: runs /usr/local/bin/joust (where cmake --install puts it)")
            with open(os.path.join(tmp, as_name), "w") as f:
                f.write(text.replace("/usr/local/bin/joust", os.path.abspath(JOUST)))
            names.append(as_name)
        out = subprocess.run([sa, "verify"] + names, cwd=tmp, capture_output=True, text=True)
        complaints = (out.stdout + out.stderr).strip()
        check(out.returncode == 0 and not complaints, f"systemd-analyze verify: {complaints or 'rc ' + str(out.returncode)}")
    worker_unit = read("systemd", "joust-worker@.service")
    check("keygen \"$(hostname)\"" in worker_unit and "/etc/joust/keys/%H.key" in worker_unit,
          "worker unit: the key keygen writes for $(hostname) is the %H.key it loads")
    for unit in ("joust-coordinator.service", "joust-worker@.service"):
        text = read("systemd", unit)
        for cred in re.findall(r"^LoadCredential=([^:]+):", text, re.M):
            check(f"%d/{cred}" in text, f"{unit}: credential {cred} is used from %d")
        check(not re.search(r"--(curve-secret|server-key|allow) /etc/", text),
              f"{unit}: key files reach joust only through LoadCredential (the key dir is 0700 root)")

for s in skipped:
    print("skipped part:", s)
print(f"{passed[0]} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
