"""Memory of a fetch whose selection holds a file over the 5 MiB limit: the same repository
(2,000 files, 100 services, 200 files selected) with and without one 100 MiB
`application.properties`, fetched and read by ours as whole processes from the same
`git daemon`, in one run, on both paths a function uses: cold (objects in memory) and warm
(the cache on disk, a fresh cache each run), and from the same repository on this machine
(a file:// URL: objects copied, not streamed).

    .venv/bin/python bench/bench_oversized_file.py [--runs 5] [--mib 100]
                                                  [--write-doc docs/benchmarks.md]

The file is refused either way (it fails its own service); what is compared is what
refusing it costs. Before the bounded reader (65a7e11) the cold path held the blob whole
and the warm path also held the whole pack and a copy of it; file:// copied the blob until
aa5e578. Benchmarks are not tests:
nothing here runs in the suite.
"""

# ruff: noqa: E402
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _measure import TABLE_HEAD, Series, compile_bytecode, machine, run_process, write_section
from bench_git_fetch import CONFIG, make_files

BIG_PATH = "services/svc000/deployment-configuration/profiles/prod/application.properties"
SCRIPT = """
import sys
sys.path.insert(0, {root!r})
from core.config import parse_config_text
from core.discover import discover
from core.errors import SyncError
from core.git_fetch import fetch_commit
cfg = parse_config_text({config!r}, "bench.yaml")[0]
with fetch_commit({url!r}, "main", cache_dir=sys.argv[1] or None) as src:
    paths = [p for svc in discover(cfg, src) for p in svc.files]
    src.prefetch(paths)
    read = refused = 0
    for p in paths:
        try:
            data = src.read(p)
        except SyncError:
            refused += 1
            continue
        if len(data) > 5 * 1024 * 1024:  # refused after reading, as sync did before 65a7e11
            refused += 1
        else:
            read += len(data)
print(read, refused)
"""


def big_file(mib: int) -> bytes:
    """Properties lines that compress about as well as real configuration."""
    line = 27
    return b"".join(
        b"key.%09d=value-%06d\n" % (i, i * 7919 % 100003) for i in range(mib * 1024 * 1024 // line)
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--mib", type=int, default=100)
    ap.add_argument("--before", help="a checkout of an earlier commit, run on the large file too")
    ap.add_argument("--before-label", default="the earlier commit", help="how the rows name it")
    ap.add_argument("--write-doc", help="replace the '## Oversized file' section of this Markdown file")
    args = ap.parse_args()
    from tests.support.git_server import GitServer

    for root in (ROOT, *([Path(args.before)] if args.before else [])):
        compile_bytecode(root)
    host = machine()
    base = Path(tempfile.mkdtemp(prefix="bench-big-"))
    (base / "srv").mkdir()
    server = GitServer(base / "srv").start()
    try:
        files = make_files(2000)
        small = server.make_repo(files)
        big = server.make_repo({**files, BIG_PATH: big_file(args.mib)})
        big_label = f"with one {args.mib} MiB file"
        roots = [("", ROOT)] + (
            [(" (before, at " + args.before_label + ")", Path(args.before))] if args.before else []
        )
        cases = [(path, label, tag, root) for tag, root in roots for path in ("cold", "warm", "file://")
                 for label in ("without", big_label)]  # fmt: skip
        series = {case: Series(f"{case[0]}: {case[1]}{case[2]}") for case in cases}
        expected: dict[str, list[bytes]] = {}
        for _ in range(args.runs):
            for (path, label, _tag, root), s in series.items():
                repo = big if label == big_label else small
                url = repo.file_url if path == "file://" else repo.url
                script = SCRIPT.format(root=str(root), config=CONFIG.replace("URL", url), url=url)
                cache = tempfile.mkdtemp(dir=base) if path == "warm" else ""
                out = s.add(run_process([sys.executable, "-c", script, cache])).stdout.split()
                if cache:
                    shutil.rmtree(cache, ignore_errors=True)
                assert out == expected.setdefault(label, out), "a run read different bytes"
        assert expected["without"][1] == b"0" and expected[big_label][1] == b"1"
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)

    lines = [
        "## Oversized file",
        "",
        f"Command: `.venv/bin/python bench/bench_oversized_file.py --runs {args.runs} --mib {args.mib}"
        + (f" --before <checkout of {args.before_label}>" if args.before else "")
        + "`. "
        f"Machine: {host}.",
        "",
        f"Ours as whole processes (`python -c`: fetch, discover, read the 200 selected files), "
        f"{args.runs} runs each, alternating; the same repository of 2,000 files with and without "
        f"one {args.mib} MiB `application.properties` among the selected files (refused: it fails "
        "its own service). Cold: objects in memory; warm: the cache on disk, fresh each run; "
        "file://: the bare repository read in place (no daemon).",
        "",
        TABLE_HEAD,
        "|---|---|---|---|---|",
        *(s.row() for s in series.values()),
        "",
    ]
    for path in ("cold", "warm", "file://"):
        without, with_big = series[(path, "without", "", ROOT)], series[(path, big_label, "", ROOT)]
        line = (f"- {path}: peak RSS {with_big.rss_mib:.1f} MiB with the {args.mib} MiB file vs "
                f"{without.rss_mib:.1f} MiB without (+{with_big.rss_mib - without.rss_mib:.1f} MiB); median "
                f"wall {with_big.median_ms:.0f} vs {without.median_ms:.0f} ms ({'its header alone is read' if path == 'file://' else 'the file still crosses the wire'})")  # fmt: skip
        if args.before:
            tag = roots[1][0]
            was, was_big = (
                series[(path, "without", tag, roots[1][1])],
                series[(path, big_label, tag, roots[1][1])],
            )
            line += (f"; before: {was_big.rss_mib:.1f} MiB with it, {was.rss_mib:.1f} MiB without, median "
                     f"{was_big.median_ms:.0f} / {was.median_ms:.0f} ms")  # fmt: skip
        lines.append(line + ".")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write_doc:
        write_section(Path(args.write_doc), "Oversized file", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
