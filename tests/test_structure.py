"""The shape the README promises: small modules in bot/ and handlers/."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 400


def test_no_module_in_bot_or_handlers_exceeds_400_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for folder in ("bot", "handlers")
        for p in (ROOT / folder).rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"split these modules: {long}"


def test_every_package_has_an_init_so_it_ships() -> None:
    """pyproject finds packages by their __init__.py: a folder of modules without one would not install."""
    for folder in ("bot", "handlers"):
        for d in [ROOT / folder, *(p for p in (ROOT / folder).rglob("*") if p.is_dir())]:
            if any(d.glob("*.py")):
                assert (d / "__init__.py").exists(), f"{d.relative_to(ROOT)} has modules but no __init__.py"
