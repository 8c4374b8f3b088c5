"""`edgekit ui`: MLflow's own web UI on the registry, on loopback unless told otherwise.

The UI is `mlflow server` run as a child process on the registry's tracking
store; edgekit waits until it answers its health check, prints the URL, and
stops it on Ctrl+C or SIGTERM. A registry that already is an MLflow server
needs nothing started: its URL is printed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import click

from edgekit.commands._options import registry_uri
from edgekit.errors import EdgekitError

STARTUP_SECONDS = 120  # MLflow imports itself and migrates the database first: slow on a busy machine


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _port_taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _stop(process: subprocess.Popen) -> None:
    """Stop the server and the workers it started (they share its process group)."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def _interrupt(signum, frame):
    raise KeyboardInterrupt


@click.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 shares the registry with your network.")
@click.option("--port", "-p", type=click.IntRange(0, 65535), default=5000, show_default=True,
              help="Port to listen on (0: any free port).")
def ui_command(host: str, port: int):
    """Open MLflow's UI on the registry: models, conversions and benchmark runs."""
    from edgekit.registry.location import locate

    location = locate(registry_uri())
    if location.tracking_uri.startswith(("http://", "https://")):
        click.echo(f"the registry is an MLflow server: open {location.tracking_uri}")
        return
    if location.embedded and not location.has_records():
        raise EdgekitError(f"registry {location.uri} is empty: add a model with `edgekit register PATH --name NAME`")
    if port == 0:
        port = _free_port(host)
    elif _port_taken(host, port):
        raise EdgekitError(f"port {port} on {host} is in use: pass another with --port (0 picks a free one)")
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", location.tracking_uri,
               "--host", host, "--port", str(port), "--workers", "1"]
    if location.artifact_root:
        command += ["--default-artifact-root", location.artifact_root, "--no-serve-artifacts"]
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    url = f"http://{shown_host}:{port}"
    log = Path(location.store_dir).parent / "ui.log" if location.embedded else None
    output = open(log, "ab") if log else subprocess.DEVNULL
    # its own process group, so stopping it stops the workers it forks too
    # the UI needs no background job runner (a second process, for GenAI evaluation jobs)
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}
    process = subprocess.Popen(command, stdout=output, stderr=output, stdin=subprocess.DEVNULL,
                               start_new_session=True, env=env)
    # SIGTERM (a service manager, a test) stops the server as Ctrl+C does
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _healthy(url):
            if process.poll() is not None:
                where = f"; its log is {log}" if log else ""
                raise EdgekitError(f"mlflow server stopped with exit code {process.returncode}{where}")
            if time.monotonic() > deadline:
                raise EdgekitError(f"mlflow server did not answer on {url} within {STARTUP_SECONDS} s")
            time.sleep(0.3)
        click.echo(f"MLflow UI on registry {location.uri}: {url}  (Ctrl+C stops it)")
        process.wait()
        raise EdgekitError(f"mlflow server stopped with exit code {process.returncode}")
    except KeyboardInterrupt:
        pass
    finally:
        _stop(process)
        if log:
            output.close()
