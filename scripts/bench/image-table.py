#!/usr/bin/env python3
"""Prints scripts/bench-image's results: image-table.py WORK_DIR RUNS WARM_RUNS [NOTE]"""
import json, os, re, statistics, sys

work, runs, warm_runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
note = sys.argv[4] if len(sys.argv) > 4 else ""
PROJECTS = os.environ.get("PROJECTS", "hello ffmpeg").split()
res, logs = os.path.join(work, "res"), os.path.join(work, "logs")
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


PHASES = [  # (label, first line of the phase) in liftoff's --log-level info output
    ("bundle + build dir", r"Building trigger code"),
    ("image set-up", r"Building image"),
    ("pull base + apt indexes", r"Pulling the base image"),
    ("resolve", r"\S+ \S+ main/binary-\S+/Packages"),
    ("packages: download, unpack, layer, dpkg --configure", r"Installing \d+ Debian packages"),
    ("npm i (sandbox)", r"Installing dependencies \(npm i\)"),
    ("index + app/index layers + OCI write", r"Indexing tasks"),
    (None, r"✔ Built image"),
]


def liftoff_phases(name):
    p = os.path.join(logs, f"liftoff-{name}.log")
    if not os.path.exists(p):
        return []
    marks = []
    for line in open(p):
        m = re.match(r"\s*([\d.]+) (.*)", line)
        if not m:
            continue
        ts, text = float(m.group(1)), m.group(2)
        for i, (_, rx) in enumerate(PHASES):
            if re.match(rx, text) and not any(k == i for k, _ in marks):
                marks.append((i, ts))
    marks.sort()
    return [(PHASES[i][0], marks[n + 1][1] - ts) for n, (i, ts) in enumerate(marks[:-1]) if PHASES[i][0]]


def stalls(name):
    """Gaps >= 4.5 s before a download starts (the resolver's 5 s retry)."""
    p = os.path.join(logs, f"liftoff-{name}.log")
    if not os.path.exists(p):
        return []
    prev, gaps = None, []
    for line in open(p):
        m = re.match(r"\s*([\d.]+) (.*)", line)
        if not m:
            continue
        ts = float(m.group(1))
        if prev is not None and ts - prev >= 4.5 and re.match(r"(downloading|fetching) ", m.group(2)):
            gaps.append(ts - prev)
        prev = ts
    return gaps


def docker_steps(proj):
    p = os.path.join(logs, f"docker-{proj}-1.build.log")
    if not os.path.exists(p):
        return []
    names, done = {}, {}
    for line in open(p, errors="replace"):
        m = re.match(r"#(\d+) (\[.*|exporting to image.*)$", line.rstrip())
        if m and m.group(1) not in names:
            names[m.group(1)] = re.sub(r"\s+", " ", m.group(2))
        m = re.match(r"#(\d+) DONE ([\d.]+)s", line)
        if m:
            done[m.group(1)] = float(m.group(2))
    return [(names[k], done[k]) for k in sorted(done, key=int) if k in names]


print()
print(f"Image build, cold: liftoff (daemonless) vs docker build (dockerd 20.10 + BuildKit, vfs), median of {runs} run(s)")
dns = os.path.join(res, "dns.txt")
if os.path.exists(dns):
    print(f"(resolver check: {open(dns).read().strip()})")
print(f"{'project':<8} {'liftoff':>9} {'docker pull':>12} {'docker build':>13} {'docker total':>13} {'ratio':>7}  {'target <= 0.50x':<16} liftoff bundle-only")
for proj in PROJECTS:
    lc = med(t.get((proj, "liftoff-cold"), []))
    if (proj, "docker-build") not in t:
        print(f"{proj:<8} {lc:8.1f}s  docker build FAILED (see the log above)")
        continue
    pulls, builds = t[(proj, "docker-pull")], t[(proj, "docker-build")]
    tot = [a + b for a, b in zip(pulls, builds)]
    ratio = lc / med(tot)
    ok = "OK" if ratio <= 0.5 else "MISSED"
    print(f"{proj:<8} {lc:8.1f}s {med(pulls):11.1f}s {med(builds):12.1f}s {med(tot):12.1f}s {ratio:6.2f}x  {ok:<16} "
          f"{med(t.get((proj, 'liftoff-bundle-only'), [])):.2f} s")
    st = [stalls(f"{proj}-cold-{r}") for r in range(1, runs + 1)]
    print(f"{'':8} liftoff download stalls (gap >= 4.5 s before a download starts), per run: "
          + "; ".join(f"{len(g)} = {sum(g):.1f} s" for g in st))
    seeded = t.get((proj, "liftoff-debs-seeded"))
    if seeded:
        print(f"{'':8} diagnostic: liftoff cold with the .debs pre-seeded: {seeded[0]:.1f} s "
              f"(ratio {seeded[0] / med(tot):.2f}x; stalls {len(stalls(f'{proj}-seeded'))})")
    if runs > 1:
        print(f"{'':8} runs: liftoff {', '.join(f'{x:.1f}' for x in t[(proj, 'liftoff-cold')])} s; "
              f"docker pull+build {', '.join(f'{a:.1f}+{b:.1f}' for a, b in zip(pulls, builds))} s")
if note:
    print(f"(docker: {note})")

for proj in PROJECTS:
    j = load(f"{proj}-cold-1")
    if not j or not j.get("image"):
        continue
    img = j["image"]
    print()
    print(f"liftoff image layers, {proj} (compressed blob sizes, from --json; tasks: "
          f"{', '.join(x['id'] for x in img.get('tasks', []))}; manifest {img['manifestDigest'][:19]})")
    total = 0
    for layer in img["layers"]:
        total += layer["size"]
        print(f"  {layer['name']:<22} {layer['digest'][7:19]}  {mib(layer['size'])}")
    print(f"  {'total':<22} {'':12}  {mib(total)}")
    ds = t.get((proj, "docker-size"))
    if ds:
        print(f"  (docker's image: {mib(ds[0]).strip()} uncompressed, `docker image inspect` .Size; not comparable 1:1)")
    ph = liftoff_phases(f"{proj}-cold-1")
    if ph:
        print(f"  liftoff cold run 1, phases: " + "; ".join(f"{n} {d:.1f}s" for n, d in ph))
    st = [(n, d) for n, d in docker_steps(proj) if d >= 0.5]
    if st:
        print(f"  docker run 1, BuildKit steps >= 0.5 s (stages run in parallel, so they do not add up):")
        for n, d in st:
            print(f"    {d:6.1f}s  {n[:100]}")

warm = t.get(("hello", "liftoff-warm"), [])
if warm:
    print()
    ok = "OK" if med(warm) <= 2.0 else "MISSED"
    print(f"Warm rebuild, hello, one line of trigger/hello.ts changed, same cache dir: median {med(warm):.2f} s  (target <= 2 s: {ok})")
    cold = load("hello-cold-1")
    prev = cold["image"]["manifestDigest"] if cold else None
    for i in range(1, warm_runs + 1):
        j = load(f"hello-warm-{i}")
        if not j or not j.get("image") or i > len(warm):
            continue
        rebuilt = [l["name"] for l in j["image"]["layers"] if not l.get("cached")]
        d = j["image"]["manifestDigest"]
        print(f"  run {i}: {warm[i - 1]:5.2f} s  layers not from cache: {', '.join(rebuilt) or 'none'}; "
              f"manifest {d[7:19]} ({'new' if d != prev else 'UNCHANGED'})")
        prev = d
    ph = liftoff_phases("hello-warm-1")
    if ph:
        print(f"  warm run 1, phases: " + "; ".join(f"{n} {d:.1f}s" for n, d in ph))
