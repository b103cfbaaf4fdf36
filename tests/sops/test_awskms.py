"""AWS KMS: files encrypted by the real sops binary against moto's KMS (ThreadedMotoServer on
a loopback port; sops reaches it through AWS_ENDPOINT_URL), decrypted by us via boto3."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import yaml

from core.sops import DataKeyError, KeyRing, decrypt
from tests.sops.conftest import Sops, classify_rc

REGION = "eu-west-1"
PLAIN = "db:\n  password: kms-secret-value-1\n  user: admin\nplain_unencrypted: visible\n"


@pytest.fixture(scope="module")
def moto_env() -> Iterator[dict[str, str]]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_CONFIG_FILE": "/nonexistent-aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent-aws-credentials",
    }
    server.stop()


@pytest.fixture(scope="module")
def key_arn(moto_env: dict[str, str]) -> str:
    import boto3

    kms = boto3.client(
        "kms",
        endpoint_url=moto_env["AWS_ENDPOINT_URL"],
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106
    )
    return kms.create_key(Description="sops test")["KeyMetadata"]["Arn"]


def test_kms_yaml_with_context(sops: Sops, moto_env: dict[str, str], key_arn: str) -> None:
    data = sops.encrypt(
        "k.yaml", PLAIN, args=["--kms", key_arn, "--encryption-context", "app:shop,env:dev"], env=moto_env
    )
    assert b"arn: " + key_arn.encode() in data and b"app: shop" in data
    theirs = sops.decrypt("k.yaml", data, env=moto_env)
    assert theirs.rc == 0
    ring = KeyRing(env=moto_env)
    ours = decrypt(data, "yaml", path="k.yaml", keyring=ring)
    assert yaml.safe_load(ours) == yaml.safe_load(theirs.out)
    # the data key is unwrapped once however often the file is decrypted in this sync
    for _ in range(3):
        decrypt(data, "yaml", path="k.yaml", keyring=ring)
    assert ring.unwrap_calls == 1


def test_kms_dotenv_with_role(sops: Sops, moto_env: dict[str, str], key_arn: str) -> None:
    role = "arn:aws:iam::123456789012:role/sops-decrypt"
    data = sops.encrypt(
        "k.env", "A=kms-secret-value-2\nB=x\n", args=["--kms", f"{key_arn}+{role}"], env=moto_env
    )
    assert b"sops_kms__list_0__map_role=" + role.encode() in data
    theirs = sops.decrypt("k.env", data, env=moto_env)
    assert theirs.rc == 0
    assert decrypt(data, "dotenv", path="k.env", keyring=KeyRing(env=moto_env)) == theirs.out


def test_kms_wrong_context_fails_like_sops(sops: Sops, moto_env: dict[str, str], key_arn: str) -> None:
    data = sops.encrypt(
        "c.yaml", PLAIN, args=["--kms", key_arn, "--encryption-context", "app:shop"], env=moto_env
    )
    tampered = data.replace(b"app: shop", b"app: evil")
    theirs = sops.decrypt("c.yaml", tampered, env=moto_env)
    assert classify_rc(theirs.rc) == "error" and theirs.rc == 128
    with pytest.raises(DataKeyError) as ei:
        decrypt(tampered, "yaml", path="c.yaml", keyring=KeyRing(env=moto_env))
    assert key_arn in str(ei.value) and "c.yaml" in str(ei.value)


def test_kms_and_age_in_one_group(sops: Sops, moto_env: dict[str, str], key_arn: str, age_keys) -> None:
    """Default order tries age first; KMS is the fallback when no age identity is given."""
    data = sops.encrypt("m.yaml", PLAIN, recipients=[age_keys[0]], args=["--kms", key_arn], env=moto_env)
    ring_age = KeyRing(age_identities=[age_keys[0].secret], env={})  # no AWS config at all
    assert b"kms-secret-value-1" in decrypt(data, "yaml", path="m.yaml", keyring=ring_age)
    ring_kms = KeyRing(env=moto_env)
    assert b"kms-secret-value-1" in decrypt(data, "yaml", path="m.yaml", keyring=ring_kms)
