#!/usr/bin/env python3
"""Costs per instruction of one function from a callgrind profile made with
--dump-instr=yes (`CG_ARGS=--dump-instr=yes CG_KEEP=dir scripts/bench-compare.sh`).

usage: cg-instr.py PROFILE BINARY SYMBOL [QUERIES] [--by-line [TEXT]]

SYMBOL is a piece of the mangled name (e.g. 3net3udp5serve17h for `net::udp::serve`); BINARY
must be the very build that was profiled (line tables on: CARGO_PROFILE_RELEASE_DEBUG=
line-tables-only). Costs are divided by QUERIES (default 1). Without --by-line: every
instruction of the function that ran, with its cost. With --by-line: the self cost grouped by
the innermost source line of the inlining chain, and the line of this project's code it was
inlined into, most costly first; with TEXT, only instructions whose chain names TEXT (a file
and line such as plain.rs:140), one per line with the whole chain.
"""
import collections
import re
import subprocess
import sys


def self_costs(path):
    """Self cost (first event) per instruction address; calls' inclusive costs skipped."""
    cost = collections.Counter()
    addr, skip = 0, False
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line[0].isalpha() or line[0] == "#":
                skip = skip or line.startswith("calls=")
                continue
            parts = line.split()
            a = parts[0]
            if a.startswith("0x"):
                addr = int(a, 16)
            elif a.startswith("+"):
                addr += int(a[1:])
            elif a.startswith("-"):
                addr -= int(a[1:])
            if skip:
                skip = False
                continue
            if len(parts) >= 3:
                cost[addr] += int(parts[2])
    return cost


def function_range(binary, symbol):
    out = subprocess.run(["nm", "-S", "--defined-only", binary], capture_output=True, text=True).stdout
    for line in out.splitlines():
        f = line.split()
        if len(f) == 4 and f[2] in "tT" and symbol in f[3]:
            lo = int(f[0], 16)
            return lo, lo + int(f[1], 16), f[3]
    sys.exit(f"no function named like {symbol} in {binary}")


def chains(binary, addrs):
    out = subprocess.run(
        ["addr2line", "-a", "-i", "-e", binary],
        input="\n".join(hex(a) for a in addrs) + "\n",
        capture_output=True,
        text=True,
    ).stdout
    result, cur = {}, None
    for line in out.splitlines():
        if line.startswith("0x"):
            cur = int(line, 16)
            result[cur] = []
        elif cur is not None:
            result[cur].append(line.split(" (discriminator")[0])
    return result


def main():
    args = sys.argv[1:]
    if len(args) < 3:
        sys.exit(__doc__)
    path, binary, symbol = args[:3]
    rest = args[3:]
    queries = float(rest.pop(0)) if rest and not rest[0].startswith("--") else 1.0
    by_line = "--by-line" in rest
    text = rest[rest.index("--by-line") + 1] if by_line and len(rest) > rest.index("--by-line") + 1 else None
    cost = self_costs(path)
    lo, hi, name = function_range(binary, symbol)
    ran = sorted(a for a in cost if lo <= a < hi)
    dis = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", f"--start-address={lo}", f"--stop-address={hi}", binary],
        capture_output=True,
        text=True,
    ).stdout
    code = {}
    for line in dis.splitlines():
        m = re.match(r"^\s+([0-9a-f]+):\s*(.*)$", line)
        if m:
            code[int(m.group(1), 16)] = m.group(2)
    total = sum(cost[a] for a in ran) / queries
    print(f"{name}: {total:.1f} per query (self)")
    if not by_line:
        for a in ran:
            print(f"{cost[a] / queries:8.2f}  {a:x}  {code.get(a, '?')}")
        return
    where = chains(binary, ran)
    short = lambda f: f.split("/src/", 1)[-1] if "/work/" in f else f.split("/")[-1]
    if text:
        for a in ran:
            chain = where.get(a, [])
            if any(text in c for c in chain):
                print(f"{cost[a] / queries:6.2f} {code.get(a, '?'):58s} {' <- '.join(short(c) for c in chain)}")
        return
    groups = collections.Counter()
    for a in ran:
        chain = where.get(a, [])
        ours = [c for c in chain if "/work/" in c and "/.cargo/" not in c]
        key = (short(chain[0]) if chain else "?") + " <- " + (short(ours[0]) if ours else "?")
        groups[key] += cost[a]
    for key, c in groups.most_common(50):
        print(f"{c / queries:8.1f}  {key}")


if __name__ == "__main__":
    main()
