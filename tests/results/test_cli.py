"""Issue #14 item 5: the CLI's progress display, grouped warnings, --version, exit codes and
--output markdown.

Progress is checked on a real pseudo-terminal (the CLI runs as a child process whose stderr
is a pty) and its absence with --quiet and when stderr is a pipe. No timing is asserted.
"""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from core import __version__
from core.cli import EXIT_USAGE, main
from tests.core.conftest import FILES, SECRETS, make_repo, write_config
from tests.support.leakcheck import LeakCheck

ROOT = Path(__file__).resolve().parents[2]
N = 1000
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")


def big_repo(root: Path) -> Path:
    """1,000 services, each with one config key and one (unencrypted) secrets file."""
    files = {}
    for i in range(N):
        base = f"microservices/svc{i:04d}/deployment-configuration/profiles/dev"
        files[f"{base}/application.properties"] = f"server.port={8000 + i}\n"
        files[f"{base}/application.secrets.env"] = f"TOKEN=svc-token-{i:04d}-xyz\n"
    return make_repo(root, files)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("big")
    return big_repo(tmp / "repo"), tmp


def run_cli(args: list[str], *, tty: bool) -> tuple[int, str, str]:
    """Run `python -m core ARGS` with stdout piped and stderr on a pty (tty) or a pipe."""
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)
    env["SMF_LOCAL_STORE_KEY"] = os.environ["SMF_LOCAL_STORE_KEY"]
    if not tty:
        proc = subprocess.run([sys.executable, "-m", "core", *args], capture_output=True, text=True,
                              cwd=ROOT, env=env)  # fmt: skip
        return proc.returncode, proc.stdout, proc.stderr
    master, slave = pty.openpty()
    stdout = tempfile.TemporaryFile()  # a pipe could fill up while only the pty is read
    proc = subprocess.Popen([sys.executable, "-m", "core", *args], stdout=stdout,
                            stderr=slave, stdin=subprocess.DEVNULL, cwd=ROOT, env=env)  # fmt: skip
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    rc = proc.wait()
    os.close(master)
    stdout.seek(0)
    out = stdout.read().decode()
    stdout.close()
    return rc, out, ANSI.sub("\n", b"".join(chunks).decode(errors="replace"))


def test_apply_on_1000_services_shows_progress_on_a_terminal(big, tmp_path: Path) -> None:
    repo, tmp = big
    cfg = str(write_config(tmp_path))
    rc, out, err = run_cli(["apply", "--config", cfg, "--source", str(repo)], tty=True)
    assert rc == 0, err
    assert "example-dev: services" in err and f"{N}/{N}" in err
    assert "local-configs: apply" in err and "local-secrets: apply" in err
    # Repeated warnings are grouped on stderr, never on stdout.
    assert f"{N:,} files: secrets file is not SOPS-encrypted: microservices/svc0000/" in err
    assert f"and {N - 3:,} more" in err and err.count("not SOPS-encrypted") == 1
    assert "warning" not in out and "Summary (done): 2000 created" in out
    LeakCheck([f"svc-token-{i:04d}-xyz" for i in range(N)]).scan(out, err, where="cli")


def test_quiet_and_piped_runs_show_no_progress(big, tmp_path: Path) -> None:
    repo, tmp = big
    cfg = str(write_config(tmp_path))
    rc, out, err = run_cli(["plan", "--config", cfg, "--source", str(repo), "--quiet"], tty=True)
    assert rc == 0 and "example-dev: services" not in err and f"{N}/{N}" not in err
    assert err.strip().startswith("warning:") and len(err.strip().splitlines()) == 1
    rc, out, err = run_cli(["apply", "--config", cfg, "--source", str(repo)], tty=False)
    assert rc == 0 and "\x1b" not in err and f"{N}/{N}" not in err
    assert err.strip().splitlines() == [err.strip().splitlines()[0]]  # the grouped warning only
    assert "2000 created" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert (
        exc.value.code == 0 and capsys.readouterr().out.strip() == f"secret-manager-functions {__version__}"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["plan"],
        ["plan", "--config", "x.yaml", "--no-such-flag"],
        ["nonsense"],
        [],
        ["plan", "--output", "xml"],
    ],
)
def test_usage_errors_do_not_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == EXIT_USAGE != 2
    assert "usage:" in capsys.readouterr().err


def test_usage_error_exit_code_as_a_process() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "core", "plan", "--exit-code"], capture_output=True, cwd=ROOT
    )
    assert proc.returncode == 64


def test_output_markdown_is_the_check_run_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = make_repo(tmp_path / "repo", FILES)
    cfg = str(write_config(tmp_path))
    rc = main(["plan", "--config", cfg, "--source", str(repo), "--output", "markdown", "--exit-code"])
    out = capsys.readouterr().out
    assert rc == 2
    rows = [ln for ln in out.splitlines() if ln.startswith("| local-")]
    assert len(rows) == 9
    assert (
        "| local-secrets | create | `orders/dev/DB_PASSWORD` | "
        "`microservices/orders/deployment-configuration/profiles/dev/application.secrets.env:DB_PASSWORD` | |"
    ) in rows
    assert out.startswith("**Plan** for the working tree: **ok** (9 create, 0 unchanged).")
    LeakCheck(SECRETS).scan(out, where="markdown")
