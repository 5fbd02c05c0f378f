"""docs/reliability.md is rendered from the figures the reliability tests write."""
import json

from tests.reliability.figures import Figures
from tests.reliability.report import main


def test_the_report_shows_every_test_with_its_faults_figures_and_memory(tmp_path, monkeypatch):
    monkeypatch.setenv("VPA_RELIABILITY_DIR", str(tmp_path / "figures"))
    fig = Figures("test_kills", "Five SIGKILLs.")
    fig.data["module"] = "test_crash"
    fig.fault(kind="SIGKILL", service="detector", recovery_seconds=12.5)
    fig.rss("detector", [(0.0, 102_400), (2.0, 204_800)], peak_kib=204_800)
    fig.set(events=120_000, lost=0, duplicated=0, store_tasks=5_000)
    fig.finish("passed")
    out = tmp_path / "reliability.md"
    assert main([str(tmp_path / "figures"), str(out)]) == 0
    text = out.read_text()
    assert "| test_kills | passed | 120,000 | 0 | 0 | 1 |" in text
    assert "| SIGKILL | detector | 12.5 |" in text
    assert "- store tasks: 5,000" in text
    assert "| detector | 2 | 100 | 200 | 200 |" in text
    assert json.loads((tmp_path / "figures" / "test_kills.json").read_text())["outcome"] == "passed"


def test_without_figures_it_says_how_to_get_them(tmp_path, capsys):
    assert main([str(tmp_path)]) == 1
    assert "VPA_RELIABILITY_DIR" in capsys.readouterr().err
