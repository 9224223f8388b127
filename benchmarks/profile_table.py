"""Before / after table of two ``burstkpn denoise --profile FILE.json`` reports (markdown).

python benchmarks/profile_table.py docs/speed/real_before.json docs/speed/real_after.json
"""

from __future__ import annotations

import argparse
import json


def rows(report: dict) -> dict[tuple[str, ...], dict]:
    return {(*s["parents"], s["stage"]): s for s in report["stages"]}


def merged_order(first: list[tuple], second: list[tuple]) -> list[tuple]:
    """The stages of both reports in run order: ``first``'s, with each stage only ``second``
    has placed after its predecessor in ``second`` (so new sub-stages sit under their parent,
    not at the end)."""
    order = list(first)
    for i, key in enumerate(second):
        if key in order:
            continue
        at = next((order.index(p) + 1 for p in reversed(second[:i]) if p in order), len(order))
        # after the predecessor's own sub-stages that ``first`` alone has
        while at < len(order) and len(order[at]) > len(key) and order[at] not in second:
            at += 1
        order.insert(at, key)
    return order


def table(before: dict, after: dict) -> str:
    a, b = rows(before), rows(after)
    lines = [
        "| stage | count | before s | after s | change | peak RSS MiB before | after |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for key in merged_order(list(a), list(b)):
        sa, sb = a.get(key), b.get(key)
        label = "&nbsp;&nbsp;" * (len(key) - 1) + key[-1]
        if sa is not None and sb is not None and sa["count"] > 1:
            label += f" (mean {sa['mean_s']:.3f} / {sb['mean_s']:.3f} s)"
        count = (sb or sa)["count"]

        def cell(s, field, fmt):
            return "" if s is None else format(s[field], fmt)

        change = ""
        if sa is not None and sb is not None and sa["seconds"] > 0:
            change = f"{sb['seconds'] / sa['seconds']:.2f}x"
        lines.append(
            f"| {label} | {count} | {cell(sa, 'seconds', '.2f')} | {cell(sb, 'seconds', '.2f')} "
            f"| {change} | {cell(sa, 'peak_rss_mib', '.0f')} | {cell(sb, 'peak_rss_mib', '.0f')} |"
        )
    lines.append(
        f"| **total** | | {before['total_s']:.1f} | {after['total_s']:.1f} | "
        f"{after['total_s'] / before['total_s']:.2f}x | {before['peak_rss_mib']:.0f} | "
        f"{after['peak_rss_mib']:.0f} |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before")
    p.add_argument("after")
    args = p.parse_args(argv)
    with open(args.before) as f, open(args.after) as g:
        print(table(json.load(f), json.load(g)))


if __name__ == "__main__":
    main()
