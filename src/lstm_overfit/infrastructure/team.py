"""A local team stack: PostgreSQL, an S3-compatible store and `mlflow server`, on loopback.

`python -m lstm_overfit.infrastructure.team up` starts it (or finds it running) and prints the two settings a
user exports; `... down` stops it. The data (the run store, the artifacts, the DVC remote's
objects) stay in one folder across restarts: `LSTM_OVERFIT_TEAM_DIR`, by default
`~/.local/share/lstm-overfit/team`. Everything comes from `requirements-team.txt`: PostgreSQL
from pgserver's wheel (only its binaries are used), SeaweedFS's `weed` as the S3 server, MLflow's
own server in front of both (artifacts proxied, as in MLflow's docker-compose recipe).

Credentials are made once, at random, and kept in files only the owner can read: the S3 keys
in an AWS credentials file, PostgreSQL's password in a libpq password file. They are never
printed, never put on a command line and never written to a log.

A supervisor process owns the three servers: it stops them all when one of them exits, on
`down` (SIGTERM), or after `--ttl` seconds, so a stack a test starts cannot outlive it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

SERVICE_USER = "lstm-overfit"  # PostgreSQL refuses to run as root
DEFAULT_PORTS = {"postgres": 54329, "s3": 8333, "mlflow": 5050}
MLFLOW_BUCKET = "mlflow"
DVC_BUCKET = "dvc"
DVC_REMOTE = "team"
START_SECONDS = 90.0


class TeamError(Exception):
    """The stack cannot start or be reached; the message says which part and why."""


@dataclass(frozen=True)
class Layout:
    """Where one stack keeps its data, secrets, logs and state."""

    root: Path

    @property
    def postgres(self) -> Path:
        return self.root / "postgres"

    @property
    def sockets(self) -> Path:
        return self.root / "run"

    @property
    def s3(self) -> Path:
        return self.root / "s3"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    @property
    def aws_credentials(self) -> Path:
        return self.secrets / "aws-credentials"

    @property
    def pgpass(self) -> Path:
        return self.secrets / "pgpass"

    @property
    def s3_identities(self) -> Path:
        return self.secrets / "s3-identities.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def state(self) -> Path:
        return self.root / "stack.json"

    @property
    def supervisor_log(self) -> Path:
        return self.root / "supervisor.log"


@dataclass(frozen=True)
class Ports:
    postgres: int
    s3: int
    mlflow: int
    # SeaweedFS's internal services: master, volume, filer, each with a gRPC port.
    internal: tuple[int, ...]


@dataclass(frozen=True)
class Settings:
    """What a client needs: the two exported settings and the DVC remote."""

    tracking_uri: str
    s3_endpoint: str
    aws_credentials: str

    def exports(self) -> str:
        return (f"export MLFLOW_TRACKING_URI={self.tracking_uri}\n"
                f"export AWS_SHARED_CREDENTIALS_FILE={self.aws_credentials}")


def default_dir(env: dict[str, str] | os._Environ) -> Path:
    """The stack's folder: LSTM_OVERFIT_TEAM_DIR, else under XDG_DATA_HOME."""
    if env.get("LSTM_OVERFIT_TEAM_DIR"):
        return Path(env["LSTM_OVERFIT_TEAM_DIR"]).resolve()
    base = Path(env.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return (base / "lstm-overfit" / "team").resolve()


def free_port(preferred: int | None = None, taken: set[int] | None = None) -> int:
    """`preferred` if it is free on loopback, else any free port not in `taken`."""
    taken = taken or set()
    for port in ([preferred] if preferred else []) + [0] * 20:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            chosen = s.getsockname()[1]
        if chosen not in taken:
            return chosen
    raise TeamError("no free port on 127.0.0.1")


def choose_ports() -> Ports:
    taken: set[int] = set()

    def pick(preferred: int | None = None) -> int:
        port = free_port(preferred, taken)
        taken.add(port)
        return port

    public = {name: pick(port) for name, port in DEFAULT_PORTS.items()}
    return Ports(internal=tuple(pick() for _ in range(7)), **public)


def _private_file(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def make_secrets(layout: Layout, ports: Ports) -> None:
    """Random credentials, once: later starts reuse them (the data was written with them)."""
    if layout.aws_credentials.exists():
        return
    key, secret, password = secrets.token_hex(10).upper(), secrets.token_hex(20), secrets.token_hex(16)
    _private_file(layout.aws_credentials,
                  f"[default]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n")
    identities = {"identities": [{"name": "team", "credentials": [
        {"accessKey": key, "secretKey": secret}], "actions": ["Admin", "Read", "Write", "List",
                                                            "Tagging"]}]}
    _private_file(layout.s3_identities, json.dumps(identities))
    _private_file(layout.pgpass, f"127.0.0.1:{ports.postgres}:*:mlflow:{password}\n")


def read_state(layout: Layout) -> dict | None:
    try:
        return json.loads(layout.state.read_text())
    except (OSError, ValueError):
        return None


def settings(layout: Layout, ports: Ports) -> Settings:
    return Settings(tracking_uri=f"http://127.0.0.1:{ports.mlflow}",
                    s3_endpoint=f"http://127.0.0.1:{ports.s3}",
                    aws_credentials=str(layout.aws_credentials))


def load_ports(layout: Layout) -> Ports:
    """The ports of the first start, so clients configured then keep working."""
    state = read_state(layout)
    if state and "ports" in state:
        p = state["ports"]
        return Ports(postgres=p["postgres"], s3=p["s3"], mlflow=p["mlflow"],
                     internal=tuple(p["internal"]))
    return choose_ports()


def _tool(name: str) -> str:
    """A server binary from the team requirements, beside this Python or on PATH."""
    if name in {"initdb", "postgres", "pg_isready", "createdb", "psql"}:
        # pgserver's wheel carries PostgreSQL's binaries; importing it would start its own
        # server machinery, so only its folder is looked up.
        spec = importlib.util.find_spec("pgserver")
        if spec is None or not spec.submodule_search_locations:
            raise TeamError("PostgreSQL is missing: pip install -r requirements-team.txt")
        return str(Path(spec.submodule_search_locations[0]) / "pginstall" / "bin" / name)
    found = shutil.which(name, path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    if not found:
        raise TeamError(f"{name} is missing: pip install -r requirements-team.txt")
    return found


def _service_user():
    """The service user's passwd entry, made on a machine that has none yet (as root)."""
    import pwd

    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        made = subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                               "/usr/sbin/nologin", SERVICE_USER], capture_output=True, text=True)
        if made.returncode != 0:
            raise TeamError(f"cannot make the service user {SERVICE_USER!r} PostgreSQL runs as: "
                            f"{made.stderr.strip()}") from None
        return pwd.getpwnam(SERVICE_USER)


def _as_service_user() -> dict:
    """Popen arguments that drop root for PostgreSQL; nothing to change for other users."""
    if os.geteuid() != 0:
        return {}
    entry = _service_user()
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _give_to_service_user(paths: list[Path]) -> None:
    """Let the service user own its folders and reach them: parents get o+x (traverse only)."""
    if os.geteuid() != 0:
        return
    entry = _service_user()
    for path in paths:
        for parent in path.parents:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                parent.chmod(mode | 0o001)
        for p in [path, *path.rglob("*")]:
            os.chown(p, entry.pw_uid, entry.pw_gid)


def _wait(what: str, ready, seconds: float, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        if proc.poll() is not None:
            raise TeamError(f"{what} exited with code {proc.returncode}; its log: {log}")
        if time.monotonic() > deadline:
            raise TeamError(f"{what} did not start within {seconds:.0f} s; its log: {log}")
        time.sleep(0.3)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _read_secret_pgpass(layout: Layout) -> str:
    return layout.pgpass.read_text().strip().rsplit(":", 1)[1]


def start_postgres(layout: Layout, ports: Ports, log) -> subprocess.Popen:
    user = _as_service_user()
    if not (layout.postgres / "PG_VERSION").exists():
        layout.postgres.mkdir(parents=True, exist_ok=True, mode=0o700)
        pwfile = layout.sockets / "initdb-password"
        _private_file(pwfile, _read_secret_pgpass(layout) + "\n")
        _give_to_service_user([layout.postgres, pwfile])
        try:
            subprocess.run([_tool("initdb"), "-D", str(layout.postgres), "-U", "mlflow",
                            "--auth-local=trust", "--auth-host=scram-sha-256",
                            f"--pwfile={pwfile}", "-E", "UTF8", "--no-instructions"],
                           check=True, stdout=log, stderr=log, **user)
        finally:
            pwfile.unlink(missing_ok=True)
    _give_to_service_user([layout.postgres])
    proc = subprocess.Popen([_tool("postgres"), "-D", str(layout.postgres), "-p", str(ports.postgres),
                             "-c", "listen_addresses=127.0.0.1", "-c",
                             f"unix_socket_directories={layout.sockets}"],
                            stdout=log, stderr=log, **user)
    isready = [_tool("pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(ports.postgres)]
    _wait("PostgreSQL", lambda: subprocess.run(isready).returncode == 0, START_SECONDS, proc,
          Path(log.name))
    has_db = subprocess.run([_tool("psql"), "-h", str(layout.sockets), "-p", str(ports.postgres),
                             "-U", "mlflow", "-d", "postgres", "-tAc",
                             "SELECT 1 FROM pg_database WHERE datname = 'mlflow'"],
                            capture_output=True, text=True, **user)
    if has_db.stdout.strip() != "1":
        subprocess.run([_tool("createdb"), "-h", str(layout.sockets), "-p", str(ports.postgres),
                        "-U", "mlflow", "mlflow"], check=True, stdout=log, stderr=log, **user)
    return proc


def start_s3(layout: Layout, ports: Ports, log) -> subprocess.Popen:
    layout.s3.mkdir(parents=True, exist_ok=True)
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3_grpc = ports.internal
    cmd = [_tool("weed"), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={layout.s3}",
           f"-master.port={master}", f"-master.port.grpc={master_grpc}",
           f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}",
           "-filer", f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
           "-s3", f"-s3.port={ports.s3}", f"-s3.port.grpc={s3_grpc}",
           f"-s3.config={layout.s3_identities}", "-s3.port.iceberg=0", "-s3.port.lance=0",
           # Small volumes, and room for many: each bucket grows several at once.
           "-master.volumeSizeLimitMB=64", "-volume.max=64", "-volume.preStopSeconds=1",
           # One master, no peers: no reason to wait the default 10 s for a raft election
           # on a restart (measured: 20 s -> 6 s to ready).
           "-master.electionTimeout=1s",
           "-master.telemetry=false",
           f"-filer.localSocket={layout.sockets / 'filer.sock'}",
           f"-s3.localSocket={layout.sockets / 's3.sock'}"]
    return subprocess.Popen(cmd, stdout=log, stderr=log, cwd=layout.s3)


def wait_s3(layout: Layout, ports: Ports, proc: subprocess.Popen, log) -> None:
    _wait("the S3 server (SeaweedFS)", lambda: _buckets_ready(layout, ports), START_SECONDS, proc,
          Path(log.name))


def _s3(endpoint: str | None, **credentials: str):
    """An S3 client that fails in seconds: one attempt, short timeouts."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session(**credentials).client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, connect_timeout=3, read_timeout=10))


def s3_client(layout: Layout, ports: Ports):
    """The stack's own S3 client, with the keys from its credentials file."""
    import configparser

    keys = configparser.ConfigParser()
    keys.read(layout.aws_credentials)
    return _s3(f"http://127.0.0.1:{ports.s3}",
               aws_access_key_id=keys["default"]["aws_access_key_id"],
               aws_secret_access_key=keys["default"]["aws_secret_access_key"])


def _buckets_ready(layout: Layout, ports: Ports) -> bool:
    """Both buckets exist (made on the first start): the S3 API answers and writes work."""
    if not _port_open(ports.s3):
        return False
    try:
        s3 = s3_client(layout, ports)
        have = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        for bucket in (MLFLOW_BUCKET, DVC_BUCKET):
            if bucket not in have:
                s3.create_bucket(Bucket=bucket)
        return True
    except Exception:  # not answering yet, or answering before the filer is ready
        return False


def start_mlflow(layout: Layout, ports: Ports, log) -> subprocess.Popen:
    # MLflow 3's server also starts its GenAI job runners (Huey consumers: 7 more Python
    # processes, ~28 s of CPU and ~1.9 GB at each start here), which this project never uses.
    # Off unless the user's environment turns them on.
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ,
           "PGPASSFILE": str(layout.pgpass),
           "AWS_SHARED_CREDENTIALS_FILE": str(layout.aws_credentials),
           "MLFLOW_S3_ENDPOINT_URL": f"http://127.0.0.1:{ports.s3}",
           "AWS_DEFAULT_REGION": "us-east-1"}
    env = {k: v for k, v in env.items() if not k.startswith(("AWS_ACCESS", "AWS_SECRET"))}
    cmd = [_tool("mlflow"), "server", "--host", "127.0.0.1", "--port", str(ports.mlflow),
           "--workers", "1",
           "--backend-store-uri", f"postgresql+psycopg2://mlflow@127.0.0.1:{ports.postgres}/mlflow",
           "--artifacts-destination", f"s3://{MLFLOW_BUCKET}/artifacts"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env, cwd=layout.root)
    _wait("mlflow server", lambda: _http_ok(f"http://127.0.0.1:{ports.mlflow}/health"),
          START_SECONDS, proc, Path(log.name))
    return proc


def _stop_all(procs: list[tuple[str, subprocess.Popen, int, float]]) -> None:
    """Stop the servers side by side, each killed once its own grace is over (one after
    another, the graces would add up); PostgreSQL only once MLflow, which writes to it, is gone."""
    deadlines: dict[str, float] = {}

    def send(names: set[str]) -> None:
        for name, proc, sig, grace in procs:
            if name in names and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)
                deadlines[name] = time.monotonic() + grace

    def finish(names: set[str]) -> None:
        for name, proc, _, _ in procs:
            if name in names and name in deadlines:
                try:
                    proc.wait(max(0.0, deadlines[name] - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    send({"mlflow", "s3"})
    finish({"mlflow"})
    send({"postgres"})
    finish({"s3", "postgres"})


@contextlib.contextmanager
def _logs(layout: Layout) -> Iterator[dict]:
    layout.logs.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(open(layout.logs / f"{name}.log", "a"))
               for name in ("postgres", "s3", "mlflow")}


def serve(layout: Layout, ttl: float | None) -> int:
    """The supervisor: start the three servers, write the state file, and stop them all when
    one exits, on SIGTERM, or after `ttl` seconds."""
    ports = load_ports(layout)
    make_secrets(layout, ports)
    stopping = False

    def on_term(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    procs: list[tuple[str, subprocess.Popen, int, float]] = []
    state = {"pid": os.getpid(), "ports": asdict(ports), "status": "starting"}
    layout.state.write_text(json.dumps(state))
    with _logs(layout) as logs:
        try:
            # Both servers' sockets: the service user's folder before either starts
            # (SeaweedFS runs as root and can use it too).
            layout.sockets.mkdir(parents=True, exist_ok=True, mode=0o700)
            _give_to_service_user([layout.sockets])
            # SeaweedFS starts first and gets ready while PostgreSQL and MLflow start: the
            # MLflow server needs the database to start, the S3 store only once it serves.
            # PostgreSQL's "fast" shutdown is SIGINT (at once, consistent); SeaweedFS and the
            # stateless MLflow server get a few seconds of SIGTERM (they would take 8-16 s).
            s3 = start_s3(layout, ports, logs["s3"])
            procs.append(("s3", s3, signal.SIGTERM, 5.0))
            procs.append(("postgres", start_postgres(layout, ports, logs["postgres"]),
                          signal.SIGINT, 30.0))
            procs.append(("mlflow", start_mlflow(layout, ports, logs["mlflow"]), signal.SIGTERM,
                          3.0))
            wait_s3(layout, ports, s3, logs["s3"])
            state.update(status="up", servers={name: p.pid for name, p, _, _ in procs},
                         settings=asdict(settings(layout, ports)))
            layout.state.write_text(json.dumps(state))
            deadline = time.monotonic() + ttl if ttl else None
            while not stopping and all(p.poll() is None for _, p, _, _ in procs):
                if deadline and time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            return 0
        except TeamError as exc:
            state.update(status="failed", error=str(exc))
            layout.state.write_text(json.dumps(state))
            return 1
        finally:
            _stop_all(procs)
            if state.get("status") != "failed":
                layout.state.write_text(json.dumps({"ports": asdict(ports), "status": "down"}))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running(layout: Layout) -> dict | None:
    """The state of a running, ready stack, or None."""
    state = read_state(layout)
    if state and state.get("status") == "up" and _alive(state["pid"]):
        return state
    return None


def up(layout: Layout, ttl: float | None = None) -> Settings:
    """Start the stack in the background (or find it running) and wait until it answers."""
    state = running(layout)
    if state is None:
        layout.root.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "lstm_overfit.infrastructure.team", "serve", "--dir", str(layout.root)]
        if ttl:
            cmd += ["--ttl", str(ttl)]
        with open(layout.supervisor_log, "a") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        deadline = time.monotonic() + 3 * START_SECONDS
        while (state := running(layout)) is None:
            exited = proc.poll() is not None
            # Read after the poll: a failure it wrote just before exiting is seen.
            current = read_state(layout) or {}
            if current.get("status") == "failed":
                raise TeamError(current["error"])
            if exited:
                tail = layout.supervisor_log.read_text(errors="replace")
                tail = "\n".join(tail.strip().splitlines()[-12:])
                raise TeamError(f"the stack's supervisor exited with code {proc.returncode}; "
                                f"logs in {layout.logs}; its own output ends:\n{tail}")
            if time.monotonic() > deadline:
                raise TeamError(f"the stack did not start in time; logs in {layout.logs}")
            time.sleep(0.3)
    return Settings(**state["settings"])


def down(layout: Layout, seconds: float = 60) -> bool:
    """Stop a running stack; False if none was running."""
    state = read_state(layout)
    if not state or "pid" not in state or not _alive(state["pid"]):
        return False
    os.kill(state["pid"], signal.SIGTERM)
    deadline = time.monotonic() + seconds
    while _alive(state["pid"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return True


def configure_dvc_remote(project: Path, s: Settings) -> None:
    """This clone's DVC remote on the stack's S3 store, in `.dvc/config.local` (never
    committed): the endpoint only; the credentials come from AWS_SHARED_CREDENTIALS_FILE."""
    dvc = _tool("dvc")
    subprocess.run([dvc, "remote", "add", "--local", "--force", "--default", DVC_REMOTE,
                    f"s3://{DVC_BUCKET}/cache"], cwd=project, check=True, capture_output=True)
    subprocess.run([dvc, "remote", "modify", "--local", DVC_REMOTE, "endpointurl", s.s3_endpoint],
                   cwd=project, check=True, capture_output=True)


def check_remote(project: Path, env: dict[str, str] | os._Environ) -> str:
    """Ask the project's default DVC remote, with the credentials this environment gives DVC,
    for its bucket: DVC's own error for refused credentials does not always name the remote."""
    from botocore.exceptions import BotoCoreError, ClientError

    def dvc_config(key: str) -> str:
        out = subprocess.run([_tool("dvc"), "config", key], cwd=project, capture_output=True,
                             text=True)
        return out.stdout.strip()

    name = dvc_config("core.remote")
    if not name:
        raise TeamError(f"{project} has no default DVC remote (make team-up sets one)")
    url, endpoint = dvc_config(f"remote.{name}.url"), dvc_config(f"remote.{name}.endpointurl")
    bucket = url.removeprefix("s3://").split("/", 1)[0]
    where = f"DVC remote `{name}` ({url}{' at ' + endpoint if endpoint else ''})"
    source = env.get("AWS_SHARED_CREDENTIALS_FILE") or "the default AWS credentials"
    try:
        _s3(endpoint or None).head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise TeamError(f"{where} refused the credentials from {source}: {code} "
                        f"{exc.response.get('ResponseMetadata', {}).get('HTTPStatusCode', '')}"
                        .rstrip()) from exc
    except BotoCoreError as exc:
        raise TeamError(f"{where} cannot be used: {exc}") from exc
    return where


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lstm_overfit.infrastructure.team", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["up", "down", "check", "serve"])
    ap.add_argument("--dir", type=Path, default=None, help="the stack's folder")
    ap.add_argument("--ttl", type=float, default=None, help="stop by itself after this many seconds")
    ap.add_argument("--project", type=Path, default=None,
                    help="a DVC project whose local remote `team` to point at the stack")
    args = ap.parse_args(argv)
    layout = Layout(args.dir.resolve() if args.dir else default_dir(os.environ))
    try:
        if args.command == "serve":
            return serve(layout, args.ttl)
        if args.command == "check":
            print(f"{check_remote(args.project or Path.cwd(), os.environ)}: credentials accepted")
            return 0
        if args.command == "down":
            print("team stack stopped" if down(layout) else "no team stack was running")
            return 0
        s = up(layout, args.ttl)
        if args.project:
            configure_dvc_remote(args.project, s)
        print(f"team stack up ({layout.root}); DVC remote `{DVC_REMOTE}` -> {s.s3_endpoint}"
              if args.project else f"team stack up ({layout.root})", file=sys.stderr)
        print(s.exports())
        return 0
    except (TeamError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
