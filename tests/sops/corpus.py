"""Plaintext corpus for the sops round-trip tests: every format, type and encryption rule."""

from __future__ import annotations

import os

DOTENV = (
    "# leading comment\n"
    "DB_PASSWORD=s3cr3t-p@ss=word\n"
    "EMPTY=\n"
    'QUOTED="with quotes"\n'
    "SINGLE='single'\n"
    "MULTI=line1\\nline2\\nline3\n"
    "UNICODE=ünïcødé ✓ 🎉\n"
    "#another comment with = sign\n"
    "SPACES=  leading and trailing  \n"
    "PUBLIC_unencrypted=visible value\n"
    "HASH=value # not a comment\n"
)

YAML = """\
# top comment
app:
  name: demo
  # comment inside a map
  port: 8080
  ratio: 0.75
  big: 1e20
  small: 1.5e-7
  neg: -42
  hex: 0x1F
  octal: 0o17
  enabled: true
  disabled: false
  yes_string: yes
  off_string: off
  nothing: null
  tilde: ~
  empty: ""
  date: 2024-01-02
  stamp: 2024-01-02T10:20:30.123456789+02:00
  spaced: 2001-12-14 21:59:43.10
  quoted_num: "123"
  quoted_bool: "true"
  colon: "a: b"
  dash: "- x"
  hash: "#x"
  at: "@handle"
  lead: " leading space"
  tab: "a\\tb"
  unicode: "ünï €"
  emoji: "🎉 party"
  multi: |
    line one
    line two
  folded: >
    folded text
    continues here
  keep: |+
    kept

  strip: |-
    stripped
list:
  - a
  # list comment
  - 2
  - 3.5
  - true
  - {k: v, n: 1}
  - [x, y]
  - ""
  # trailing list comment
nested:
  deep:
    deeper:
      key: value
    other: [1, 2, 3]
  empty_map: {}
  empty_list: []
  # foot of nested
plain_unencrypted: 1e20
date_unencrypted: 2024-01-02
map_unencrypted:
  inner: yes
  num: 0x10
  list: [1, 2.50, "s"]
anchors:
  base: &base
    a: 1
    b: two
  copy: *base
"key with spaces": v
"quoted: key": v2
"""

YAML_MULTI = """\
# doc one
first: 1
secret: alpha
---
# doc two
second: [a, b]
nested:
  x: y
---
third: true
list_unencrypted: [1, 2]
"""

JSON = """\
{
  "name": "demo",
  "port": 8080,
  "ratio": 0.75,
  "big": 12345678901234567890,
  "exp": 1e20,
  "tiny": 1.5e-7,
  "neg": -3,
  "enabled": true,
  "nothing": null,
  "empty": "",
  "unicode": "\\u00fcn\\u00ef \\u20ac \\ud83c\\udf89",
  "escapes": "tab\\tnl\\nquote\\"back\\\\slash<>&",
  "list": [1, "two", 3.5, false, null, {"k": "v"}, [1, 2], []],
  "obj": {"a": {"b": {"c": "deep"}}, "e": {}},
  "plain_unencrypted": {"n": 7, "s": "x", "f": 0.1}
}
"""

INI = """\
top = 1
; top comment
[database]
; section comment
user = admin
# key comment
password = p@ss=word
quoted = "with spaces "
empty =
unicode = ünï €
url = https://example.com/path?q=1
[other]
x_unencrypted = 5
name = value
"""

BINARY = os.urandom(700) + bytes(range(256)) + "ünïcødé\n".encode()
TEXT_BINARY = "plain text file\nwith ünïcode ✓\nand no trailing newline"

RULES_YAML = """\
data:
  password: hunter2hunter2
  token: abcdef123456
metadata:
  name: app
  labels:
    tier: backend
stringData:
  api: key-value-123
public_key: ssh-ed25519 AAAA
# sops:enc
commented: secret-by-comment
# sops:plain
uncommented: visible-by-comment
other: plain-or-not
"""

COMMENT_RULES_YAML = """\
list:
  - a
  # sops:enc
  - secret-item
  - b
  # sops:plain
  - visible
map:
  # sops:enc
  k: v
  j: w
"""

COMMENTS_YAML = """\
# head 1
# head 2
a: 1
# before list
l:
  # first in list
  - x
  - k: v
    # inside item map
    k2: v2
  - - nested
    # inside nested list
    - n2
m:
  # first in map
  deep:
    # deeper
    x: 1
    # foot of deep
  # foot of m
z: last
# final comment
"""

INI_SPECIAL = """\
[s]
special = `semi;colon#hash`
spaced = "  padded  "
multi = \"\"\"line1
line2\"\"\"
tick = \"\"\"has `tick`\"\"\"
eq = a=b:c
x_unencrypted = `a#b;c`
y_unencrypted = \"\"\"m1
m2\"\"\"
z_unencrypted = "  pad "
"""
