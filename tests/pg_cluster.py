"""Throwaway PostgreSQL clusters for tests: a primary, streaming replicas,
restarts, promotion and paused replay, on ports and folders of their own,
always removed afterwards. The machine's own PostgreSQL is never touched.

    with Clusters(ports=range(55432, 55440)) as clusters:
        primary = clusters.primary()
        replica = clusters.replica_of(primary)
        primary.sql("CREATE TABLE t (x int)")
        replica.pause_replay()
        primary.restart()                       # pg_ctl restart -m fast
        replica.promote()
        engine_url = primary.url("postgres")    # postgresql+asyncpg://…

``Clusters`` owns one temporary folder and every cluster made in it; leaving
the ``with`` block stops them all (immediately: nothing in them is worth a
checkpoint) and deletes the folder, whatever happened in between. The
benches (bench/pitr_drill.py, bench/backup_restore.py) drive their clusters
with it too: one chosen port (``Clusters([port])``), their own bin folder,
and ``close(keep_folder=True)`` for their ``--keep``.

initdb refuses to run as root, so as root every server program runs as the
``postgres`` OS user (``runuser -u postgres --``); as anyone else, as that
user. ``postgres_binaries()`` says where the programs are, or why they cannot
be used: callers skip with that reason (or fail, in CI)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

# Debian's PostgreSQL 15; LANDFORM_TEST_PG_BIN names another bin folder.
DEFAULT_BIN = Path("/usr/lib/postgresql/15/bin")
SERVER_USER = "postgres"
PROGRAMS = ("initdb", "pg_ctl", "pg_basebackup", "psql")


def postgres_binaries(folder: Path | None = None) -> tuple[Path | None, str]:
    """The folder of the PostgreSQL programs, or None and why not.
    ``folder`` (a bench's ``--pg-bin``) overrides LANDFORM_TEST_PG_BIN."""
    if folder is None:
        folder = Path(os.environ.get("LANDFORM_TEST_PG_BIN", DEFAULT_BIN))
    missing = [name for name in PROGRAMS if not (folder / name).exists()]
    if missing:
        return None, f"PostgreSQL programs not found in {folder}: {', '.join(missing)}"
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return None, "running as root needs runuser (util-linux) to drop to postgres"
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return None, f"running as root needs an OS user {SERVER_USER!r} for initdb"
    return folder, ""


class Cluster:
    """One PostgreSQL server: its port, data folder and the programs that
    drive it. Made by ``Clusters``, not directly."""

    def __init__(self, bin_dir: Path, data_dir: Path, port: int, owner: Clusters) -> None:
        self.bin_dir = bin_dir
        self.data_dir = data_dir
        self.port = port
        self._owner = owner
        # The server's own log: what failed when a start fails.
        self.log_path = data_dir.parent / f"{data_dir.name}.log"

    @property
    def socket_dir(self) -> Path:
        """The folder of the server's Unix socket (pgBackRest's
        ``pg1-socket-path``): the ``Clusters`` folder."""
        return self.data_dir.parent

    def url(self, database: str = "postgres", driver: str = "postgresql+asyncpg") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Start the server on its port; returns once it accepts connections
        (a standby: once it is consistent). Also what brings a stopped
        cluster back after a tool such as ``pgbackrest restore`` rewrote its
        data folder: port, address and socket folder are on its command line,
        so it comes back where it was whatever the restored files say."""
        self._pg_ctl("start", "-l", str(self.log_path), "-o", self._server_options())

    def stop(self, mode: str = "fast") -> None:
        """``mode``: ``smart``, ``fast`` (roll back sessions, checkpoint) or
        ``immediate`` (no checkpoint: like a crash)."""
        self._pg_ctl("stop", "-m", mode)

    def restart(self, mode: str = "fast") -> None:
        """``pg_ctl restart -m fast``: every session is ended, then the
        server comes back on the same port; returns once it accepts."""
        self._pg_ctl("restart", "-m", mode, "-l", str(self.log_path), "-o", self._server_options())

    def promote(self) -> None:
        """A standby becomes a primary (returns once it accepts writes)."""
        self._pg_ctl("promote")

    def pause_replay(self) -> None:
        """A standby keeps receiving WAL but stops applying it (it lags)."""
        self.sql("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        self.sql("SELECT pg_wal_replay_resume()")

    def running(self) -> bool:
        status = self._run([self._bin("pg_ctl"), "status", "-D", str(self.data_dir)], check=False)
        return status.returncode == 0

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement with psql; its output, unaligned, without headers."""
        done = self._run(
            [
                self._bin("psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-c",
                statement,
            ]
        )
        return done.stdout.strip()

    def wait_for(
        self, statement: str, expected: str, database: str = "postgres", timeout: float = 30.0
    ) -> None:
        """Until ``statement`` answers ``expected`` (say, a replica has
        replayed a row), or fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        answer = ""
        while time.monotonic() < deadline:
            try:
                answer = self.sql(statement, database)
            except subprocess.CalledProcessError:
                answer = "(error)"
            if answer == expected:
                return
            time.sleep(0.05)
        raise TimeoutError(f"{statement!r} answered {answer!r}, not {expected!r}")

    def _server_options(self) -> str:
        # Only TCP on loopback, and the socket in the cluster's own folder,
        # so nothing collides with the machine's server.
        return f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.socket_dir}"

    def _pg_ctl(self, *args: str) -> None:
        command = [self._bin("pg_ctl"), "-D", str(self.data_dir), "-w", "-t", "60", *args]
        try:
            self._run(command)
        except subprocess.CalledProcessError as exc:
            log = self.log_path.read_text() if self.log_path.exists() else ""
            raise RuntimeError(f"{' '.join(args[:1])} failed: {exc.stderr}\n{log[-4000:]}") from exc

    def _bin(self, name: str) -> str:
        return str(self.bin_dir / name)

    def _run(self, command: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._owner.run(command, check=check)


class Clusters:
    """Every throwaway cluster of one test (or module), in one temporary
    folder, on ports taken from ``ports`` (the first ones nothing listens on;
    a single port to have that one), with the programs in ``bin_dir`` (default:
    ``postgres_binaries()``'s)."""

    def __init__(self, ports: Iterable[int], bin_dir: Path | None = None) -> None:
        bin_dir, why = postgres_binaries(bin_dir)
        if bin_dir is None:
            raise RuntimeError(why)
        self.bin_dir = bin_dir
        self._ports = list(ports)
        self._clusters: list[Cluster] = []
        self.folder = Path(tempfile.mkdtemp(prefix="landform-pg-"))
        self._as_server_user = os.geteuid() == 0
        if self._as_server_user:
            # The server user must reach into the folder and own what is in it.
            self.folder.chmod(0o755)
            account = pwd.getpwnam(SERVER_USER)
            os.chown(self.folder, account.pw_uid, account.pw_gid)

    def __enter__(self) -> Clusters:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.close()

    def primary(self, **settings: str) -> Cluster:
        """A new, started primary; ``settings`` go into postgresql.conf."""
        cluster = self._new_cluster()
        self.run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(cluster.data_dir),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale",
                "C",
            ]
        )
        lines = [f"{name} = '{value}'" for name, value in settings.items()]
        with (cluster.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n".join(["", *lines, ""]))
        cluster.start()
        return cluster

    def replica_of(self, primary: Cluster) -> Cluster:
        """A new hot standby streaming from ``primary`` (pg_basebackup -R),
        started, with everything the primary had when it was made."""
        cluster = self._new_cluster()
        self.run(
            [
                str(self.bin_dir / "pg_basebackup"),
                "-h",
                "127.0.0.1",
                "-p",
                str(primary.port),
                "-U",
                "postgres",
                "-D",
                str(cluster.data_dir),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
            ]
        )
        cluster.start()
        return cluster

    def run(
        self, command: list[str], check: bool = True, timeout: float | None = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """``command`` as the server's user, in the folder. ``timeout``:
        None for a command as long as its data (a pgBackRest backup)."""
        if self._as_server_user:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        return subprocess.run(  # noqa: S603 - our own programs and arguments
            command, check=check, capture_output=True, text=True, cwd=self.folder, timeout=timeout
        )

    def close(self, keep_folder: bool = False) -> None:
        """Stop every cluster (immediately) and delete the folder, unless
        ``keep_folder`` (a bench's ``--keep``: data and logs to look at)."""
        for cluster in self._clusters:
            if cluster.running():
                with contextlib.suppress(RuntimeError):
                    cluster.stop("immediate")
        if not keep_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _new_cluster(self) -> Cluster:
        port = self._free_port()
        cluster = Cluster(self.bin_dir, self.folder / f"pg{port}", port, self)
        self._clusters.append(cluster)
        return cluster

    def _free_port(self) -> int:
        taken = {cluster.port for cluster in self._clusters}
        for port in self._ports:
            if port in taken:
                continue
            with socket.socket() as probe:
                # As PostgreSQL binds: connections of an earlier cluster
                # waiting out TIME_WAIT on the port do not keep it.
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
        raise RuntimeError(f"no free port left among {self._ports}")
