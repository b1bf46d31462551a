"""The local AWS endpoint: moto in server mode, adjusted to answer as AWS does (see the modules)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from werkzeug.serving import BaseWSGIServer, make_server

from analytics_platform.local.endpoint.fixes import apply_all
from analytics_platform.local.endpoint.middleware import AwsSemantics
from analytics_platform.local.endpoint.moto_patches import encode_event_key


@dataclass
class Endpoint:
    """A running endpoint; :meth:`stop` ends it."""

    server: BaseWSGIServer
    thread: threading.Thread
    semantics: AwsSemantics

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.thread.join()


def start_endpoint(port: int, *, log_dir: Path, fault_rate: float = 0.0, host: str = "127.0.0.1") -> Endpoint:
    """Serve moto on ``host:port`` behind :class:`AwsSemantics`, in a background thread."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    apply_all()
    log_dir.mkdir(parents=True, exist_ok=True)
    semantics = AwsSemantics(DomainDispatcherApplication(create_backend_app), log_dir=log_dir, fault_rate=fault_rate)
    server = make_server(host, port, semantics, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="local-aws-endpoint", daemon=True)
    thread.start()
    return Endpoint(server, thread, semantics)


__all__ = ["AwsSemantics", "Endpoint", "encode_event_key", "start_endpoint"]
