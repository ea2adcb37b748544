"""The README's first steps work as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import yaml

from tests.conftest import ROOT, config_dict

README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end >= 0 else None]


def test_the_use_snippet_runs_as_written(fakes, start_gateway):
    gateway = start_gateway(config_dict(fakes))
    use = section("Use")
    shell = re.search(r"```sh\n(.*?)```", use, re.S).group(1)
    snippet = re.search(r"```python\n(.*?)```", use, re.S).group(1)
    exported = dict(re.findall(r"^export (\w+)=(\S+)", shell, re.M))
    assert set(exported) == {"OPENAI_BASE_URL", "OPENAI_API_KEY"}
    exported["OPENAI_BASE_URL"] = exported["OPENAI_BASE_URL"].replace("http://localhost:8000", gateway.url)
    # The client's own environment: nothing of the gateway's, only what the README says to export.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "TEST_"))} | exported
    result = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "openai Hello from openai"


def test_the_set_up_names_every_key_variable_and_the_python_it_needs():
    set_up = section("Set up")
    shipped = yaml.safe_load((ROOT / "providers.yaml").read_text(encoding="utf-8"))
    for provider in shipped["providers"]:
        if "api_key_env" in provider:
            assert f"`{provider['api_key_env']}`" in set_up, provider["name"]
    assert "Python 3.11" in set_up and "venv" in set_up


def test_the_layout_has_one_line_for_every_module():
    listed = set(re.findall(r"^(gateway/\S+\.py) ", section("Layout"), re.M))
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "gateway").rglob("*.py")}
    assert listed <= modules  # nothing that is gone
    assert {m for m in modules if not m.endswith(("__init__.py", "__main__.py"))} <= listed  # nothing left out
