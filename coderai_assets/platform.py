"""Start and stop the local platform: the embedded model server, the Dagster code server, webserver and
daemon, and the API. Used by `coderai up` (foreground) and `coderai demo` (started, used, stopped)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from coderai_assets.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def dagster_home(settings: Settings) -> Path:
    """DAGSTER_HOME with the project's dagster.yaml, and a workspace pointing at this platform's code server. The
    instance's log level is CODERAI_LOG_LEVEL: a run worker prints its events at it (Dagster's dozen debug events
    per step only at debug; every event is in the run's event log whatever the level)."""
    home = Path(settings.dagster_home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    instance = (ROOT / "dagster.yaml").read_text()
    (home / "dagster.yaml").write_text(
        instance.replace("python_log_level: INFO", f"python_log_level: {settings.log_level.upper()}")
    )
    (home / "workspace.yaml").write_text(
        (ROOT / "workspace.yaml")
        .read_text()
        .replace("port: 4266", f"port: {settings.dagster_code_server_port}")
        .replace("location_name: coderai", f"location_name: {settings.dagster_location}")
    )
    return home


def child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env["DAGSTER_HOME"] = str(dagster_home(settings))
    env["CODERAI_DAGSTER_DATABASE_URL"] = settings.dagster_database_url
    env["CODERAI_DATABASE_URL"] = settings.database_url
    env["CODERAI_STORAGE_DIR"] = str(Path(settings.storage_dir).resolve())
    env["CODERAI_DAGSTER_HOME"] = env["DAGSTER_HOME"]
    # Event bookkeeping dominates a run of many small documents unless batched (docs/decisions.md: asset graph).
    env.setdefault("DAGSTER_EVENT_BATCH_SIZE", "1000")
    env.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "1")
    env.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    return env


@dataclass
class Service:
    name: str
    argv: list[str]
    ready_url: str | None = None
    env: dict[str, str] = field(default_factory=dict)  # on top of child_env
    process: subprocess.Popen | None = None
    log: IO[bytes] | None = None  # closed by Platform.stop


@dataclass
class Platform:
    settings: Settings
    log_dir: Path
    services: list[Service] = field(default_factory=list)

    @property
    def metrics_dir(self) -> Path:
        return (self.log_dir / "prometheus").resolve()

    def plan(self, *, with_api: bool = True) -> list[Service]:
        s = self.settings
        py = sys.executable
        bin_dir = Path(py).parent
        workspace = str(dagster_home(s) / "workspace.yaml")
        services = []
        if s.llm_provider == "local":
            services.append(
                Service(
                    "local-llm",
                    [py, "-m", "coderai_assets.cli", "local-llm"],
                    f"http://{s.local_llm_host}:{s.local_llm_port}/v1/models",
                )
            )
        services += [
            Service(
                "dagster-code-server",
                [
                    py,
                    "-m",
                    "coderai_assets.defs.code_server",
                    "-m",
                    "coderai_assets.definitions",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(s.dagster_code_server_port),
                    "--location-name",
                    s.dagster_location,
                    "--log-level",
                    s.log_level,
                ],
            ),
            Service(
                "dagster-webserver",
                [
                    str(bin_dir / "dagster-webserver"),
                    "-w",
                    workspace,
                    "-h",
                    s.dagster_host,
                    "-p",
                    str(s.dagster_port),
                    "--log-level",
                    s.framework_log_level,
                    "--dagster-log-level",
                    s.framework_log_level,
                ],
                f"http://{s.dagster_host}:{s.dagster_port}/server_info",
            ),
            # The daemon logs every sensor tick at info (two lines per sensor every few seconds).
            Service(
                "dagster-daemon",
                [str(bin_dir / "dagster-daemon"), "run", "-w", workspace, "--log-level", s.framework_log_level],
            ),
        ]
        if with_api:
            services.append(
                Service(
                    "api",
                    [
                        py,
                        "-m",
                        "uvicorn",
                        "coderai_api.main:app",
                        "--host",
                        s.api_host,
                        "--port",
                        str(s.api_port),
                        "--workers",
                        str(s.api_workers),
                        # Longer than clients keep idle connections (httpx and browsers: 5-60 s): with uvicorn's 5 s,
                        # a request sent as the server closes the connection fails (seen under load).
                        "--timeout-keep-alive",
                        "65",
                        # Login throttling keys on the client address: a forwarded one only from our proxies
                        # ("none" is no address, so no connection is trusted; uvicorn's default trusts localhost).
                        "--forwarded-allow-ips",
                        s.trusted_proxies or "none",
                        "--log-level",
                        s.framework_log_level,
                        *([] if s.log_level == "debug" else ["--no-access-log"]),
                    ],
                    f"http://{s.api_host}:{s.api_port}/api/v1/health",
                    # Each uvicorn worker keeps its metrics in files there; /metrics adds them up (api/metrics.py).
                    env={"PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir)},
                )
            )
        return services

    def ports(self, *, with_api: bool = True) -> list[tuple[str, int]]:
        s = self.settings
        ports = [("127.0.0.1", s.dagster_code_server_port), (s.dagster_host, s.dagster_port)]
        if s.llm_provider == "local":
            ports.append((s.local_llm_host, s.local_llm_port))
        if with_api:
            ports.append((s.api_host, s.api_port))
        return ports

    def start(self, *, with_api: bool = True, foreground_logs: bool = False, timeout: float = 180) -> None:
        import socket

        for host, port in self.ports(with_api=with_api):
            with socket.socket() as sock:
                if sock.connect_ex((host, port)) == 0:
                    # Another CoderAI (or anything else) is there: talking to it would test the wrong code.
                    raise RuntimeError(f"{host}:{port} is already in use; stop what runs there first")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.metrics_dir, ignore_errors=True)  # a previous start's counts would be added again
        self.metrics_dir.mkdir()
        env = child_env(self.settings)
        for service in self.plan(with_api=with_api):
            out = None if foreground_logs else (self.log_dir / f"{service.name}.log").open("ab")
            service.log = out
            service.process = subprocess.Popen(
                service.argv,
                env={**env, **service.env},
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT if out else None,
                start_new_session=True,
            )
            self.services.append(service)
            if service.name == "dagster-code-server":
                # The webserver and daemon need the code server listening first.
                self._wait_port("127.0.0.1", self.settings.dagster_code_server_port, service, timeout)
        for service in self.services:
            if service.ready_url:
                self._wait_http(service, timeout)

    def _check_alive(self, service: Service) -> None:
        if service.process is not None and service.process.poll() is not None:
            raise RuntimeError(
                f"{service.name} exited with code {service.process.returncode}; "
                f"see {self.log_dir / (service.name + '.log')}"
            )

    def _wait_port(self, host: str, port: int, service: Service, timeout: float) -> None:
        import socket

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive(service)
            with socket.socket() as sock:
                sock.settimeout(1)
                if sock.connect_ex((host, port)) == 0:
                    return
            time.sleep(0.5)
        raise RuntimeError(f"{service.name} did not listen on {host}:{port} within {timeout:.0f} s")

    def _wait_http(self, service: Service, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive(service)
            try:
                if httpx.get(service.ready_url, timeout=2).status_code < 500:  # type: ignore[arg-type]
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{service.name} was not ready at {service.ready_url} within {timeout:.0f} s")

    def wait(self) -> int:
        """Block until a service exits (then stop the rest); returns its exit code."""
        while True:
            for service in self.services:
                if service.process is not None and service.process.poll() is not None:
                    print(f"{service.name} exited with code {service.process.returncode}", file=sys.stderr)
                    return service.process.returncode or 1
            time.sleep(1)

    def stop(self) -> None:
        for service in reversed(self.services):
            if service.process is not None and service.process.poll() is None:
                os.killpg(service.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for service in reversed(self.services):
            if service.process is None:
                continue
            try:
                service.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(service.process.pid, signal.SIGKILL)
                service.process.wait(5)
            if service.log is not None:
                service.log.close()
        self.services.clear()
