"""Who may reach the Dask cluster a sweep runs on (docs/guides/clusters.md).

A Dask client can run any code on the workers, so a cluster open to the network lets anyone
there act as the sweep's user. The local cluster of ``lmn reproduce`` and ``lmn sweep``
therefore listens on the loopback interface only (scheduler, workers and dashboard), and
speaks TLS with certificates made for it in memory (``Security.temporary``, which needs the
``cryptography`` package the ``torch`` and ``keras`` extras install), so that another user of
the same machine cannot connect either. A running cluster is reached with the certificate
files of :class:`TLSFiles` (``lmn sweep --tls-ca-file ... --tls-cert ... --tls-key ...``) or,
without them, with Dask's own configuration (``distributed.comm.tls.*``).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: Where the local cluster's scheduler, workers and dashboard listen.
LOOPBACK = "127.0.0.1"
#: The local cluster's dashboard: Dask's port (the next free one if it is taken), loopback only.
LOCAL_DASHBOARD = f"{LOOPBACK}:8787"


@dataclasses.dataclass(frozen=True)
class TLSFiles:
    """The certificate files a client presents to a TLS Dask cluster.

    Attributes
    ----------
    ca_file : Path
        The certificate of the authority that signed the cluster's certificates.
    cert : Path
        This client's certificate, signed by that authority (it may hold the key too).
    key : Path, optional
        This client's private key, when ``cert`` does not hold it.
    """

    ca_file: Path
    cert: Path
    key: Path | None = None

    def security(self) -> Any:
        """Dask's ``Security`` for a client with these files, encryption required.

        Raises
        ------
        FileNotFoundError
            Naming the option whose file does not exist.
        """
        from distributed.security import Security

        for option, path in (
            ("--tls-ca-file", self.ca_file),
            ("--tls-cert", self.cert),
            ("--tls-key", self.key),
        ):
            if path is not None and not Path(path).is_file():
                raise FileNotFoundError(f"{option} {path}: no such file")
        return Security(
            tls_ca_file=str(self.ca_file),
            tls_client_cert=str(self.cert),
            tls_client_key=None if self.key is None else str(self.key),
            require_encryption=True,
        )


def check_cluster_options(scheduler: str | None, tls: TLSFiles | None, dashboard_address: str | None) -> None:
    """Refuse options that do not fit where the runs go (``--scheduler`` or the local cluster).

    Raises
    ------
    ValueError
        Certificate files without a ``tls://`` scheduler, or a dashboard address with one (a
        running cluster's dashboard is its scheduler's setting).
    """
    tls_options = "--tls-ca-file, --tls-cert and --tls-key"
    if scheduler is None and tls is not None:
        raise ValueError(f"{tls_options} are for a running TLS cluster (--scheduler tls://HOST:PORT)")
    if scheduler is not None and tls is not None and not scheduler.startswith("tls://"):
        raise ValueError(
            f"{tls_options} are for a TLS cluster, whose address starts with tls://, not {scheduler}"
        )
    if scheduler is not None and dashboard_address is not None:
        raise ValueError(
            "--dashboard-address is for the local cluster; a running cluster's dashboard is set where its "
            "scheduler starts (dask scheduler --dashboard-address)"
        )


def client_security(scheduler: str, tls: TLSFiles | None) -> Any:
    """Dask's ``Security`` for a client of the cluster at ``scheduler``: ``tls``, else Dask's configuration.

    Raises
    ------
    ValueError
        If ``scheduler`` speaks TLS and neither ``tls`` nor Dask's configuration gives a certificate.
    FileNotFoundError
        If a file of ``tls`` does not exist.
    """
    from distributed.security import Security

    security = Security() if tls is None else tls.security()
    if scheduler.startswith("tls://") and security.get_connection_args("client")["ssl_context"] is None:
        raise ValueError(
            f"{scheduler} is a TLS cluster: give its certificate files (--tls-ca-file, --tls-cert, "
            "--tls-key) or set them in Dask's configuration (distributed.comm.tls.ca-file, "
            "distributed.comm.tls.client.cert and .key)"
        )
    return security


def local_security() -> Any:
    """TLS with certificates made in memory for one local cluster (``Security.temporary``).

    Without the ``cryptography`` package, a warning says so and the cluster runs without TLS,
    on the loopback interface still.
    """
    from distributed.security import Security

    try:
        return Security.temporary()
    except ImportError:
        logger.warning(
            "the local Dask cluster runs without TLS, so other users of this machine can connect to "
            "it: install the cryptography package (pip install 'linear-mapping-number[torch]') for TLS"
        )
        return Security(require_encryption=False)
