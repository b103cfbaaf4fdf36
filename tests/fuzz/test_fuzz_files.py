"""Fuzz targets for everything a sync reads from Git: dotenv, .properties, YAML, JSON, SOPS
files (random bytes and mangled metadata) and SecretManagerConfig documents.

Each target checks the harness property (tests/fuzz/harness.py): a result or a SyncError
naming the file, within the bound. The last target runs whole syncs: service `b` gets the
hostile file, service `a` must sync, and nothing may be written for `b` when it fails.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from core.config import parse_config_text
from core.errors import ConfigError
from core.parsers import decode_file, parse_file
from core.sops import KeyRing, SopsError, decrypt
from core.sops.formats import binary, dotenv, ini, json_format, yaml_format
from core.stores.local import LocalConfigStore, LocalSecretStore
from tests.fuzz import strategies as fs
from tests.fuzz.harness import bounded, examples, expect_result_or_error
from tests.support.two_services import assert_fails_closed, run_two_services


def _parse(path: str, data: bytes) -> object:
    text, _ = decode_file(path, data)
    return parse_file(path, text)


@settings(max_examples=examples(60))
@given(text=fs.dotenv_docs())
def test_dotenv(text: str) -> None:
    with bounded():
        expect_result_or_error(
            lambda: _parse("s/application.secrets.env", text.encode("utf-8", "surrogatepass")),
            path="s/application.secrets.env",
        )


@settings(max_examples=examples(60))
@given(data=fs.properties_docs())
def test_properties(data: bytes) -> None:
    with bounded():
        expect_result_or_error(
            lambda: _parse("s/application.properties", data), path="s/application.properties"
        )


@settings(max_examples=examples(60))
@given(text=fs.yaml_docs())
def test_yaml(text: str) -> None:
    with bounded():
        expect_result_or_error(
            lambda: _parse("s/application.config.yaml", text.encode("utf-8", "surrogatepass")),
            path="s/application.config.yaml",
        )


@settings(max_examples=examples(60))
@given(text=fs.json_docs())
def test_json(text: str) -> None:
    with bounded():
        expect_result_or_error(
            lambda: _parse("s/application.config.json", text.encode("utf-8", "surrogatepass")),
            path="s/application.config.json",
        )


@settings(max_examples=examples(40))
@given(
    loader=st.sampled_from([dotenv.load, ini.load, json_format.load, yaml_format.load, binary.load]),
    data=st.one_of(
        st.binary(max_size=300),
        fs.yaml_docs().map(str.encode),
        fs.json_docs().map(str.encode),
        fs.dotenv_docs().map(str.encode),
    ),
)
def test_sops_format_loaders(loader: object, data: bytes) -> None:
    """The SOPS loaders read attacker-controlled bytes before any MAC check."""
    with bounded():
        expect_result_or_error(lambda: loader(data), SopsError)  # type: ignore[operator]


@settings(max_examples=examples(60))
@given(fmt=st.sampled_from(["yaml", "json", "dotenv"]), block=fs.metadata_blocks())
def test_sops_metadata(fmt: str, block: tuple[dict, list[str]]) -> None:
    """Every field removed, retyped or duplicated: a SopsError, before any key is needed."""
    md, duplicated = block
    data = fs.render_sops_file(fmt, md, duplicated)
    name = {"yaml": "f.yaml", "json": "f.json", "dotenv": "f.env"}[fmt]
    with bounded():
        result = expect_result_or_error(
            lambda: decrypt(data, fmt, path=name, keyring=KeyRing(age_identities=[], env={}), strict=True),
            SopsError,
            path=name,
        )
    assert result is None  # nothing decrypts without a key


@settings(max_examples=examples(60))
@given(text=fs.config_docs())
def test_config_documents(text: str) -> None:
    with bounded():
        expect_result_or_error(lambda: parse_config_text(text, "cfg.yaml"), ConfigError, path="cfg.yaml")


_HOSTILE_FILES = st.one_of(
    st.tuples(
        st.just("application.secrets.env"), fs.dotenv_docs().map(lambda t: t.encode("utf-8", "surrogatepass"))
    ),
    st.tuples(st.just("application.properties"), fs.properties_docs()),
    st.tuples(
        st.just("application.config.yaml"), fs.yaml_docs().map(lambda t: t.encode("utf-8", "surrogatepass"))
    ),
    st.tuples(
        st.just("application.secrets.json"), fs.json_docs().map(lambda t: t.encode("utf-8", "surrogatepass"))
    ),
    st.tuples(
        st.sampled_from(["application.secrets.yaml", "application.secrets.json", "application.secrets.env"]),
        fs.metadata_blocks(),
    ).map(
        lambda t: (
            t[0],
            fs.render_sops_file(
                {"yaml": "yaml", "json": "json", "env": "dotenv"}[t[0].rsplit(".", 1)[1]], *t[1]
            ),
        )
    ),
)


@settings(max_examples=examples(25))
@given(case=_HOSTILE_FILES)
def test_one_hostile_file_fails_only_its_service(case: tuple[str, bytes]) -> None:
    name, data = case
    with bounded(30):
        out = run_two_services(name, data)
    assert all(isinstance(e, dict) and e.get("message") for e in out.report.errors)
    if out.b_failed:
        assert_fails_closed(out, name)
    else:
        assert out.a_names == out.a_expected
        # a synced file never carried a ciphertext into a name (values are checked below)
        assert all("ENC[AES256_GCM," not in n for n in out.b_names)
        for store in (
            LocalSecretStore(str(out.root / "store.db")),
            LocalConfigStore(str(out.root / "store.db")),
        ):
            assert all("ENC[AES256_GCM," not in (store.get_value(n) or "") for n in out.b_names)
