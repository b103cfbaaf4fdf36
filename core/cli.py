"""Command line: `python -m core plan|apply|migrate|decrypt|serve`.

    python -m core plan  --config FILE [--source PATH_OR_GIT_URL] [--ref REF] [--json] [--exit-code]
    python -m core apply --config FILE [--source ...] [--ref ...] [--prune] [--json]
    python -m core migrate --config FILE [--source ...] [--ref ...] [--apply] [--json]

Exit codes (terraform's ``-detailed-exitcode`` convention): 0 ok; 1 when the run failed or
was partial (an error, a conflict, a guard's refusal); with ``--exit-code``, 2 when the plan
has changes; 64 (EX_USAGE) for a usage error, so it is never mistaken for "has changes".
Output never contains a value; progress and warnings go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from core.errors import SyncError
from core.source import LocalDirSource, SourceTree

#: sysexits.h EX_USAGE: argparse's own 2 would read as "the plan has changes".
EXIT_USAGE = 64


class _Parser(argparse.ArgumentParser):
    """argparse, exiting with EX_USAGE (64) instead of 2 on a usage error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def resolve_source(source: str | None, ref: str | None, configs: list | None = None) -> SourceTree:
    """A local directory, or a Git URL (or a local repository with --ref) fetched in memory."""
    if source is None:
        urls = {c.source.url for c in configs or [] if c.source.url}
        if len(urls) == 1:
            source = urls.pop()
            ref = ref or next((c.source.branch for c in configs or [] if c.source.branch), None)
        else:
            source = "."
    from core.git_url import is_remote_url, normalize_repo_url

    if not is_remote_url(source) and ref is None:
        return LocalDirSource(source)
    from core.intake import source_for

    # Credentials: GIT_TOKEN, else the matching config's sourceRef.tokenSecret (its store).
    key = normalize_repo_url(source)
    match = next((c for c in configs or [] if c.source.url and normalize_repo_url(c.source.url) == key), None)
    return source_for(source, ref or "HEAD", config=match)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="file with SecretManagerConfig documents")
    p.add_argument("--source", help="repository: a directory or a Git URL (default: sourceRef.url or .)")
    p.add_argument("--ref", help="branch, tag or commit to fetch (Git sources)")
    p.add_argument("--json", action="store_true", help="print one JSON object (same as --output json)")
    p.add_argument(
        "--output",
        choices=("text", "json", "markdown"),
        help="text (default), json, or markdown: the table a check run shows, for any CI to post",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display on stderr")
    p.add_argument(
        "--prune",
        action="store_true",
        default=None,
        help="delete managed entries no longer in Git (overrides sync.prune)",
    )
    p.add_argument("--drift", action="store_true", help="read store values to find hand edits")
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="read every service, even those whose files are unchanged since the last run "
        "(the desired-state cache: SMF_DESIRED_CACHE; README, Desired-state cache)",
    )
    p.add_argument(
        "--allow-mass-delete", action="store_true", help="lift the sync.maxDeleteFraction guard for this run"
    )
    p.add_argument("--show-unchanged", action="store_true", help="list unchanged entries too")
    p.add_argument("-v", "--verbose", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    from core import __version__

    parser = _Parser(
        prog="python -m core", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"secret-manager-functions {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    plan = sub.add_parser("plan", help="show what apply would change")
    _add_common(plan)
    plan.add_argument("--exit-code", action="store_true", help="exit 2 when there are changes")
    apply = sub.add_parser("apply", help="sync the stores with the repository")
    _add_common(apply)
    mig = sub.add_parser("migrate", help="adopt what the Secret Manager Controller wrote (docs/migration.md)")
    mig.add_argument("--config", required=True, help="file with SecretManagerConfig documents")
    mig.add_argument("--source", help="repository: a directory or a Git URL (default: sourceRef.url or .)")
    mig.add_argument("--ref", help="branch, tag or commit to fetch (Git sources)")
    mig.add_argument("--apply", action="store_true", help="adopt (default: only show what would be adopted)")
    mig.add_argument("--json", action="store_true", help="print one JSON object")
    mig.add_argument("-v", "--verbose", action="store_true")
    dec = sub.add_parser("decrypt", help="decrypt a SOPS file like `sops -d`")
    dec.add_argument("file")
    dec.add_argument("--output-type", choices=("dotenv", "yaml", "json", "ini", "binary"))
    serve = sub.add_parser("serve", help="run a local webhook endpoint (POST /webhook)")
    serve.add_argument("--config", required=True)
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--host", default="127.0.0.1")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command == "decrypt":
        from core.sops.cli import main as decrypt_main

        argv2 = [args.file] + (["--output-type", args.output_type] if args.output_type else [])
        return decrypt_main(argv2)
    if args.command == "serve":
        from core.serve import main as serve_main

        return serve_main(config=args.config, host=args.host, port=args.port)
    if args.command == "migrate":
        return _migrate(args)
    return _plan_or_apply(args, apply=args.command == "apply")


def _migrate(args: argparse.Namespace) -> int:
    from core.config import load_config_file
    from core.migrate import migrate

    try:
        configs = load_config_file(args.config)
        report = migrate(configs, resolve_source(args.source, args.ref, configs), apply=args.apply)
    except SyncError as exc:
        if args.json:
            print(json.dumps({"commit": None, "adoptions": [], "summary": {}, "errors": [exc.to_dict()]}))
        else:
            print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.render())
    return 1 if report.run.errors else 0


def _plan_or_apply(args: argparse.Namespace, *, apply: bool) -> int:
    from core.config import load_config_file
    from core.results.progress import progress_for
    from core.sync import run

    output = "json" if args.json else (args.output or "text")
    cache = None
    if not args.no_cache and not args.drift:
        from core.desired_cache import DesiredCache, default_path

        path = default_path()
        cache = DesiredCache(path) if path else None
    try:
        configs = load_config_file(args.config)
        source = resolve_source(args.source, args.ref, configs)
        with progress_for(quiet=args.quiet, apply=apply) as progress:
            report = run(
                configs,
                source,
                apply=apply,
                prune=args.prune,
                drift=args.drift,
                allow_mass_delete=args.allow_mass_delete,
                store_factory=progress.wrap_factory(None),
                progress=progress,
                cache=cache,
            )
    except SyncError as exc:
        if output == "json":
            print(
                json.dumps(
                    {"commit": None, "changes": [], "summary": {}, "errors": [exc.to_dict()]}, indent=2
                )
            )
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if cache is not None:
            cache.close()
    for line in report.grouped_warnings():
        print(f"warning: {line}", file=sys.stderr)
    for line in report.error_lines():  # stdout may be JSON or a table: errors also go here
        print(f"error: {line}", file=sys.stderr)
    if output == "json":
        print(json.dumps(report.to_dict(), indent=2))
    elif output == "markdown":
        from core.results.markdown import summary_table

        print(summary_table(report), end="")
    else:
        print(report.render(show_unchanged=args.show_unchanged, warnings=False, errors=False))
    if report.outcome != "ok":
        return 1  # failed, or partial: a conflict or a guard left entries Git asks for unapplied
    if not apply and getattr(args, "exit_code", False) and report.has_changes:
        return 2
    return 0
