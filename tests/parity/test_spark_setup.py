"""What a user without pyspark or Java sees when they ask for the Spark engine: one error naming the fix."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from tests.conftest import require

SCRIPT = textwrap.dedent("""
    import sys
    {prelude}
    from tunelake.config import load_config
    from tunelake.errors import TunelakeError
    from tunelake.warehouse.engine import make_engine
    cfg = load_config(sys.argv[1], {{"engine": "spark"}})
    try:
        make_engine(cfg, cfg.warehouse_dir / "wh-x.duckdb")
    except TunelakeError as exc:
        print("ERROR", exc, "| HINT", exc.hint)
    else:
        print("STARTED")
""")


def run(tmp_path, prelude: str, env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(prelude=prelude), str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=60)
    return out.stdout + out.stderr


@pytest.mark.spark
def test_missing_pyspark_says_how_to_install(tmp_path):
    text = run(tmp_path, "sys.modules['pyspark'] = None", dict(os.environ))
    assert "ERROR" in text and "pyspark" in text
    assert "pip install 'tunelake[spark]'" in text


@pytest.mark.spark
def test_missing_java_says_how_to_install(tmp_path):
    require("pyspark", "pip install 'tunelake[spark]'")
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = os.path.dirname(sys.executable)  # the venv's bin: python, but no java
    text = run(tmp_path, "", env)
    assert "ERROR" in text and "Java" in text
    assert "openjdk-17" in text and "tunelake[spark]" in text
