"""`decrypt FILE [--output-type T]`: print what `sops -d` prints, natively."""

from __future__ import annotations

import argparse
import sys

from core.sops.api import decrypt, detect_format
from core.sops.errors import SopsError
from core.sops.keyring import KeyRing

OUTPUT_TYPES = ("dotenv", "yaml", "json", "ini", "binary")


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = parser or argparse.ArgumentParser(prog="decrypt", description="Decrypt a SOPS file natively.")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--input-type", choices=OUTPUT_TYPES, default=None)
    p.add_argument("--output-type", choices=OUTPUT_TYPES, default=None)
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    fmt = args.input_type or detect_format(args.file)
    try:
        with open(args.file, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        print(f"{args.file}: cannot read file ({exc.strerror})", file=sys.stderr)
        return 1
    out_type = args.output_type or (fmt if args.input_type is None else detect_format(args.file))
    try:
        out = decrypt(data, fmt, path=args.file, keyring=KeyRing(), output_type=out_type)
    except SopsError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    sys.stdout.buffer.write(out)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
