"""benchmarks/write_benchmarks_md.py: extra report sections keep their records and images."""

from __future__ import annotations

import os

from tests.conftest import load_benchmark


def test_extra_section_copies_records_and_images(tmp_path):
    mod = load_benchmark("write_benchmarks_md")
    rep = tmp_path / "reports" / "vid"
    rep.mkdir(parents=True)
    (rep / "report.md").write_text("# Video\n\n| a |\n\n![fig](motion.png)\n")
    (rep / "results.json").write_text('{"x": 1}\n')
    (rep / "motion.png").write_bytes(b"\x89PNG fake")
    assets = tmp_path / "docs"
    lines = mod.extra_section(rep, assets)
    assert lines[0] == "## Video"
    assert f"![fig]({(assets / 'vid' / 'motion.png').as_posix()})" in lines
    for name in ("report.md", "results.json", "motion.png"):
        assert (assets / "vid" / name).read_bytes() == (rep / name).read_bytes()
    # the kept copy can itself be the source of a later page, with the run's date even when
    # its files' times are those of a later checkout
    os.utime(rep / "report.md", (1_700_000_000, 1_700_000_000))  # 2023-11-14
    mod.keep_records(rep, assets, "report.md")
    os.utime(assets / "vid" / "report.md", (1_900_000_000, 1_900_000_000))  # 2030
    again = mod.extra_section(assets / "vid", assets)
    assert again[0] == "## Video" and (assets / "vid" / "motion.png").is_file()
    assert any(line.startswith("Run on 2023-11-14: ") for line in again)


def test_extra_section_title(tmp_path):
    mod = load_benchmark("write_benchmarks_md")
    rep = tmp_path / "r"
    rep.mkdir()
    (rep / "report.md").write_text("# Benchmark\n\ntext\n")
    lines = mod.extra_section(rep, tmp_path / "docs", "Single images, Low / High")
    assert lines[0] == "## Single images, Low / High" and "text" in lines
