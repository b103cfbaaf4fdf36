"""serverless.yml: handlers exist, IAM is scoped by the names the code renders, actions cover
every AWS call the code makes, and the package ships only what the AWS handler imports."""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.config import parse_config_text
from core.naming.assign import render_name

ROOT = Path(__file__).resolve().parents[2]
SLS = yaml.safe_load((ROOT / "serverless.yml").read_text())
PARAMS = SLS["params"]["default"]
REGION, ACCOUNT = "us-east-1", "123456789012"
LIST_ONLY = {"secretsmanager:ListSecrets", "secretsmanager:BatchGetSecretValue", "ssm:DescribeParameters"}


def resolve(value: Any) -> str:
    """Serverless variables as `osls package` resolves them (default params), then the
    CloudFormation pseudo parameters of an `Fn::Sub` as CloudFormation does at deploy time."""
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        value = value["Fn::Sub"]
    if not isinstance(value, str):
        return ""
    value = value.replace("${AWS::Region}", REGION).replace("${AWS::AccountId}", ACCOUNT)
    value = value.replace("${self:service}", SLS["service"]).replace("${sls:stage}", "prod")
    for _ in range(3):
        value = re.sub(r"\$\{param:(\w+)\}", lambda m: str(PARAMS[m.group(1)]), value)
        value = value.replace("${AWS::Region}", REGION).replace("${AWS::AccountId}", ACCOUNT)
    return value


def statements() -> list[dict[str, Any]]:
    return SLS["provider"]["iam"]["role"]["statements"]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allowed(action: str, arn: str, tags: dict[str, str] | None = None) -> bool:
    """Whether some statement allows `action` on `arn` (StringEquals tag conditions honoured)."""
    for st in statements():
        if st["Effect"] != "Allow" or action not in st["Action"]:
            continue
        for res in _list(st["Resource"]):
            if not resolve(res) or not fnmatch.fnmatchcase(arn, resolve(res)):
                continue
            cond = (st.get("Condition") or {}).get("StringEquals") or {}
            tag_conds = {
                k.split("/", 1)[1]: v for k, v in cond.items() if "ResourceTag/" in k or "resourceTag/" in k
            }
            if all((tags or {}).get(k) == v for k, v in tag_conds.items()):
                return True
    return False


def test_every_handler_exists_and_runtime_is_current() -> None:
    assert resolve(SLS["provider"]["runtime"]) in ("python3.12", "python3.13")
    assert resolve(SLS["provider"]["architecture"]) == "arm64"
    for name, fn in SLS["functions"].items():
        module_path, _, attr = fn["handler"].rpartition(".")
        path = ROOT / f"{module_path}.py"
        assert path.is_file(), f"{name}: {path} missing"
        spec = importlib.util.spec_from_file_location(f"sls_{name}", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert callable(getattr(module, attr)), f"{name}: {attr} is not callable"
    assert SLS["functions"]["webhook"]["url"] is True
    events = SLS["functions"]["worker"]["events"]
    sqs = next(e["sqs"] for e in events if "sqs" in e)
    assert sqs["functionResponseType"] == "ReportBatchItemFailures"
    assert any("schedule" in e for e in events)
    assert SLS["provider"]["environment"]["SMF_QUEUE_URL"] == {"Ref": "SyncQueue"}


def _config(environment: str, **configs: Any) -> Any:
    doc = {"apiVersion": "secret-manager.microscaler.io/v1alpha1", "kind": "SecretManagerConfig",
           "metadata": {"name": "c"},
           "spec": {"provider": {"type": "aws", "aws": {"region": REGION}},
                    "secrets": {"environment": environment}, "configs": {"enabled": True, **configs}}}  # fmt: skip
    return parse_config_text(json.dumps(doc))[0]


KEYS = ["DB_PASSWORD", "spring.datasource.password", "nested/key", "weird key!"]
SM_ACTIONS = ["CreateSecret", "PutSecretValue", "UpdateSecret", "TagResource", "DescribeSecret",
              "GetSecretValue", "DeleteSecret", "RestoreSecret"]  # fmt: skip
SSM_ACTIONS = ["PutParameter", "AddTagsToResource", "ListTagsForResource", "GetParameter", "GetParameters",
               "DeleteParameter"]  # fmt: skip
OURS = {"managed-by": "secret-manager-functions"}


@pytest.mark.parametrize("service", ["orders", "payments-api"])
def test_iam_allows_exactly_the_names_the_code_renders(service: str) -> None:
    env = PARAMS["environment"]
    here, other = _config(env), _config("prod" if env != "prod" else "staging")
    for key in KEYS:
        for cfg, inside in ((here, True), (other, False)):
            name = render_name(
                cfg, "aws-secrets-manager", "secret", service, service, cfg.secrets.environment, key
            )
            arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf"
            for action in SM_ACTIONS:
                assert allowed(f"secretsmanager:{action}", arn, OURS) is inside, (action, arn)
            pname = render_name(
                cfg, "aws-parameter-store", "config", service, service, cfg.secrets.environment, key
            )
            parn = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{pname}"
            for action in SSM_ACTIONS:
                assert allowed(f"ssm:{action}", parn, OURS) is inside, (action, parn)
    # deletes and restores need our managed-by tag on the resource
    name = render_name(here, "aws-secrets-manager", "secret", service, service, env, "K")
    arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf"
    assert not allowed("secretsmanager:DeleteSecret", arn, {})
    assert not allowed("secretsmanager:RestoreSecret", arn, {"managed-by": "someone-else"})
    assert allowed("secretsmanager:PutSecretValue", arn, {})  # adoption of a hand-made secret
    parn = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/{service}/{env}/k"
    assert not allowed("ssm:DeleteParameter", parn, {})


def test_star_resources_only_for_calls_without_resource_level_permissions() -> None:
    for st in statements():
        if "*" in _list(st["Resource"]):
            assert set(st["Action"]) <= LIST_ONLY, st["Sid"]
        for res in _list(st["Resource"]):
            if resolve(res):
                assert resolve(res).count("*") <= 2 and not resolve(res).endswith(":*"), res
    kms = [st for st in statements() if any(a.startswith("kms:") for a in st["Action"])]
    for st in kms:
        assert all(":key/" in resolve(r) for r in _list(st["Resource"])), st["Sid"]
    sops = next(st for st in kms if st["Sid"] == "SopsKmsDecrypt")
    assert sops["Action"] == ["kms:Decrypt"]


def _called_operations(path: Path, client_expr: str = r"self\.client") -> set[str]:
    text = path.read_text()
    return set(re.findall(client_expr + r"\.(\w+)\b", text)) - {"meta"}


def test_every_aws_call_in_the_code_is_allowed() -> None:
    import boto3

    for module, service, prefix in (("aws_secrets_manager", "secretsmanager", "secretsmanager"),
                                    ("aws_parameter_store", "ssm", "ssm")):  # fmt: skip
        client = boto3.client(service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
        mapping = client.meta.method_to_api_mapping
        ops = _called_operations(ROOT / "core" / "stores" / f"{module}.py")
        assert ops, module
        for op in ops:
            action = f"{prefix}:{mapping[op]}"
            assert any(action in st["Action"] for st in statements()), (
                f"{action} ({module}) not in serverless.yml"
            )
    assert any("sqs:SendMessage" in st["Action"] for st in statements())
    worker = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{SLS['service']}-prod-worker"
    assert allowed("lambda:InvokeFunction", worker)
    assert not allowed("lambda:InvokeFunction", worker.replace("worker", "webhook"))


def _included(rel: str) -> bool:
    """serverless `package.patterns` (ordered; `!` excludes), as the framework applies them."""
    keep = False
    for pattern in SLS["package"]["patterns"]:
        neg = pattern.startswith("!")
        pat = pattern[1:] if neg else pattern
        rx = re.escape(pat).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        if re.fullmatch(rx, rel):
            keep = not neg
    return keep


def test_package_ships_only_what_the_aws_handler_imports() -> None:
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    shipped = {f for f in files if _included(f)}
    assert "handlers/aws_lambda.py" in shipped
    assert {
        "core/stores/aws_secrets_manager.py",
        "core/stores/aws_parameter_store.py",
        "core/stores/_aws.py",
    } <= shipped
    assert not [f for f in shipped if re.search(r"(gcp|azure)", f.rsplit("/", 1)[-1]) and "stores" in f]
    assert not [
        f for f in shipped if f.startswith(("tests/", "handlers/gcp", "handlers/azure", "bench/", "infra/"))
    ]
    # What a sync with both AWS stores and SOPS actually loads from this repository is shipped.
    code = (
        "import sys, json\n"
        f"sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(ROOT / 'handlers')!r})\n"
        "import aws_lambda, core.sync, core.intake, core.sops, core.git_fetch, core.parsers\n"
        "import core.stores.aws_secrets_manager, core.stores.aws_parameter_store\n"
        "from core.sops.keys import age, awskms\n"
        f"root = {str(ROOT)!r} + '/'\n"
        "print(json.dumps(sorted(m.__file__[len(root):] for m in list(sys.modules.values())\n"
        "      if getattr(m, '__file__', None) and m.__file__.startswith(root)\n"
        "      and not m.__file__.startswith(root + '.venv/'))))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "POWERTOOLS_TRACE_DISABLED": "true", "AWS_DEFAULT_REGION": REGION}
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                                       check=True, cwd=str(ROOT), timeout=120).stdout)  # fmt: skip
    missing = [f for f in loaded if f not in shipped]
    assert not missing, missing
    reqs = (ROOT / "handlers" / "aws_lambda.requirements.txt").read_text().lower()
    assert "boto3" in reqs and "aws-lambda-powertools" in reqs
    assert not re.search(r"^(google|azure|functions-framework)", reqs, re.M)
