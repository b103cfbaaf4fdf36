"""`plan` without credentials, end to end through the CLI, on every cloud (issue #12 item 6).

Each case runs ``python -m core plan`` as a user would, in a clean environment with no cloud
credentials at all (no env credentials, HOME an empty directory, metadata servers pointed at a
closed loopback port so nothing leaves the machine), and asserts what the user sees: exit code
1, exactly one ``error:`` line on stderr that names what is missing, the JSON report on stdout
under ``--json``, and no traceback anywhere.

The controller's own example manifest uses ``auth: {authType: irsa, roleArn: ...}``
(``examples/`` of microscaler/secret-manager-controller): with no web identity token behind it,
botocore used to fail with ``AttributeError`` deep in the assume-role fetcher.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: An address nothing listens on: a metadata server or endpoint that must not be reached.
CLOSED = "127.0.0.1:1"


def _closed_port_is_closed() -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", 1)) != 0


def _manifest(provider: str) -> str:
    return f"""\
apiVersion: secret-management.microscaler.io/v1beta1
kind: SecretManagerConfig
metadata:
  name: shop
spec:
  sourceRef: {{kind: GitRepository, name: shop, namespace: flux-system}}
  provider:
{provider}
  secrets:
    environment: dev
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    d = tmp_path / "repo/orders/deployment-configuration/profiles/dev"
    d.mkdir(parents=True)
    (d / "application.secrets.env").write_text("DB_PASSWORD=hunter2-no-creds\n")
    return tmp_path / "repo"


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    home = tmp_path / "empty-home"
    home.mkdir(exist_ok=True)
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "PYTHONPATH": str(ROOT),
        # AWS: no env or file credentials, no instance metadata
        "AWS_CONFIG_FILE": str(home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        # GCP: no ADC file, metadata server unreachable
        "GCE_METADATA_HOST": CLOSED,
        "GCE_METADATA_IP": CLOSED,
        "CLOUDSDK_CONFIG": str(home / "gcloud"),
        # Azure: IMDS unreachable, no az CLI on PATH
        "AZURE_POD_IDENTITY_AUTHORITY_HOST": f"http://{CLOSED}",
    }
    env.update(extra)
    return env


def _plan(
    config: Path, source: Path, env: dict[str, str], *json_flag: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core", "plan", "--config", str(config), "--source", str(source), *json_flag],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _assert_one_clear_error(proc: subprocess.CompletedProcess[str], *needles: str, as_json: bool) -> str:
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    assert "hunter2" not in proc.stderr + proc.stdout
    if as_json:
        report = json.loads(proc.stdout)
        assert report["outcome"] == "failed"
        assert len(report["errors"]) == 1
        for needle in needles:
            assert needle in report["errors"][0]["message"]
    return errors[0]


AWS_IRSA = (
    "    aws:\n      region: us-east-1\n"
    "      auth: {authType: irsa, roleArn: 'arn:aws:iam::123456789012:role/secret-manager'}"
)
AWS_PLAIN = "    aws:\n      region: us-east-1"
GCP = "    gcp:\n      projectId: shop-prod"


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
@pytest.mark.parametrize(
    ("provider", "extra", "needles"),
    [
        # irsa roleArn, and no web identity token anywhere
        (AWS_IRSA, {}, ("no AWS credentials found", "roleArn")),
        # irsa roleArn, the token file the pod would have is missing
        (
            AWS_IRSA,
            {
                "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/pod",
                "AWS_WEB_IDENTITY_TOKEN_FILE": "/nonexistent/token",
            },
            ("AWS_WEB_IDENTITY_TOKEN_FILE",),
        ),
        (AWS_PLAIN, {}, ("no AWS credentials found",)),
        (GCP, {}, ("no Google credentials found", "GOOGLE_APPLICATION_CREDENTIALS")),
    ],
    ids=["aws-irsa", "aws-irsa-token-missing", "aws", "gcp"],
)
def test_plan_without_credentials_fails_with_one_clear_line(
    tmp_path: Path, repo: Path, provider: str, extra: dict[str, str], needles: tuple[str, ...], as_json: bool
) -> None:
    assert _closed_port_is_closed()
    config = tmp_path / "smc.yaml"
    config.write_text(_manifest(provider))
    env = _clean_env(tmp_path, AWS_ENDPOINT_URL=f"http://{CLOSED}", **extra)
    proc = _plan(config, repo, env, *(["--json"] if as_json else []))
    _assert_one_clear_error(proc, *needles, as_json=as_json)


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_plan_without_azure_credentials_fails_with_one_clear_line(
    tmp_path: Path, repo: Path, as_json: bool, fake_vault: object
) -> None:
    """The vault answers (the fake, over TLS), so the first thing missing is a token."""
    vault = fake_vault
    config = tmp_path / "smc.yaml"
    config.write_text(_manifest(f"    azure:\n      vaultName: shop\n      vaultUrl: {vault.url}"))  # type: ignore[attr-defined]
    env = _clean_env(
        tmp_path,
        SMF_AZURE_TEST_CA_BUNDLE=str(vault.cert_path),  # type: ignore[attr-defined]
        SMF_AZURE_TEST_SKIP_CHALLENGE_RESOURCE_CHECK="1",
        SMF_AZURE_RETRY_TOTAL="0",
    )
    proc = _plan(config, repo, env, *(["--json"] if as_json else []))
    _assert_one_clear_error(proc, "no Azure credentials found", "AZURE_CLIENT_ID", as_json=as_json)


@pytest.fixture(scope="module")
def fake_vault() -> Iterator[object]:
    from tests.fakes.azure_key_vault import FakeKeyVault

    vault = FakeKeyVault().start()
    yield vault
    vault.stop()


def test_clean_env_has_no_cloud_credentials(tmp_path: Path) -> None:
    """The cases above prove something only if nothing in their environment is a credential."""
    env = _clean_env(tmp_path)
    assert not any(k.startswith(("AWS_ACCESS", "AWS_SECRET", "AWS_SESSION", "AZURE_CLIENT")) for k in env)
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in env
    assert not any(Path(env["HOME"]).iterdir())
    assert os.environ.get("PATH") is not None
