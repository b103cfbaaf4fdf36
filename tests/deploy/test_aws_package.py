"""`osls package` on serverless.yml, offline, and what it produces.

Proves, on the real artefacts: the Function URL carries both permissions public access needs
since October 2025 (`lambda:InvokeFunctionUrl` and `lambda:InvokeFunction`); every `.so` in the
arm64 zip is an aarch64 ELF (no Docker, built on x86-64); the x86_64 variant's handler imports
from the unzipped package alone; packaging without a valid config fails; the alarms exist;
X-Ray is a switch; cfn-lint (with the serverless rules) and checkov pass on the template.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import ROOT, offline_env, run, tool

CONFIG = """\
apiVersion: secret-manager.microscaler.io/v1alpha1
kind: SecretManagerConfig
metadata:
  name: orders-dev
spec:
  sourceRef:
    kind: Git
    url: https://github.com/example/config-repo.git
    branch: main
  provider:
    type: aws
    aws:
      region: eu-west-1
  secrets:
    environment: dev
"""
#: ELF e_machine values (little-endian u16 at offset 18).
ELF_MACHINE = {"arm64": 0xB7, "x86_64": 0x3E}
LOCAL_RUNTIME = f"python3.{sys.version_info.minor}"


def service_dir(tmp: Path, config: str | None = CONFIG) -> Path:
    """A clean checkout of what `osls package` reads (the tracked files), plus a config."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    for rel in files:
        if rel.startswith(("core/", "handlers/", "infra/aws/")) or rel in ("serverless.yml", "package.json"):
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest)
    if config is not None:
        (tmp / "smf-config.yaml").write_text(config)
    return tmp


def osls_package(svc: Path, out: Path, *params: str) -> subprocess.CompletedProcess[str]:
    cmd = [tool("osls"), "package", "--stage", "prod", "--region", "eu-west-1", "--package", str(out)]
    for p in params:
        cmd += ["--param", p]
    return run(cmd, cwd=svc, env=offline_env())


class Packaged:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.zip = out / "secret-manager-functions.zip"
        self.template: dict[str, Any] = json.loads(
            (out / "cloudformation-template-update-stack.json").read_text()
        )

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == kind}


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Packaged]:
    """The real arm64 package, and an x86_64 variant for the interpreter running the tests."""
    tool("osls")
    built: dict[str, Packaged] = {}
    for arch, params in (
        ("arm64", ()),
        ("x86_64", ("architecture=x86_64", f"runtime={LOCAL_RUNTIME}", "xray=true")),
    ):
        svc = service_dir(tmp_path_factory.mktemp(f"svc-{arch}"))
        out = tmp_path_factory.mktemp(f"out-{arch}")
        done = osls_package(svc, out, *params)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        built[arch] = Packaged(out)
    return built


def test_function_url_grants_both_permissions_public_access_needs(packages: dict[str, Packaged]) -> None:
    perms = packages["arm64"].resources("AWS::Lambda::Permission")
    url = [p["Properties"] for p in perms.values() if p["Properties"]["FunctionName"]
           == {"Fn::GetAtt": ["WebhookLambdaFunction", "Arn"]}]  # fmt: skip
    by_action = {p["Action"]: p for p in url}
    assert by_action["lambda:InvokeFunctionUrl"]["Principal"] == "*"
    assert by_action["lambda:InvokeFunctionUrl"]["FunctionUrlAuthType"] == "NONE"
    assert by_action["lambda:InvokeFunction"]["Principal"] == "*"
    assert by_action["lambda:InvokeFunction"]["InvokedViaFunctionUrl"] is True
    fn = packages["arm64"].template["Resources"]["WebhookLambdaFunction"]["Properties"]
    assert fn["Architectures"] == ["arm64"] and fn["Runtime"] == "python3.13"


def _elf_machines(zip_path: Path) -> dict[str, int]:
    machines = {}
    with zipfile.ZipFile(zip_path) as zf:
        for name in zf.namelist():
            if name.endswith(".so") or ".so." in name.rsplit("/", 1)[-1]:
                head = zf.open(name).read(20)
                assert head[:4] == b"\x7fELF", name
                machines[name] = int.from_bytes(head[18:20], "little")
    return machines


@pytest.mark.parametrize("arch", ["arm64", "x86_64"])
def test_every_shared_object_matches_the_function_architecture(
    packages: dict[str, Packaged], arch: str
) -> None:
    machines = _elf_machines(packages[arch].zip)
    # the binary wheels the function needs are all there (cryptography, pyrage, PyYAML, cffi, dulwich)
    for part in ("cryptography/", "pyrage/", "yaml/_yaml", "_cffi_backend", "dulwich/"):
        assert any(part in name for name in machines), part
    wrong = {n: hex(m) for n, m in machines.items() if m != ELF_MACHINE[arch]}
    assert not wrong, wrong


def test_the_x86_64_variant_imports_from_the_unzipped_package_alone(
    packages: dict[str, Packaged], tmp_path: Path
) -> None:
    with zipfile.ZipFile(packages["x86_64"].zip) as zf:
        zf.extractall(tmp_path)
    assert (tmp_path / "smf-config.yaml").is_file()
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import importlib\n"
        "m = importlib.import_module('handlers.aws_lambda'); assert callable(m.handler)\n"
        "import yaml, pyrage, cryptography.hazmat.bindings._rust, dulwich.objects, boto3\n"
        "assert yaml.__with_libyaml__\n"
        "print(sorted({mod.__file__ for mod in list(sys.modules.values())\n"
        "       if getattr(mod, '__file__', None) and not mod.__file__.startswith((sys.argv[1], sys.base_prefix))}))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "eu-west-1", "POWERTOOLS_TRACE_DISABLED": "true",
           "SMF_CONFIG_PATH": str(tmp_path / "smf-config.yaml")}  # fmt: skip
    # -S: no site-packages, so only the unzipped package and the standard library are importable
    done = run([sys.executable, "-S", "-c", code, str(tmp_path)], env=env, cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]"  # every module came from the package or the standard library


def test_packaging_refuses_a_missing_or_invalid_config(tmp_path: Path) -> None:
    svc = service_dir(tmp_path / "missing", config=None)
    done = osls_package(svc, tmp_path / "out1")
    assert done.returncode != 0
    assert "smf-config.yaml: missing" in done.stderr + done.stdout
    assert not (tmp_path / "out1" / "secret-manager-functions.zip").exists()
    bad = CONFIG.replace("  secrets:\n", "  secrts:\n")
    svc = service_dir(tmp_path / "invalid", config=bad)
    done = osls_package(svc, tmp_path / "out2")
    assert done.returncode != 0
    assert "smf-config.yaml:" in done.stderr and "secrts" in done.stderr, done.stderr[-2000:]


def test_alarms_watch_the_dead_letter_queue_and_the_errors(packages: dict[str, Packaged]) -> None:
    alarms = packages["arm64"].resources("AWS::CloudWatch::Alarm")
    props = [a["Properties"] for a in alarms.values()]
    dlq = [p for p in props if p.get("Namespace") == "AWS/SQS"]
    assert dlq and dlq[0]["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["SyncDeadLetterQueue", "QueueName"]}
    fn_errors = {p["Dimensions"][0]["Value"]["Ref"] for p in props if p.get("MetricName") == "Errors"}
    assert fn_errors == {"WebhookLambdaFunction", "WorkerLambdaFunction"}
    assert any("SUM(Errors)" in str(p.get("Metrics")) for p in props)  # the handler's own metric
    assert all(p["AlarmActions"] == [{"Ref": "AlarmTopic"}] for p in props)
    invoke = packages["arm64"].resources("AWS::Lambda::EventInvokeConfig")
    assert [c["Properties"]["MaximumRetryAttempts"] for c in invoke.values()] == [2]


def test_xray_is_off_by_default_and_a_switch(packages: dict[str, Packaged]) -> None:
    for arch, active in (("arm64", False), ("x86_64", True)):
        for fn in ("WebhookLambdaFunction", "WorkerLambdaFunction"):
            props = packages[arch].template["Resources"][fn]["Properties"]
            assert ("TracingConfig" in props) is active, (arch, fn)
            assert props["Environment"]["Variables"]["POWERTOOLS_TRACE_DISABLED"] == str(not active).lower()


def test_the_fingerprint_key_is_the_one_secret_name_iam_allows_to_create(
    packages: dict[str, Packaged],
) -> None:
    role = packages["arm64"].template["Resources"]["IamRoleLambdaExecution"]["Properties"]
    stmts = role["Policies"][0]["PolicyDocument"]["Statement"]
    creators = [s for s in stmts if "secretsmanager:CreateSecret" in s["Action"]]
    fp = next(s for s in creators if s["Sid"] == "FingerprintKey")
    assert fp["Resource"] == [
        {
            "Fn::Sub": "arn:aws:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:smf-fingerprint-key-??????"
        }
    ]
    env = packages["arm64"].template["Resources"]["WorkerLambdaFunction"]["Properties"]["Environment"][
        "Variables"
    ]
    assert env["SMF_FINGERPRINT_KEY_NAME"] == "smf-fingerprint-key"


def test_cfn_lint_with_the_serverless_rules_passes(packages: dict[str, Packaged]) -> None:
    template = packages["arm64"].out / "cloudformation-template-update-stack.json"
    done = run(
        [
            tool("cfn-lint"),
            "--config-file",
            str(ROOT / "infra" / "aws" / "cfnlintrc.yaml"),
            "--",
            str(template),
        ]
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_checkov_passes_on_the_generated_template(packages: dict[str, Packaged]) -> None:
    template = packages["arm64"].out / "cloudformation-template-update-stack.json"
    done = run([tool("checkov"), "--quiet", "--compact", "--framework", "cloudformation", "-f", str(template),
                "--skip-download", "--config-file", str(ROOT / "infra" / "aws" / "checkov.yaml")])  # fmt: skip
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
