#!/usr/bin/env python3
"""Renders the rows the fault and load tests recorded (tests/common/reliability.rs)
into docs/RELIABILITY.md, between its two `suite table` markers.

usage: reliability_table.py ROWS_DIR MARKDOWN_FILE
"""
import datetime
import json
import os
import pathlib
import subprocess
import sys

BEGIN = "<!-- suite table: begin -->"
END = "<!-- suite table: end -->"


def cell(text):
    if isinstance(text, int):
        return f"{text:,}"
    return str(text).replace("|", "\\|").replace("\n", " ")


def recovery(row):
    r = row.get("recovery")
    return "" if r is None else f"{r:.1f} s"


def table(rows):
    head = ["Fault or load", "Mode", "Pushed", "Acknowledged", "Found", "Lost",
            "Duplicated", "Recovery", "Figures", "Test"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in sorted(rows, key=lambda r: (r["fault"].lower(), r["mode"])):
        lines.append("| " + " | ".join(cell(c) for c in [
            r["fault"], r["mode"], r["pushed"], r["acknowledged"], r["found"],
            r["lost"], r["duplicated"], recovery(r), r["detail"], f"`{r['test']}`",
        ]) + " |")
    return "\n".join(lines)


def stamp():
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    day = datetime.date.today().isoformat()
    return (f"Written by `tests/run.sh` on {day} at commit `{commit or 'unknown'}`, "
            f"on a machine with {os.cpu_count()} cores.")


def main():
    rows_dir, doc = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    rows = [json.loads(p.read_text()) for p in sorted(rows_dir.glob("*.json"))]
    if not rows:
        print(f"no reliability rows in {rows_dir}; {doc} left as it is")
        return
    text = doc.read_text()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        sys.exit(f"{doc} has no '{BEGIN}' ... '{END}' section")
    body = f"{BEGIN}\n{stamp()}\n\n{table(rows)}\n"
    doc.write_text(text[:start] + body + text[end:])
    lost = sum(r["lost"] for r in rows)
    dup = sum(r["duplicated"] for r in rows)
    print(f"{doc}: {len(rows)} rows, {lost} lost, {dup} duplicated")


if __name__ == "__main__":
    main()
