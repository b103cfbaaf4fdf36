"""Hypothesis strategies for hostile files: random text plus structure-aware generators that
reach the interesting parts (anchors, aliases, merge keys, tags, complex keys, deep nesting,
long integers, escapes, sops metadata) far more often than random bytes would."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

ENC = "ENC[AES256_GCM,data:3q2+7w==,iv:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:str]"

# Small alphabet of characters that matter to the formats, plus anything.
_SPECIAL = list("=:#!\\\"'`\n\r\t {}[],&*?|>-<%@.$/") + [
    "\\u00e9",
    "\\n",
    "${X}",
    "<<",
    "..",
    "//",
    "\x00",
    "\ufeff",
]
fragments = st.one_of(
    st.sampled_from(_SPECIAL),
    st.text(min_size=1, max_size=8),
    st.sampled_from(
        ["sops", "sops_mac", "mac", "ENC[", ENC, "export ", "true", "null", "0x1F", "1e20", "9" * 1200]
    ),
)
hostile_text = st.lists(fragments, max_size=40).map("".join)

key = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_.]{0,12}", fullmatch=True),
    st.sampled_from(
        ["../x", "a//b", "/lead", "trail/", "sops", "sops.mac", "sops_lastmodified", "<<", "", "é"]
    ),
)
scalar_text = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        ["yes", "no", "~", "1e20", "0o17", "2024-01-02", "9" * 1200, ENC, "&a", "*a", "!!binary x"]
    ),
)


def dotenv_docs() -> st.SearchStrategy[str]:
    quote = st.sampled_from(["", "'", '"'])
    line = st.tuples(
        st.sampled_from(["", "export ", "# "]), key, st.sampled_from(["=", " = ", ""]), quote, scalar_text
    ).map(lambda t: f"{t[0]}{t[1]}{t[2]}{t[3]}{t[4]}{t[3]}")
    return st.one_of(hostile_text, st.lists(line, max_size=12).map("\n".join))


def properties_docs() -> st.SearchStrategy[bytes]:
    line = st.tuples(key, st.sampled_from(["=", ":", " ", " = ", "\\\n "]), scalar_text).map(
        lambda t: "".join(t)
    )
    text = st.one_of(hostile_text, st.lists(line, max_size=12).map("\n".join))
    return st.one_of(
        text.map(lambda t: t.encode("utf-8", "surrogatepass")),
        text.map(lambda t: t.encode("iso-8859-1", "replace")),
        st.binary(max_size=200),
    )


def _yaml_node(depth: int) -> st.SearchStrategy[str]:
    leaf = st.one_of(
        scalar_text.map(json.dumps),
        st.sampled_from(
            [
                "x",
                "1",
                "true",
                "null",
                "*a",
                "*b",
                "&a x",
                "!!str 5",
                "!!python/object/apply:os.system [x]",
                "9" * 1200,
            ]
        ),
    )
    if depth <= 0:
        return leaf
    child = _yaml_node(depth - 1)
    return st.one_of(
        leaf,
        st.lists(child, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.lists(
            st.tuples(st.one_of(key.map(json.dumps), st.just("<<"), st.just("? [x, y]"), child), child),
            max_size=4,
        ).map(lambda kv: "{" + ", ".join(f"{k}: {v}" for k, v in kv) + "}"),
        st.tuples(st.sampled_from(["&a ", "&b ", "!!merge ", ""]), child).map("".join),
    )


def yaml_docs() -> st.SearchStrategy[str]:
    deep = st.integers(min_value=1, max_value=3000).map(lambda n: "a: " + "[" * n + "]" * n)
    block_deep = st.integers(min_value=60, max_value=400).map(
        lambda n: "".join(" " * i + "k:\n" for i in range(n))
    )
    bomb = st.integers(min_value=2, max_value=9).map(
        lambda n: "".join(
            f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}" if i else "x"] * 9) + "]\n" for i in range(n)
        )
    )
    merge = st.just("d: &d {host: h, port: 1}\nsvc:\n  <<: *d\n  port: 2\n")
    top = _yaml_node(4).map(lambda body: "root: " + body)
    docs = st.lists(st.one_of(top, hostile_text), min_size=1, max_size=3).map("\n---\n".join)
    return st.one_of(docs, deep, block_deep, bomb, merge, hostile_text)


def _json_values() -> st.SearchStrategy[Any]:
    return st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10)),
        lambda children: st.one_of(
            st.lists(children, max_size=4), st.dictionaries(st.text(max_size=6), children, max_size=4)
        ),
        max_leaves=20,
    )


def json_docs() -> st.SearchStrategy[str]:
    doc = st.dictionaries(key, _json_values(), max_size=5).map(json.dumps)
    mutated = st.tuples(doc, st.integers(min_value=0, max_value=60), hostile_text).map(
        lambda t: t[0][: t[1]] + t[2] + t[0][t[1] :]
    )
    deep = st.integers(min_value=1, max_value=5000).map(lambda n: '{"a": ' + "[" * n + "]" * n + "}")
    huge = st.integers(min_value=900, max_value=6000).map(lambda n: '{"n": ' + "7" * n + "}")
    escaped = st.just('{"\\u0073ops": {"mac": 1}, "x": "\\u0045NC[AES256_GCM,data:x]"}')
    return st.one_of(doc, mutated, deep, huge, escaped)


# --- SOPS metadata --------------------------------------------------------------------------

METADATA = {
    "age": [
        {
            "recipient": "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq",
            "enc": "-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n-----END AGE ENCRYPTED FILE-----\n",
        }
    ],
    "lastmodified": "2024-01-01T00:00:00Z",
    "mac": ENC,
    "unencrypted_suffix": "_unencrypted",
    "version": "3.11.0",
}
_RETYPES = [None, 0, 1.5, True, "x", [], [1], {}, {"a": [1]}, "9" * 1200, [{"recipient": 1}], ENC]


@st.composite
def metadata_blocks(draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    """A sops block with fields removed, retyped or added (and which to duplicate)."""
    md: dict[str, Any] = json.loads(json.dumps(METADATA))
    for name in list(md):
        action = draw(st.sampled_from(["keep", "keep", "remove", "retype"]))
        if action == "remove":
            del md[name]
        elif action == "retype":
            md[name] = draw(st.sampled_from(_RETYPES))
    for extra in draw(
        st.lists(
            st.sampled_from(
                ["key_groups", "shamir_threshold", "mac_only_encrypted", "kms", "pgp", "encrypted_regex"]
            ),
            max_size=3,
        )
    ):
        md[extra] = draw(st.sampled_from(_RETYPES))
    duplicated = draw(st.lists(st.sampled_from(sorted(METADATA)), max_size=2))
    return md, duplicated


def render_sops_file(fmt: str, md: Any, duplicated: list[str]) -> bytes:
    """A file in `fmt` with one ENC value and the (mangled) metadata block `md`."""
    if fmt == "json":
        text = json.dumps({"db": ENC, "sops": md})
        for name in duplicated:
            if isinstance(md, dict) and name in md:
                text = text.replace('"sops": {', f'"sops": {{"{name}": {json.dumps(md[name])}, ', 1)
        return text.encode()
    if fmt == "yaml":
        body = json.dumps(md)  # JSON is YAML; flow style keeps duplicates easy to splice in
        for name in duplicated:
            if isinstance(md, dict) and name in md:
                body = body.replace("{", f'{{"{name}": {json.dumps(md[name])}, ', 1)
        return f"db: {ENC}\nsops: {body}\n".encode()
    lines = [f"DB={ENC}"]
    if isinstance(md, dict):
        for name, value in md.items():
            for _ in range(1 + duplicated.count(name)):
                if isinstance(value, list):
                    for i, item in enumerate(value):
                        if isinstance(item, dict):
                            lines += [f"sops_{name}__list_{i}__map_{k}={v}" for k, v in item.items()]
                        else:
                            lines.append(f"sops_{name}__list_{i}={item}")
                else:
                    lines.append(f"sops_{name}={value}")
    return ("\n".join(lines) + "\n").encode()


# --- config documents ------------------------------------------------------------------------

CONFIG = {
    "apiVersion": "secret-manager.microscaler.io/v1alpha1",
    "kind": "SecretManagerConfig",
    "metadata": {"name": "demo"},
    "spec": {
        "provider": {"type": "local", "local": {"path": "/tmp/x.db"}},
        "secrets": {"environment": "dev", "basePath": "microservices"},
        "configs": {"enabled": True},
        "sync": {"prune": False, "maxDeleteFraction": 0.5},
    },
}


@st.composite
def config_docs(draw: st.DrawFn) -> str:
    doc: Any = json.loads(json.dumps(CONFIG))

    def mutate(node: Any) -> None:
        if isinstance(node, dict):
            for k in list(node):
                action = draw(st.sampled_from(["keep", "keep", "keep", "remove", "retype", "descend"]))
                if action == "remove":
                    del node[k]
                elif action == "retype":
                    node[k] = draw(st.sampled_from(_RETYPES + ["oops", {"x": {"y": "z"}}]))
                else:
                    mutate(node[k])

    mutate(doc)
    text = json.dumps(doc, indent=2)
    tail = draw(
        st.sampled_from(["", "\n", '\n  "spec": 1', "\n&a [*a]", "\n!!python/object/apply:os.system [x]"])
    )
    return draw(
        st.one_of(
            st.just(text + tail), yaml_docs(), st.just(text.replace('"dev"', '"dev", "environment": "prod"'))
        )
    )
