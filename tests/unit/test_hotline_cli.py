"""`walletdesk hotline check-flow FILE`: an operator checks a call flow before using it."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from typer.testing import CliRunner

from walletdesk.cli import app

SHIPPED = resources.files("walletdesk.hotline").joinpath("flows/default.yaml")


def check_flow(path: Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(app, ["hotline", "check-flow", str(path)])
    return result.exit_code, result.output.splitlines()


def test_the_shipped_flow_is_ok() -> None:
    with resources.as_file(SHIPPED) as shipped:
        code, lines = check_flow(shipped)
    assert code == 0
    assert len(lines) == 1 and lines[0].startswith("ok: ") and lines[0].endswith(" states")
    assert int(lines[0].split()[1]) > 10


def _break(text: str, old: str, new: str) -> tuple[str, int]:
    """`text` with its first `old` changed to `new`, and the number of that line."""
    assert text.count(old) >= 1
    at = text.index(old)
    return text[:at] + new + text[at + len(old) :], text[:at].count("\n") + 1


def test_a_broken_flow_lists_each_problem_with_its_line(tmp_path: Path) -> None:
    text = SHIPPED.read_text("utf-8")
    text, unknown_action = _break(text, "action: identify_caller", "action: identify_the_caller")
    text, unknown_state = _break(text, "next: check_hours", "next: check_hour")
    broken = tmp_path / "my-flow.yaml"
    broken.write_text(text, "utf-8")

    code, lines = check_flow(broken)
    assert code == 1
    assert len(lines) == 2 and all(line.startswith(f"{broken}: line ") for line in lines)
    assert any(
        line.startswith(f"{broken}: line {unknown_action}: ") and "identify_the_caller" in line
        for line in lines
    )
    assert any(
        line.startswith(f"{broken}: line {unknown_state}: ") and "'check_hour'" in line
        for line in lines
    )


def test_a_missing_file_fails(tmp_path: Path) -> None:
    code, lines = check_flow(tmp_path / "nowhere.yaml")
    assert code == 1 and "cannot read" in lines[0]
