"""The quick-start demo: a signed push webhook → fetch → decrypt → route → store → report.

1. Turns examples/repo into a real Git repository (with dulwich: no git binary needed).
2. Starts the local webhook endpoint, `python -m core serve`, on a free loopback port.
3. Sends it a push event signed the way GitHub signs it (X-Hub-Signature-256).
   The server verifies the signature, fetches the pushed commit in memory, decrypts the SOPS
   files with the example age key (examples/age-key.txt — example only), routes secrets and
   configs and writes them to the embedded SQLite store, then answers with the report.
4. Commits a one-value change and pushes again: exactly one update.
5. Replays the first delivery: answered as a duplicate, nothing written.

Everything printed is names, actions and fingerprints; never a value.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

ZERO = "0" * 40
AUTHOR = b"Demo User <demo@example.com>"


def make_repo(dest: Path) -> str:
    from dulwich import porcelain

    shutil.copytree(HERE / "repo", dest)
    repo = porcelain.init(str(dest))
    repo.refs.set_symbolic_ref(b"HEAD", b"refs/heads/main")
    return commit_all(repo, "Add example services")


def commit_all(repo, message: str) -> str:  # type: ignore[no-untyped-def]
    from dulwich import porcelain

    root = Path(repo.path)
    paths = [str(p) for p in root.rglob("*") if p.is_file() and ".git" not in p.relative_to(root).parts]
    porcelain.add(repo, paths=paths)
    return porcelain.commit(repo, message=message.encode(), author=AUTHOR, committer=AUTHOR).decode()


def push_payload(url: str, before: str, after: str, added: list[str], modified: list[str]) -> bytes:
    payload = {
        "ref": "refs/heads/main",
        "before": before,
        "after": after,
        "created": before == ZERO,
        "deleted": False,
        "forced": False,
        "repository": {
            "full_name": "example/demo",
            "clone_url": url,
            "html_url": url,
            "default_branch": "main",
        },
        "head_commit": {"id": after},
        "commits": [{"id": after, "added": added, "modified": modified, "removed": []}],
    }
    return json.dumps(payload).encode()


def post(url: str, body: bytes, secret: str, delivery: str) -> tuple[int, dict]:
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    req = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": signature,
            "User-Agent": "GitHub-Hookshot/demo",
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - loopback only
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def show(title: str, status: int, reply: dict) -> dict:
    """Print the server's answer the way `python -m core plan` prints; return the summary."""
    from core.report import Report

    print(f"\n=== {title}: HTTP {status} {reply.get('status', '')} ===")
    summary: dict = {}
    results = reply.get("results") or []
    if not results:
        print(f"  {reply.get('reason', '')}")
    for result in results:
        print(
            f"fetched {result.get('ref')} @ {result.get('after', '')[:12]}: {result.get('fetch')}; "
            f"changed paths: {result.get('changed_paths') or 'all (new branch)'}"
        )
        if "report" in result:
            report = Report.from_dict(result["report"])
            print(report.render())
            summary = report.summary
    return summary


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="smf-demo-"))
    repo_dir = work / "repo"
    first = make_repo(repo_dir)
    url = repo_dir.as_uri()
    config = (HERE / "secret-manager-config.yaml").read_text()
    config = config.replace("file:///placeholder/replaced-by-the-demo", url)
    config = config.replace(".smf/example-store.db", str(work / "store.db"))
    (work / "config.yaml").write_text(config)

    secret = base64.b64encode(os.urandom(24)).decode()
    env = dict(
        os.environ, WEBHOOK_SECRET=secret, SOPS_AGE_KEY_FILE=str(HERE / "age-key.txt"), PYTHONPATH=str(ROOT)
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "core", "serve", "--config", str(work / "config.yaml"), "--port", "0"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stderr.readline() if server.stderr else ""
        if "listening on" not in line:
            print(f"server did not start: {line}{server.stderr.read() if server.stderr else ''}")
            return 1
        endpoint = line.split("listening on ", 1)[1].split(" ", 1)[0]
        print(f"webhook endpoint: {endpoint}\nrepository: {url}\nstore: {work / 'store.db'}")

        files = [str(p.relative_to(repo_dir)) for p in repo_dir.rglob("application.*")]
        delivery = str(uuid.uuid4())
        body = push_payload(url, ZERO, first, files, [])
        status, reply = post(endpoint, body, secret, delivery)
        summary = show("push 1: a new branch with two services", status, reply)
        ok = status == 200 and summary.get("create") == 14

        from dulwich.repo import Repo

        cfg = (
            repo_dir / "microservices/payments/deployment-configuration/profiles/dev/application.config.yaml"
        )
        cfg.write_text(cfg.read_text().replace("currency: EUR", "currency: USD"))
        second = commit_all(Repo(str(repo_dir)), "Payments: switch currency")
        body = push_payload(url, first, second, [], [str(cfg.relative_to(repo_dir))])
        status, reply = post(endpoint, body, secret, str(uuid.uuid4()))
        summary = show("push 2: one value changed", status, reply)
        ok = ok and status == 200 and summary.get("update") == 1 and summary.get("create") == 0

        status, reply = post(endpoint, push_payload(url, ZERO, first, files, []), secret, delivery)
        show("push 1 delivered again", status, reply)
        ok = ok and reply.get("status") == "duplicate"

        bad = post(endpoint, body, "not-the-secret", str(uuid.uuid4()))
        print(f"\n=== a push signed with the wrong secret: HTTP {bad[0]} {bad[1].get('reason', '')} ===")
        ok = ok and bad[0] in (401, 403)

        from core.stores.local import LocalConfigStore, LocalSecretStore

        print("\n=== the local store now holds (names only; values are encrypted at rest) ===")
        for store in (LocalSecretStore(str(work / "store.db")), LocalConfigStore(str(work / "store.db"))):
            for name in store.names():
                print(f"  {store.kind:<14} {name}  (versions: {store.versions(name)})")
        print("\ndemo", "OK" if ok else "FAILED")
        return 0 if ok else 1
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    sys.exit(main())
