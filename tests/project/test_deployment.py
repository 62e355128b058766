"""The container image definition and the Kubernetes example agree with the code.

Neither can be started here (no registry, no Kubernetes); these tests parse them and
check what would break a deployment silently: other Debian packages or Python pins
than a developer machine gets, images that differ between the batch and the workers,
a scheduler address that does not match the scheduler's Service, exit codes that the
CronJob retries (or not) against their meaning.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import yaml

from invoicing.core.errors import RETRY, ExitCode, retryable

REPO = Path(__file__).resolve().parents[2]
CONTAINERFILE = REPO / "Containerfile"
KUBERNETES = REPO / "deploy" / "kubernetes" / "invoicing.yaml"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Containerfile, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", CONTAINERFILE.read_text(encoding="utf-8"))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip())
            for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def makefile_debian_packages() -> list[str]:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    found = re.search(r"^DEBIAN_PACKAGES := (.+)$", makefile, re.MULTILINE)
    assert found
    return found.group(1).split()


def test_the_image_is_debian_with_the_same_packages_pins_and_fonts() -> None:
    steps = instructions()
    assert steps[0][0] == "FROM" and "bookworm" in steps[0][1]  # Debian 12
    runs = [args for kind, args in steps if kind == "RUN"]
    install = next(shlex.split(r.split("&&")[0]) for r in runs if "install-system-deps" in r)
    assert install[0] == "scripts/install-system-deps.sh"
    assert install[1:] == makefile_debian_packages()
    copied = " ".join(args for kind, args in steps if kind == "COPY")
    for needed in ("requirements.lock", "pyproject.toml", "invoicing/", "templates/"):
        assert needed in copied
    assert any("pip install --no-deps -c requirements.lock -e '.[cluster]'" in r for r in runs)
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert any(dep.startswith("distributed") for dep in extras["optional-dependencies"]["cluster"])
    ignored = (REPO / ".dockerignore").read_text().split()
    assert not {"invoicing/", "templates/", "requirements.lock"} & set(ignored)


def test_the_locked_dependencies_are_a_layer_that_code_changes_do_not_invalidate() -> None:
    steps = instructions()
    locked = next(i for i, (kind, args) in enumerate(steps)
                  if kind == "RUN" and "pip install -c requirements.lock -r" in args)
    before = " ".join(args for kind, args in steps[:locked] if kind == "COPY").split()
    # Only the script, pyproject.toml and the lock file reach the image before that layer.
    assert {"pyproject.toml", "requirements.lock"} <= set(before)
    assert not {"invoicing/", "templates/", "README.md", "."} & set(before)
    copies = [i for i, (kind, args) in enumerate(steps) if kind == "COPY" and "invoicing/" in args]
    assert copies and min(copies) > locked
    # The layer installs the runtime and `cluster` dependencies, not `dev`.
    run = steps[locked][1]
    assert "p['dependencies'] + p['optional-dependencies']['cluster']" in run


def manifests() -> dict[str, dict[str, Any]]:
    with KUBERNETES.open(encoding="utf-8") as fh:
        return {doc["kind"]: doc for doc in yaml.safe_load_all(fh)}


def test_the_kubernetes_example_has_a_dask_cluster_and_a_monthly_cronjob() -> None:
    docs = manifests()
    assert set(docs) == {"DaskCluster", "DaskAutoscaler", "CronJob"}
    dask, cron = docs["DaskCluster"], docs["CronJob"]
    assert dask["apiVersion"] == "kubernetes.dask.org/v1"
    worker = dask["spec"]["worker"]["spec"]["containers"][0]
    scheduler = dask["spec"]["scheduler"]["spec"]["containers"][0]
    batch = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    # One image for everything: the run refuses workers that render differently.
    assert worker["image"] == scheduler["image"] == batch["image"]
    # By digest: a tag can move between the scheduler's start and a worker's.
    assert re.fullmatch(r"[a-z0-9./-]+@sha256:[0-9a-f]{64}", batch["image"]), batch["image"]
    # Workers write their PDFs to object storage with the same variables as the batch.
    worker_env = {e["name"]: e for e in worker["env"]}
    for var in ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert worker_env[var] == {e["name"]: e for e in batch["env"]}[var]
    assert worker["args"][:2] == ["dask", "worker"]
    assert worker["args"][worker["args"].index("--nthreads") + 1] == "1"
    assert scheduler["args"] == ["dask", "scheduler"]
    # The batch finds the scheduler through the Service the operator creates for it.
    env = {e["name"]: e for e in batch["env"]}
    name, namespace = dask["metadata"]["name"], dask["metadata"]["namespace"]
    ports = {p["name"]: p["port"] for p in dask["spec"]["scheduler"]["service"]["ports"]}
    assert env["INVOICING_CLUSTER"]["value"] == (
        f"tcp://{name}-scheduler.{namespace}.svc.cluster.local:{ports['tcp-comm']}")
    for var in ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert var in env
    assert "secretKeyRef" in env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]
    # On the 1st of every month, for the previous month, one run at a time.
    day, month, weekday = cron["spec"]["schedule"].split()[2:]
    assert (day, month, weekday) == ("1", "*", "*")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert "exec invoicing run --month" in batch["args"][0]
    # Workers follow the work instead of a scale-to-zero by hand; one stays up.
    scaler = docs["DaskAutoscaler"]
    assert scaler["spec"]["cluster"] == name
    assert scaler["metadata"]["namespace"] == namespace
    assert 1 <= scaler["spec"]["minimum"] < scaler["spec"]["maximum"]
    assert float(env["INVOICING_CLUSTER_TIMEOUT"]["value"]) > 0


def readme_retry_column() -> dict[int, str]:
    """Exit code -> the README's "a retry of the same command" cell."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = readme.split("### Exit codes", 1)[1].split("\n\n", 2)[1]
    rows = [line.strip("|").split(" | ") for line in table.splitlines()[2:]]
    return {int(cells[0]): cells[-1].strip() for cells in rows}


def test_the_readme_the_code_and_the_cronjob_agree_on_what_a_retry_can_fix() -> None:
    assert set(RETRY) == set(ExitCode) - {ExitCode.OK}
    assert readme_retry_column() == {0: "—", **{int(c): r.why for c, r in RETRY.items()}}
    assert retryable(True) == [ExitCode.LOCKED, ExitCode.STORAGE, ExitCode.CLUSTER_UNAVAILABLE,
                               ExitCode.NOT_DELIVERED]
    assert ExitCode.UNEXPECTED in retryable(False)  # bugs are not retried
    job = manifests()["CronJob"]["spec"]["jobTemplate"]["spec"]
    rules = job["podFailurePolicy"]["rules"]
    by_action = {r["action"]: r for r in rules}
    assert by_action["FailJob"]["onExitCodes"]["values"] == retryable(False)
    assert by_action["Count"]["onExitCodes"]["values"] == retryable(True)
    for rule in (by_action["FailJob"], by_action["Count"]):
        assert rule["onExitCodes"]["operator"] == "In"
        assert rule["onExitCodes"]["containerName"] == "batch"
    # A node drain uses up no retry, and comes first (rules are matched in order).
    assert rules[0] == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}
    assert job["template"]["spec"]["restartPolicy"] == "Never"  # podFailurePolicy needs it
    assert job["backoffLimit"] >= 1
    assert 3600 <= job["activeDeadlineSeconds"] <= 86400  # a run is bounded
