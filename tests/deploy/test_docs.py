"""The deploy sections of docs/aws.md, docs/gcp.md and docs/azure.md, command by command.

Each section is a numbered list of commands run from the repository root. What can run here
runs (cp, osls package, the build scripts); the cloud CLIs cannot, so their commands are
checked against what they address: AWS calls against botocore's API model, `terraform -var`s
against the variables (and every required one given), outputs against outputs.tf, secret
names and resource-group/app names against the Terraform and each other.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from tests.deploy.conftest import ROOT, offline_env, run, tool
from tests.deploy.test_aws_package import CONFIG, service_dir
from tests.support.terraform import load_terraform

#: AWS CLI options that its customizations rename from the API's parameter names.
CLI_RENAMES = {("sns", "subscribe"): {"--notification-endpoint": "--endpoint"}}


def deploy_commands(doc: str) -> list[str]:
    text = (ROOT / "docs" / doc).read_text()
    section = re.search(r"^## Deploy.*?$(.*?)(?=^## )", text, re.S | re.M)
    assert section, f"{doc}: no Deploy section"
    body = section.group(1)
    assert re.search(r"^1\. ", body, re.M), f"{doc}: the deploy steps are not a numbered list"
    blocks = re.findall(r"```sh\n(.*?)```", body, re.S)
    return [
        ln.strip() for b in blocks for ln in b.splitlines() if ln.strip() and not ln.strip().startswith("#")
    ]


def _strip_substitutions(cmd: str) -> str:
    """Drop "$( ... )" command substitutions (balanced), which shlex cannot split."""
    out, i = [], 0
    while i < len(cmd):
        if cmd.startswith('"$(', i):
            depth, j = 0, i + 2  # at the "("
            while j < len(cmd):
                depth += cmd[j] == "("
                depth -= cmd[j] == ")"
                j += 1
                if depth == 0:
                    break
            out.append("SUBST")
            i = j + 1  # the closing quote
        else:
            out.append(cmd[i])
            i += 1
    return "".join(out)


def argv(cmd: str) -> list[str]:
    return shlex.split(_strip_substitutions(cmd))


def _flags(args: list[str]) -> dict[str, str]:
    out = {}
    for i, a in enumerate(args):
        if a.startswith("-") and a != "-":
            key, eq, value = a.partition("=")
            out[key] = value if eq else (args[i + 1] if i + 1 < len(args) else "")
    return out


def check_terraform(args: list[str]) -> None:
    chdir = next(a.split("=", 1)[1] for a in args if a.startswith("-chdir="))
    tf = load_terraform(ROOT / chdir)
    sub = args[2]
    if sub == "apply":
        given = {args[i + 1].split("=", 1)[0] for i, a in enumerate(args) if a == "-var"}
        assert given <= set(tf["variable"]), given - set(tf["variable"])
        required = {n for n, v in tf["variable"].items() if "default" not in v}
        assert required <= given, f"{chdir}: apply lacks {required - given}"
    elif sub == "output":
        assert args[3] in tf["output"], args[3]
    else:
        assert sub in ("init", "plan", "fmt", "validate"), sub


def test_no_step_changes_directory_and_every_path_exists() -> None:
    """Blocker (Azure): the docs ran build.sh from inside infra/azure, where it does not exist."""
    for doc in ("aws.md", "gcp.md", "azure.md"):
        for cmd in deploy_commands(doc):
            assert not re.match(r"cd\b", cmd), f"{doc}: {cmd!r} (run from the repository root)"
            for token in argv(cmd):
                token = token.split("=", 1)[-1]
                if token.startswith(("infra/", "handlers/", "examples/")):
                    assert (ROOT / token).exists(), f"{doc}: {token} does not exist"


def test_aws_steps(tmp_path: Path) -> None:
    import boto3
    import botocore.session

    cmds = deploy_commands("aws.md")
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert cmds[0] == "npm ci" and lock["packages"]["node_modules/osls"]["version"] == "4.3.1"
    svc = service_dir(tmp_path / "svc", config=None)
    (svc / "my-configs.yaml").write_text(CONFIG)
    params = set(__import__("yaml").safe_load((ROOT / "serverless.yml").read_text())["params"]["default"])
    session = botocore.session.get_session()
    ran = set()
    for cmd in cmds[1:]:
        args = argv(cmd)
        if args[0] == "cp":
            assert run(args, cwd=svc).returncode == 0
            ran.add("cp")
        elif args[:2] == ["npx", "osls"]:
            for a in args:
                if a.startswith("--param="):
                    assert a.split("=", 1)[1].split("=", 1)[0] in params, a
            if args[2] == "package":
                done = run([tool("osls"), *args[2:]], cwd=svc, env=offline_env())
                assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
                assert (svc / ".serverless" / "secret-manager-functions.zip").is_file()
                ran.add("package")
            else:
                assert args[2] in ("deploy", "info", "logs", "remove"), args
        elif args[0] == "aws":
            model = session.get_service_model(args[1])
            op = "".join(p.capitalize() for p in args[2].split("-"))
            if op not in model.operation_names:  # e.g. SNS's "Subscribe"
                op = next(o for o in model.operation_names if o.lower() == args[2].replace("-", ""))
            members = {m.lower() for m in model.operation_model(op).input_shape.members}
            renamed = CLI_RENAMES.get((args[1], args[2]), {})
            for flag in (f for f in args[3:] if f.startswith("--")):
                assert renamed.get(flag, flag)[2:].replace("-", "") in members, (cmd, flag)
            ran.add(args[1])
        else:
            pytest.fail(f"docs/aws.md: unexpected command {cmd!r}")
    assert ran == {"cp", "package", "secretsmanager", "sns"}
    assert boto3  # the same model the function's SDK uses


def test_gcp_steps(tmp_path: Path) -> None:
    tf = load_terraform(ROOT / "infra" / "gcp")
    seen = set()
    for cmd in deploy_commands("gcp.md"):
        args = argv(cmd)
        if args[0] == "infra/gcp/build.sh":
            done = run(["bash", str(ROOT / args[0]), str(tmp_path / "fn")])
            assert done.returncode == 0 and (tmp_path / "fn" / "main.py").is_file(), done.stderr
            seen.add("build")
        elif args[0] == "terraform":
            check_terraform(args)
            seen.add(args[2])
        elif args[:3] == ["gcloud", "secrets", "create"]:
            assert args[3] == tf["variable"]["age_key_secret_id"]["default"]
            assert "--data-file" in _flags(args)  # created WITH a version: "latest" exists
            seen.add("age-key")
        elif args[:4] == ["gcloud", "secrets", "versions", "access"]:
            assert _flags(args)["--secret"] == tf["resource"]["google_secret_manager_secret"]["webhook"][
                "secret_id"
            ].replace("${var.name}", tf["variable"]["name"]["default"])
        else:
            assert args[:2] == ["gcloud", "services"], cmd
    assert seen == {"build", "init", "apply", "output", "age-key"}


def test_azure_steps(tmp_path: Path) -> None:
    tf = load_terraform(ROOT / "infra" / "azure")
    apply_vars: dict[str, str] = {}
    built = None
    names = set()
    for cmd in deploy_commands("azure.md"):
        args = argv(cmd)
        if args[0] == "handlers/azure_functions/build.sh":
            out = tmp_path / "dist" / "azure-functions"
            done = run(["bash", str(ROOT / args[0]), str(out)])
            assert done.returncode == 0 and (tmp_path / "dist" / "azure-functions.zip").is_file(), done.stderr
            built = "dist/azure-functions.zip"  # the script's default, relative to the root
        elif args[0] == "terraform":
            check_terraform(args)
            if args[2] == "apply":
                apply_vars = dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "-var")
        elif args[:4] == ["az", "keyvault", "secret", "set"]:
            names.add(_flags(args)["-n"])
        elif args[:5] == ["az", "functionapp", "deployment", "source", "config-zip"]:
            flags = _flags(args)
            # Blocker: the README's publish command lacked -g/-n.
            assert flags["-g"] == apply_vars["resource_group_name"] and flags["-n"] == apply_vars["name"]
            assert built and flags["--src"] == built, "publish the zip build.sh wrote"
        else:
            pytest.fail(f"docs/azure.md: unexpected command {cmd!r}")
    assert tf["variable"]["webhook_secret_name"]["default"] in names
    assert tf["variable"]["fingerprint_key_name"]["default"] not in names  # made by the first run


def test_every_publish_command_in_the_readme_and_docs_names_group_and_app() -> None:
    """Blocker (Azure): the README's publish command lacked -g/-n."""
    found = 0
    for path in (ROOT / "README.md", ROOT / "docs" / "azure.md"):
        for cmd in re.findall(r"az functionapp deployment source config-zip[^`\n]*", path.read_text()):
            flags = _flags(argv(cmd))
            assert flags.get("-g") and flags.get("-n") and flags.get("--src"), f"{path.name}: {cmd}"
            found += 1
    assert found >= 2
