#!/usr/bin/env python3
"""Write a host's .env from the docker-mode template and the values given for this host.

    merge_env.py TEMPLATE [VALUES ...] > .env

TEMPLATE is the release's .env.docker.example: its lines, comments and order are kept. Each VALUES
file (KEY=VALUE lines) is applied in turn; a non-empty value replaces the key's value, an empty one
never clears it (the secrets file from `make docker-secrets` leaves the addresses empty, and those come
from Terraform's file given after it). Keys the template lacks are appended. Standard library only:
it runs on a fresh Debian host before anything else is installed.
"""
from __future__ import annotations

import sys


def parse(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or "=" not in stripped:
            continue
        key, _, value = stripped.partition("=")
        values[key.strip()] = value.strip()
    return values


def merge(template: str, *overrides: dict[str, str]) -> str:
    wanted: dict[str, str] = {}
    for values in overrides:
        wanted.update({key: value for key, value in values.items() if value != ""})
    lines, seen = [], set()
    for line in template.splitlines():
        key, sep, _ = line.partition("=")
        key = key.strip()
        if sep and not line.lstrip().startswith("#") and key in wanted:
            lines.append(f"{key}={wanted[key]}")
            seen.add(key)
        else:
            lines.append(line)
    extra = [f"{key}={value}" for key, value in wanted.items() if key not in seen]
    if extra:
        lines += ["", "# --- Set for this host (not in the template) ---", *extra]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as handle:
        template = handle.read()
    overrides = []
    for path in argv[2:]:
        with open(path, encoding="utf-8") as handle:
            overrides.append(parse(handle.read()))
    sys.stdout.write(merge(template, *overrides))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
