"""app.preload: the launcher loads what the pages import before the server listens, and every page
tells the browser to load the chart code at once."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from app.preload import CLIENT_JS, chart_code_html

ROOT = Path(__file__).resolve().parent.parent


def page_imports() -> set[str]:
    """The modules the pages import at their top (from this project, torch, numpy and Plotly)."""
    found = set()
    for script in [ROOT / "app" / "main.py", *sorted((ROOT / "app" / "views").glob("*.py"))]:
        for node in ast.parse(script.read_text()).body:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
                for alias in node.names:  # `from cgan import quality` imports cgan.quality
                    path = ROOT.joinpath(*node.module.split("."), alias.name)
                    if path.with_suffix(".py").is_file() or path.is_dir():
                        found.add(f"{node.module}.{alias.name}")
    return {name for name in found if name.split(".")[0] in {"app", "cgan", "torch", "numpy", "plotly"}}


def test_warm_imports_load_every_module_the_pages_import():
    wanted = sorted(page_imports())
    assert "cgan.quality" in wanted and "plotly.graph_objects" in wanted  # the scan sees the pages
    script = ("import json, sys\nfrom app.preload import warm_imports\nseconds = warm_imports()\n"
              f"print(json.dumps([seconds, [m for m in {wanted!r} if m not in sys.modules]]))")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    seconds, missing = json.loads(out.stdout.splitlines()[-1])
    assert missing == [], f"add these to app.preload.MODULES: {missing}"
    assert seconds > 0
    assert "No runtime found" not in out.stderr  # the decorators' stand-in cache check is quiet


def test_the_chart_code_script_names_streamlits_plotly_chunk(tmp_path):
    html = chart_code_html()
    chunk = next(CLIENT_JS.glob("PlotlyChart.*.js"))  # this Streamlit's client has one
    assert html.startswith("<script>") and f'"{chunk.name}"' in html
    assert "window.cganChartCode" in html  # loaded once per browser tab, not on every rerun
    # Another Streamlit that names its chunks differently: nothing is sent, the charts load it.
    assert chart_code_html(tmp_path) == ""
    (tmp_path / "PlotlyChart.a.js").touch()
    (tmp_path / "PlotlyChart.b.js").touch()
    assert chart_code_html(tmp_path) == ""
