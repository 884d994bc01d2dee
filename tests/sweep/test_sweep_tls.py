"""A cluster that lets no one in: a sweep on a TLS cluster made as docs/guides/clusters.md says,
clients without its certificates refused, and the local cluster closed to the network."""

import csv
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import dask
import psutil
import pytest
from distributed import Client
from distributed.security import Security

from reference_tasks import cli
from reference_tasks.sweep.cluster import connect
from reference_tasks.sweep.security import LOOPBACK, TLSFiles, local_security

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "clusters.md"
ENVIRONMENT = {**os.environ, "OMP_NUM_THREADS": "1", "DASK_LOGGING__DISTRIBUTED": "error"}
LOOPBACK_HOSTS = {LOOPBACK, "::1"}
# a refused client gives up after this long instead of Dask's 30 s
QUICK_REFUSAL = {"distributed.comm.timeouts.connect": "5s"}


def make_certificates(folder: Path) -> Path:
    """Run the guide's OpenSSL lines in ``folder``: a CA, the cluster's and a client's certificates."""
    block = re.search(r"```bash\n(openssl req -x509.*?)```", GUIDE.read_text(), re.S)
    assert block, f"{GUIDE} has no block that makes the certificates"
    folder.mkdir(parents=True, exist_ok=True)
    for line in block[1].strip().splitlines():
        done = subprocess.run(line, shell=True, cwd=folder, capture_output=True, text=True)
        assert done.returncode == 0, f"{line!r} failed:\n{done.stderr}"
    return folder


def wait_for(condition, seconds: float, message: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.05)


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory):
    """A scheduler and a worker started with Dask's own commands and the guide's certificates."""
    folder = make_certificates(tmp_path_factory.mktemp("certificates"))
    files = [
        *("--tls-ca-file", str(folder / "ca.pem")),
        *("--tls-cert", str(folder / "cluster.pem")),
        *("--tls-key", str(folder / "cluster.key")),
    ]
    scheduler_file = folder / "scheduler.json"
    dask_command = [sys.executable, "-m", "dask"]
    scheduler = [*dask_command, "scheduler", *files, "--port", "0", "--dashboard-address", f"{LOOPBACK}:0"]
    processes = [subprocess.Popen([*scheduler, "--scheduler-file", str(scheduler_file)], env=ENVIRONMENT)]
    try:
        wait_for(scheduler_file.exists, 60, "the TLS scheduler did not start")
        worker = [*dask_command, "worker", "--scheduler-file", str(scheduler_file), *files, "--nthreads", "1"]
        processes.append(subprocess.Popen(worker, env=ENVIRONMENT))
        yield json.loads(scheduler_file.read_text())["address"], folder
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=60)


@pytest.mark.slow
def test_a_sweep_on_a_tls_cluster_finishes(tls_cluster, tmp_path):
    address, certificates = tls_cluster
    assert address.startswith("tls://")
    client_files = [
        *("--tls-ca-file", str(certificates / "ca.pem")),
        *("--tls-cert", str(certificates / "client.pem")),
        *("--tls-key", str(certificates / "client.key")),
    ]
    grid = ["--tasks", "xor", "--seeds", "0", "--grid", "weight_decay=0.1,0.2"]
    short = ["--steps", "60", "--lmn-samples", "8", "--quiet", "--out", str(tmp_path)]
    assert cli.main(["sweep", *grid, *short, "--scheduler", address, *client_files]) == 0
    with open(tmp_path / "sweep" / "summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["weight_decay"], row["status"]) for row in rows] == [
        ("0.1", "finished"),
        ("0.2", "finished"),
    ]


@pytest.mark.slow
def test_daskss_own_configuration_reaches_the_tls_cluster(tls_cluster):
    address, certificates = tls_cluster
    settings = {
        "distributed.comm.require-encryption": True,
        "distributed.comm.tls.ca-file": str(certificates / "ca.pem"),
        "distributed.comm.tls.client.cert": str(certificates / "client.pem"),
        "distributed.comm.tls.client.key": str(certificates / "client.key"),
    }
    with dask.config.set(settings), connect(address, None) as client:
        assert client.submit(sum, [1, 2, 3]).result(timeout=60) == 6


def tls_handshake_without_a_certificate(address: str, ca_file: Path) -> bytes:
    """Open a TLS connection to ``address`` that trusts ``ca_file`` but presents no certificate."""
    host, port = address.removeprefix("tls://").rsplit(":", 1)
    context = ssl.create_default_context(cafile=str(ca_file))
    context.check_hostname = False  # as Dask: the CA is checked, not the host name
    with (
        socket.create_connection((host, int(port)), timeout=10) as raw,
        context.wrap_socket(raw) as connection,
    ):
        return connection.recv(1)  # TLS 1.3: the server's verdict arrives after the handshake


@pytest.mark.slow
def test_clients_without_the_clusters_certificates_are_refused(tls_cluster, tmp_path):
    address, certificates = tls_cluster
    stranger = make_certificates(tmp_path / "stranger")  # a CA of its own, and a client it signed
    with pytest.raises(ssl.SSLError, match="CERTIFICATE_REQUIRED"):
        tls_handshake_without_a_certificate(address, certificates / "ca.pem")
    with pytest.raises(OSError, match=r"reset by peer|closed"):
        Client(address.replace("tls://", "tcp://"), timeout=5)  # no TLS at all
    strangers_files = TLSFiles(stranger / "ca.pem", stranger / "client.pem", stranger / "client.key")
    with (
        pytest.raises(OSError, match="TLS certificate does not match"),
        connect(address, None, tls=strangers_files),
    ):
        pass
    stranger_options = ["--tls-ca-file", str(stranger / "ca.pem"), "--tls-cert", str(stranger / "client.pem")]
    command = ["sweep", "--tasks", "xor", "--steps", "60", "--quiet", "--out", str(tmp_path / "runs")]
    with pytest.raises(SystemExit, match=r"lmn: .*TLS certificate does not match"):
        cli.main(
            [*command, "--scheduler", address, *stranger_options, "--tls-key", str(stranger / "client.key")]
        )
    assert not (tmp_path / "runs" / "torch").exists()  # no run started


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--tls-cert", "client.pem"], "needs --tls-ca-file and --tls-cert"),
        (["--tls-ca-file", "ca.pem", "--tls-cert", "client.pem"], r"for a running TLS cluster \(--scheduler"),
        (
            ["--scheduler", "tcp://127.0.0.1:1", "--tls-ca-file", "ca.pem", "--tls-cert", "client.pem"],
            "starts with tls://, not tcp://127.0.0.1:1",
        ),
        (
            ["--scheduler", "tls://127.0.0.1:1", "--tls-ca-file", "ca.pem", "--tls-cert", "client.pem"],
            "--tls-ca-file ca.pem: no such file",
        ),
        (["--scheduler", "tls://127.0.0.1:1"], "is a TLS cluster: give its certificate files"),
        (
            ["--scheduler", "tls://127.0.0.1:1", "--dashboard-address", "127.0.0.1:0"],
            "--dashboard-address is for the local",
        ),
    ],
)
def test_cluster_options_that_do_not_fit_are_refused_before_any_run(tmp_path, monkeypatch, options, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=message):
        cli.main(["sweep", "--tasks", "xor", "--steps", "60", "--quiet", "--out", "runs", *options])
    assert not (tmp_path / "runs" / "torch").exists()


def listening(processes: list[psutil.Process]) -> set[tuple[str, int]]:
    """The (host, port) pairs these processes listen on (TCP)."""
    return {
        (connection.laddr.ip, connection.laddr.port)
        for process in processes
        for connection in process.net_connections(kind="tcp")
        if connection.status == psutil.CONN_LISTEN
    }


def snapshot() -> tuple[set[tuple[str, int]], set[int]]:
    """What this process listens on, and which child processes it has (the TLS cluster's)."""
    here = psutil.Process()
    return listening([here]), {child.pid for child in here.children(recursive=True)}


def cluster_sockets(before: tuple[set[tuple[str, int]], set[int]]) -> set[tuple[str, int]]:
    """What this process and its new children listen on that they did not ``before``."""
    here = psutil.Process()
    new_children = [child for child in here.children(recursive=True) if child.pid not in before[1]]
    return listening([here, *new_children]) - before[0]


@pytest.mark.slow
def test_the_local_cluster_listens_on_the_loopback_interface_and_speaks_tls():
    before = snapshot()
    with connect(None, 1) as client:
        dashboard = client.scheduler_info()["services"]["dashboard"]
        sockets = cluster_sockets(before)
        address = client.scheduler.address
        assert client.submit(sum, [1, 2]).result(timeout=60) == 3
        with dask.config.set(QUICK_REFUSAL), pytest.raises(TypeError, match="TLS expects"):
            Client(address, timeout=5)  # a client of Dask's default configuration: no certificate
    assert address.startswith(f"tls://{LOOPBACK}:")
    assert (LOOPBACK, dashboard) in sockets
    # scheduler, nanny, worker and dashboard: every socket the cluster opened is on the loopback
    assert len(sockets) >= 4 and {host for host, _ in sockets} == {LOOPBACK}, sockets


@pytest.mark.slow
def test_the_local_dashboard_listens_everywhere_only_when_asked():
    before = snapshot()
    with connect(None, 1, dashboard_address="0.0.0.0:0") as client:
        dashboard = client.scheduler_info()["services"]["dashboard"]
        sockets = cluster_sockets(before)
    assert ("0.0.0.0", dashboard) in sockets
    assert {host for host, port in sockets if port != dashboard} == {LOOPBACK}


def test_without_cryptography_the_local_cluster_says_it_runs_without_tls(monkeypatch, caplog):
    def no_cryptography(cls):
        raise ImportError("Using `Security.temporary` requires `cryptography`")

    monkeypatch.setattr(Security, "temporary", classmethod(no_cryptography))
    security = local_security()
    assert not security.require_encryption
    assert "runs without TLS, so other users of this machine can connect" in caplog.text


def test_the_local_cluster_gets_a_certificate_of_its_own():
    first, second = local_security(), local_security()
    assert first.require_encryption and first.tls_ca_file.startswith("-----BEGIN CERTIFICATE-----")
    assert first.tls_ca_file != second.tls_ca_file
