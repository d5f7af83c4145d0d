"""Azurite, the Azure Storage emulator, started per test module on 127.0.0.1 with a free port and in-memory storage.

The fixture sets `AZURE_STORAGE_CONNECTION_STRING` for the tests (the way a user points tunelake at a real storage
account) and creates a fresh container per test, so lakes never share state.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import REPO, require

# Azurite's documented development account (public, emulator only).
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"azurite exited with {proc.returncode}: {log.read_text()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"azurite did not listen on 127.0.0.1:{port} within {timeout:.0f}s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running Azurite blob service; yields its connection string."""
    require("adlfs", "pip install 'tunelake[azure]'")
    require("azure.storage.blob", "pip install 'tunelake[azure]'")
    binary = REPO / "node_modules" / ".bin" / "azurite-blob"
    if not binary.exists():
        require("bin:azurite-blob", "npm ci at the repository root installs Azurite")
        binary = Path(require("bin:azurite-blob"))  # type: ignore[arg-type]
    port = _free_port()
    work = tmp_path_factory.mktemp("azurite")
    log = work / "azurite.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(binary), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--skipApiVersionCheck", "--loose",
             "--disableTelemetry", "--inMemoryPersistence"],
            stdout=out, stderr=subprocess.STDOUT, cwd=work, start_new_session=True,
        )
    try:
        _wait_listening(port, proc, log)
        yield (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
               f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def container(azurite: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new, empty container; the environment points adlfs at Azurite."""
    from azure.storage.blob import BlobServiceClient

    for var in ("AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_SAS_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite)
    name = f"lake-{uuid.uuid4().hex[:12]}"
    BlobServiceClient.from_connection_string(azurite).create_container(name)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    return name
