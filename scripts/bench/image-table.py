#!/usr/bin/env python3
"""Prints scripts/bench-image's results: image-table.py RESULTS_DIR RUNS WARM_RUNS [NOTE]"""
import json, os, statistics, sys

res, runs, warm_runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
note = sys.argv[4] if len(sys.argv) > 4 else ""
t = {}
for line in open(os.path.join(res, "times.tsv")):
    proj, what, run, val = line.split()
    t.setdefault((proj, what), []).append(float(val))


def load(name):
    p = os.path.join(res, name + ".json")
    return json.load(open(p)) if os.path.exists(p) else None


def mib(b):
    return f"{b / 1048576:8.1f} MiB" if b >= 1048576 else f"{b / 1024:8.1f} KiB"


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt(xs):
    if not xs:
        return "     -"
    s = f"{med(xs):6.1f} s"
    return s + (f" (runs: {', '.join(f'{x:.1f}' for x in xs)})" if len(xs) > 1 else "")


print()
print(f"Image build: liftoff (daemonless) vs docker build (dockerd 20.10, BuildKit, vfs), cold, median of {runs} run(s)")
print(f"{'project':<8} {'liftoff':>9} {'docker pull':>12} {'docker build':>13} {'docker total':>13} {'ratio':>7}  target <= 0.50x   (liftoff bundle-only)")
for proj in ["hello", "ffmpeg"]:
    lc = med(t.get((proj, "liftoff-cold"), []))
    if (proj, "docker-failed") in t and (proj, "docker-build") not in t:
        print(f"{proj:<8} {lc:8.1f}s  docker build FAILED (see log above)")
        continue
    pull = med(t.get((proj, "docker-pull"), []))
    build = med(t.get((proj, "docker-build"), []))
    tot = [a + b for a, b in zip(t.get((proj, "docker-pull"), []), t.get((proj, "docker-build"), []))]
    dt = med(tot)
    ratio = lc / dt
    ok = "OK" if ratio <= 0.5 else "MISSED"
    print(f"{proj:<8} {lc:8.1f}s {pull:11.1f}s {build:12.1f}s {dt:12.1f}s {ratio:6.2f}x  {ok:<16} ({med(t.get((proj, 'liftoff-bundle-only'), [])):.2f} s)")
    if runs > 1:
        print(f"{'':8} liftoff runs: {', '.join(f'{x:.1f}' for x in t[(proj, 'liftoff-cold')])}; docker totals: {', '.join(f'{x:.1f}' for x in tot)}")
if note:
    print(f"(docker side: {note}; its build is timed after that untimed step)")

for proj in ["hello", "ffmpeg"]:
    j = load(f"{proj}-cold-1")
    if not j or not j.get("image"):
        continue
    img = j["image"]
    print()
    print(f"liftoff image layers, {proj} (compressed blob sizes, from --json; {len(img.get('tasks', []))} tasks, manifest {img['manifestDigest'][:19]})")
    total = 0
    for layer in img["layers"]:
        total += layer["size"]
        print(f"  {layer['name']:<16} {layer['digest'][7:19]}  {mib(layer['size'])}")
    print(f"  {'total':<16} {'':12}  {mib(total)}")
    ds = t.get((proj, "docker-size"))
    if ds:
        print(f"  (docker's image for comparison: {mib(ds[0]).strip()} uncompressed, `docker image inspect` .Size)")

warm = t.get(("hello", "liftoff-warm"), [])
if warm:
    print()
    ok = "OK" if med(warm) <= 2.0 else "MISSED"
    print(f"Warm rebuild, hello, one line of trigger/hello.ts changed, same cache dir: median {med(warm):.2f} s  (target <= 2 s: {ok})")
    cold = load("hello-cold-1")
    prev = cold["image"]["manifestDigest"] if cold else None
    for i in range(1, warm_runs + 1):
        j = load(f"hello-warm-{i}")
        if not j or not j.get("image"):
            continue
        rebuilt = [l["name"] for l in j["image"]["layers"] if not l.get("cached")]
        d = j["image"]["manifestDigest"]
        print(f"  run {i}: {warm[i - 1]:5.2f} s  layers rebuilt: {', '.join(rebuilt) or 'none'}; "
              f"manifest {d[7:19]} ({'new' if d != prev else 'UNCHANGED'})")
        prev = d
