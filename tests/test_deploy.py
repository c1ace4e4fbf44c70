"""Deployment examples: the CronJob manifest parses and says what the README promises."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def _documents() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / "cronjob.yaml").read_text()) if d]


def _cronjob() -> dict[str, Any]:
    (job,) = [d for d in _documents() if d.get("kind") == "CronJob"]
    return job


def test_cronjob_manifest() -> None:
    job = _cronjob()
    assert job["apiVersion"] == "batch/v1"
    spec = job["spec"]
    assert len(spec["schedule"].split()) == 5
    assert spec["concurrencyPolicy"] == "Forbid"
    jspec = spec["jobTemplate"]["spec"]
    assert 0 <= jspec["backoffLimit"] <= 2
    pod = jspec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["resources"]["requests"] == {"cpu": "2", "memory": "8Gi"}
    script = " ".join(container["command"] + container["args"])
    assert "campaigns nightly" in script
    assert '--date "$(date -u -d yesterday +%F)"' in script
    assert "\\%" not in script  # crontab escaping does not belong in a manifest
    assert "--config /etc/campaigns/config.toml" in script
    if shutil.which("sh"):
        shell = container["args"][0]
        subprocess.run(["sh", "-n", "-c", shell], check=True)  # the wrapper parses
    # the store and outputs live on a PVC that the manifest also defines
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    }
    pvcs = {d["metadata"]["name"] for d in _documents() if d.get("kind") == "PersistentVolumeClaim"}
    assert claims and claims <= pvcs
    mounted = {m["name"] for m in container["volumeMounts"]}
    assert {v["name"] for v in pod["volumes"]} <= mounted


def test_cron_example() -> None:
    lines = [
        ln
        for ln in (DEPLOY / "cron.example").read_text().splitlines()
        if ln.strip() and not ln.lstrip().startswith("#") and "=" not in ln.split()[0]
    ]
    (line,) = lines
    fields = line.split()
    assert len(fields) > 5 and all(re.fullmatch(r"[\d*/,-]+", f) for f in fields[:5])
    assert "campaigns nightly --date $(date -u -d yesterday +\\%F)" in line
    assert "--config /etc/campaigns/config.toml" in line
    assert re.search(r">>\s*\S+\.log 2>&1$", line)
    assert "%" not in line.replace("\\%", "")  # every % escaped for cron


def test_readme_lists_exit_codes_and_alerts() -> None:
    text = (DEPLOY / "README.md").read_text()
    codes = {int(m) for m in re.findall(r"^\|\s*(\d)\s*\|", text, flags=re.MULTILINE)}
    assert codes == {0, 1, 2, 3, 4}
    for words in ("bundle", "lock", "health check", "textfile"):
        assert words in text
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
    rules = [yaml.safe_load(b) for b in blocks]
    (rule,) = [r for r in rules if r.get("kind") == "PrometheusRule"]
    exprs = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert any("campaigns_run_degraded" in e and "== 1" in e for e in exprs)
    assert any("campaigns_last_run_timestamp_seconds" in e and "36" in e for e in exprs)
