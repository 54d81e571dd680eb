#!/usr/bin/python3
"""Runs every subcommand that reads a model or data file on the adversarial
corpus (make_corpus.py) and checks what each must do (issue 24, item 4).

    run_corpus.py --bsp BSP --make-test-model MTM --make-data MDH [--known FILE]

A failing run:
  error expected: not exit 1 or 2, or not exactly one stderr line 'bsp SUB: ...',
                  or an output (or temporary) file left, or the input changed;
  ok expected:    not exit 0, or stderr other than 'bsp SUB: ...' lines, or the
                  input changed, or a file other than the output left, or (with
                  a reference) a report or output file different from the
                  reference's;
  either:         a clean error, or success as 'ok' (a reference that fails
                  makes the case fail too);
  any:            a signal, or more than --timeout seconds, or an error that
                  is 'out of memory' (more than --memory MB of address space)
                  or 'internal error' (a standard exception): a failure that
                  no check of the file caught.
--known lists the runs that fail today ('CASE SUBCOMMAND  # cause' lines);
they are reported but do not fail the test, and a listed run that passes
fails it (the list must shrink as fixes land).
"""
import argparse
import concurrent.futures
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# How each subcommand runs: the cheapest invocation that still does its work.
# IN is the model, DATA the data file, OUT the output (None: no output file).
COMMANDS = {
    "info": (["info", "IN"], None),
    "info-json": (["info", "--json", "IN"], None),
    "prune": (["prune", "IN", "--pattern", "block:8x8", "--density", "0.5", "--force", "-q", "-o", "OUT"], "out.h5"),
    "finetune": (["finetune", "IN", "--data", "DATA", "--epochs", "1", "--limit", "8", "--batch", "8",
                  "--no-augment", "-q", "-o", "OUT"], "out.h5"),
    "eval": (["eval", "IN", "--data", "DATA", "--limit", "8", "--json"], None),
    "compact": (["compact", "IN", "-o", "OUT"], "out.h5"),
    "compact-int8": (["compact", "IN", "--dtype", "int8", "--calib", "DATA", "--calib-images", "4", "-o", "OUT"],
                     "out.h5"),
    "export": (["export", "IN", "-o", "OUT"], "out.onnx"),
    "export-int8": (["export", "IN", "--dtype", "int8", "-o", "OUT"], "out.onnx"),
    "schedule": (["schedule", "IN", "--target", "aie2:2x2", "-o", "OUT"], "out.h5"),
    "codegen": (["codegen", "IN", "-o", "OUT"], "out.h5"),
    "sim": (["sim", "IN", "--images", "1"], None),
    "estimate": (["estimate", "IN"], None),
    "bench": (["bench", "IN", "--reps", "1", "--baseline", "dense"], None),
}
# Output files that are byte-identical for the same model (bsp-format(5)):
# compared with the reference's. finetune's records its time, bench's report
# is timings.
BYTE_OUTPUTS = {"prune", "compact", "compact-int8", "export", "export-int8", "schedule", "codegen"}
REPORTS = {"info", "info-json", "eval", "estimate", "sim"}


def sub_name(cmd):
    return COMMANDS[cmd][0][0]


def file_state(path, content=True):
    """What must not change: size, modification time and the bytes' hash (not
    ctime: the other worker's links to the same corpus file change it)."""
    st = os.stat(path)
    digest = ""
    if content:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            h.update(fh.read())
        digest = h.hexdigest()
    return (st.st_size, st.st_mtime_ns, digest)


def place(src, dst):
    """The run's input: a hard link to the corpus file (no copy), else a copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def normalise(cmd, out):
    """The part of a report that must match the reference's."""
    if cmd == "info":
        # A dropped group's reason is printed; the reference has no group at all.
        # The bytes of the file's parts (from "file:" to the blank line) are the
        # file's storage, which an edit changes without changing the model.
        lines, skip = [], False
        for l in out.splitlines():
            skip = l.startswith("file: ") or (skip and l != "")
            if not skip and "ignored" not in l and "dropped" not in l:
                lines.append(l)
        return "\n".join(lines)
    if cmd in ("info-json", "eval"):
        try:
            d = json.loads(out)
        except ValueError:
            return out
        if isinstance(d, dict):
            for k in list(d):
                if k.endswith("_dropped") or k in ("images_per_s", "seconds", "file_bytes"):
                    del d[k]
        return json.dumps(d, sort_keys=True)
    return out


class Run:
    def __init__(self, case, cmd, expect):
        self.case, self.cmd, self.expect = case, cmd, expect
        self.rc = None
        self.stdout = self.stderr = ""
        self.out_hash = None
        self.problems = []
        self.seconds = 0.0
        self.known = ""  # the cause known_failures.txt gives, if listed

    @property
    def key(self):
        return "%s %s" % (self.case["name"], self.cmd)


def limit_memory(mb):
    def f():
        os.setsid()
        if mb > 0:
            resource.setrlimit(resource.RLIMIT_AS, (mb << 20, mb << 20))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return f


def execute(run, corpus, work, bsp, timeout, memory):
    # A run listed as a known timeout gets a short limit: it is expected to
    # hang, and once fixed it finishes in well under a second (tiny models).
    if run.known.startswith("timeout"):
        timeout = min(timeout, 5.0)
    case, cmd = run.case, run.cmd
    d = os.path.join(work, case["name"].replace("/", "_"), cmd)
    os.makedirs(d)
    model = os.path.join(d, "in.h5")
    data = os.path.join(d, "data.h5")
    inputs = ["in.h5", "data.h5"]
    if case["kind"] == "data":
        place(os.path.join(corpus, "bases", "block.h5"), model)
        place(os.path.join(corpus, case["file"]), data)
    elif case["kind"] == "idx":  # a directory of IDX files
        place(os.path.join(corpus, case["model"]), model)
        data = os.path.join(d, "data")
        os.makedirs(data)
        src = os.path.join(corpus, case["file"])
        for f in sorted(os.listdir(src)):
            place(os.path.join(src, f), os.path.join(data, f))
        inputs = ["in.h5"] + [os.path.join("data", f) for f in sorted(os.listdir(src))]
    else:
        place(os.path.join(corpus, case["file"]), model)
        place(os.path.join(corpus, "bases", "data.h5"), data)
    before = {p: file_state(os.path.join(d, p)) for p in inputs}
    args, out = COMMANDS[cmd]
    argv = [bsp] + [{"IN": "in.h5", "DATA": os.path.basename(data), "OUT": out}.get(a, a) for a in args]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", LC_ALL="C")
    t0 = time.monotonic()
    p = subprocess.Popen(argv, cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                         preexec_fn=limit_memory(memory))
    try:
        so, se = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        so, se = p.communicate()
        run.problems.append("timeout: still running after %g s" % timeout)
    run.seconds = time.monotonic() - t0
    run.rc = p.returncode
    run.stdout = so.decode("utf-8", "replace")
    run.stderr = se.decode("utf-8", "replace")
    for name, st in before.items():
        path = os.path.join(d, name)
        if not os.path.exists(path) or file_state(path) != st:
            run.problems.append("the input %s was changed" % ("model" if name == "in.h5" else "data " + name))
    left = sorted(set(os.listdir(d)) - {"in.h5", "data.h5", "data"})
    if os.path.isdir(os.path.join(d, "data")):
        left += ["data/" + f for f in sorted(set(os.listdir(os.path.join(d, "data"))) - set(
            os.path.basename(p) for p in inputs))]
    if out and run.rc == 0 and out in left:
        run.out_hash = file_state(os.path.join(d, out))[2]
        left.remove(out)
    shutil.rmtree(d, ignore_errors=True)
    check_run(run, left)
    return run


def first_line(s, n=160):
    s = s.strip().splitlines()
    return (s[0][:n] + (" ..." if len(s) > 1 or len(s[0]) > n else "")) if s else ""


def check_run(run, left):
    sub = "bsp %s: " % sub_name(run.cmd)
    rc = run.rc
    lines = run.stderr.splitlines()
    if run.problems and run.problems[0].startswith("timeout"):
        return
    if rc < 0:
        run.problems.append("killed by signal %s (%s)" % (signal.Signals(-rc).name, first_line(run.stderr)))
        return
    if rc not in (0, 1, 2):
        run.problems.append("exit %d (%s)" % (rc, first_line(run.stderr)))
        return
    if run.expect == "ok" and rc != 0:
        run.problems.append("exit %d, expected success: %s" % (rc, first_line(run.stderr)))
    if run.expect == "error" and rc == 0:
        run.problems.append("exit 0, expected an error" + (" (stderr: %s)" % first_line(run.stderr) if lines else ""))
    if rc != 0:
        m = re.search(r"(out of memory|internal error)", lines[0]) if lines else None
        if m:
            # An allocation the file's sizes asked for, or a standard exception:
            # nothing checked the file before it was believed.
            run.problems.append("%s instead of a checked error: %s" % (m.group(1), first_line(run.stderr)))
        if len(lines) != 1:
            run.problems.append("%d lines on stderr, expected 1: %s" % (len(lines), first_line(run.stderr, 300)))
        elif not lines[0].startswith(sub):
            run.problems.append("stderr does not start with '%s': %s" % (sub, first_line(run.stderr)))
        if left:
            run.problems.append("files left after the error: %s" % " ".join(left))
    else:
        noise = [l for l in lines if not l.startswith(sub)]
        if noise:
            run.problems.append("stderr noise on success: %s" % noise[0][:160])
        if left:
            run.problems.append("files left besides the output: %s" % " ".join(left))
        _, out = COMMANDS[run.cmd]
        if out and run.out_hash is None:
            run.problems.append("exit 0 but no output file")


def check_against(run, ref_run, case):
    """A successful run of a case with a reference must give what the reference gives."""
    if run.rc != 0 or run.problems:
        return
    if ref_run is None:
        return
    if ref_run.rc != 0:
        run.problems.append("succeeds where the reference %s fails (%s)" % (case["ref"], first_line(ref_run.stderr)))
        return
    if run.cmd in REPORTS and normalise(run.cmd, run.stdout) != normalise(run.cmd, ref_run.stdout):
        a = normalise(run.cmd, run.stdout).splitlines()
        b = normalise(run.cmd, ref_run.stdout).splitlines()
        diff = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
        got = a[diff][:100] if diff < len(a) else "(end)"
        want = b[diff][:100] if diff < len(b) else "(end)"
        run.problems.append("report differs from the reference %s: '%s', expected '%s'" % (case["ref"], got, want))
    if run.cmd in BYTE_OUTPUTS and case.get("same_file", True) and run.out_hash != ref_run.out_hash:
        run.problems.append("output file differs from the reference %s's" % case["ref"])


def check_values(run, case):
    if run.rc != 0 or run.problems:
        return
    chk = case.get("check") or {}
    if chk.get("finite") and run.cmd == "eval":
        try:
            loss = json.loads(run.stdout).get("loss")
        except ValueError:
            loss = None
        if not isinstance(loss, (int, float)) or loss != loss or loss in (float("inf"), float("-inf")):
            run.problems.append("eval reports a loss that is not finite: %r" % (loss,))
    if "macs" in chk and run.cmd in ("info", "info-json"):
        if run.cmd == "info-json":
            got = json.loads(run.stdout)["totals"]["macs"]
        else:
            m = re.search(r"([\d,]+) MACs per image", run.stdout)
            got = int(m.group(1).replace(",", "")) if m else None
        if got != chk["macs"]:
            run.problems.append("MAC total %s, expected %d" % (got, chk["macs"]))


def read_known(path):
    """known_failures.txt: 'CASE SUBCOMMAND' lines, each under the '# cause'
    comment line that precedes it (or with its own '# cause' at the end)."""
    known = {}
    if not path or not os.path.exists(path):
        return known
    cause = ""
    with open(path) as fh:
        for ln, line in enumerate(fh, 1):
            body, _, comment = line.partition("#")
            words = body.split()
            if not words:
                if comment.strip():
                    cause = comment.strip()
                continue
            if len(words) != 2 or words[1] not in COMMANDS:
                sys.exit("%s:%d: expected 'CASE SUBCOMMAND', SUBCOMMAND one of %s" % (path, ln, ", ".join(COMMANDS)))
            known[" ".join(words)] = comment.strip() or cause
    return known


def drop_known(path, keys):
    """Rewrites known_failures.txt without KEYS; a cause comment whose runs are
    all gone goes too (the header before the first cause stays)."""
    with open(path) as fh:
        lines = fh.read().split("\n")
    out, group = [], []
    first_entry = next((i for i, l in enumerate(lines) if l.split("#", 1)[0].strip()), len(lines))
    head = lines[:first_entry]
    # The cause of the first group is the last comment line of the header.
    while head and not head[-1].startswith("#"):
        head.pop()
    group = [head.pop()] if head else []
    out.extend(head)
    for l in lines[first_entry:] + ["# end"]:
        words = l.split("#", 1)[0].split()
        if words:
            if " ".join(words) not in keys:
                group.append(l)
        elif l.startswith("#"):
            if any(x.split("#", 1)[0].strip() for x in group):
                out.extend([""] + group if out and out[-1] != "" else group)
            group = [l]
    with open(path, "w") as fh:
        fh.write("\n".join(out).rstrip("\n") + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bsp", required=True)
    ap.add_argument("--make-test-model", required=True)
    ap.add_argument("--make-data", required=True)
    ap.add_argument("--known", default=os.path.join(HERE, "known_failures.txt"))
    ap.add_argument("--corpus", help="use this already generated corpus instead of a new one")
    ap.add_argument("--keep", help="generate the corpus into this directory and keep it")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds per run (default 20)")
    ap.add_argument("--memory", type=int, default=int(os.environ.get("BSP_CORPUS_MEMORY_MB", "4096")),
                    help="address space limit per run in MB, 0 for none (default 4096)")
    ap.add_argument("--cases", help="only the cases whose name matches this regex (and their references)")
    ap.add_argument("--list-failures", action="store_true", help="print every failure as a known_failures line")
    ap.add_argument("--drop-fixed", action="store_true",
                    help="remove the listed runs that now pass from --known (and causes left with no run)")
    ap.add_argument("--results", help="write every run (case, subcommand, exit, seconds, stderr) to this JSON file")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    t0 = time.monotonic()
    bsp = os.path.abspath(a.bsp)
    with open(bsp, "rb") as fh:
        if b"AddressSanitizer" in fh.read():
            a.memory = 0  # ASan reserves terabytes of address space for its shadow memory
    tmp = tempfile.mkdtemp(prefix="bsp-corpus.")
    try:
        corpus = a.corpus or a.keep or os.path.join(tmp, "corpus")
        if not a.corpus:
            if a.keep and os.path.exists(a.keep):
                shutil.rmtree(a.keep)
            r = subprocess.run([sys.executable, os.path.join(HERE, "make_corpus.py"), "--bsp", bsp,
                                "--make-test-model", a.make_test_model, "--make-data", a.make_data, corpus])
            if r.returncode != 0:
                sys.exit("run_corpus: make_corpus.py failed")
        t_gen = time.monotonic() - t0
        with open(os.path.join(corpus, "manifest.json")) as fh:
            cases = json.load(fh)["cases"]
        by_name = {c["name"]: c for c in cases}
        if a.cases:
            keep = {c["name"] for c in cases if re.search(a.cases, c["name"])}
            keep |= {by_name[n]["ref"] for n in list(keep) if by_name[n].get("ref")}
            cases = [c for c in cases if c["name"] in keep]
        known = read_known(a.known)
        runs = [Run(c, cmd, exp) for c in cases for cmd, exp in c["expect"].items()]
        for r in runs:
            r.known = known.get(r.key, "")
        # Cheap commands first; the slow ones are spread between the two workers.
        runs.sort(key=lambda r: (r.cmd in ("finetune", "bench", "sim"), r.case["name"]))
        work = os.path.join(tmp, "runs")
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as ex:
            list(ex.map(lambda r: execute(r, corpus, work, bsp, a.timeout, a.memory), runs))
        results = {r.key: r for r in runs}
        for r in runs:
            if r.case.get("ref") and r.expect in ("ok", "either"):
                check_against(r, results.get("%s %s" % (r.case["ref"], r.cmd)), r.case)
            check_values(r, r.case)
    finally:
        if not a.verbose:
            shutil.rmtree(tmp, ignore_errors=True)
    if a.results:
        with open(a.results, "w") as fh:
            json.dump([{"case": r.case["name"], "cmd": r.cmd, "expect": r.expect, "rc": r.rc,
                        "seconds": round(r.seconds, 3), "stderr": r.stderr[:2000], "problems": r.problems}
                       for r in runs], fh, indent=0)
    failed = [r for r in runs if r.problems]
    unexpected = [r for r in failed if r.key not in known]
    ran = {r.key for r in runs}
    fixed = sorted(k for k in known if k in ran and k not in {r.key for r in failed})
    stale = sorted(k for k in known if k not in ran and not a.cases)
    slow = max(runs, key=lambda r: r.seconds) if runs else None
    for r in failed:
        tag = "known" if r.key in known else "FAIL"
        if tag == "FAIL" or a.verbose:
            print("%s %s [%s, expected %s]: %s" % (tag, r.key, r.case["class"], r.expect, "; ".join(r.problems)))
    for k in fixed:
        print("FIXED %s: listed in %s but passes now: remove it" % (k, os.path.basename(a.known)))
    for k in stale:
        print("STALE %s: listed in %s but no such run" % (k, os.path.basename(a.known)))
    if a.list_failures:
        for r in failed:
            print("%-56s # %s" % (r.key, "; ".join(r.problems)[:200]))
    if a.drop_fixed and fixed:
        drop_known(a.known, set(fixed))
        print("removed %d runs that now pass from %s" % (len(fixed), a.known))
        fixed = []
    elapsed = time.monotonic() - t0
    print("corpus: %d cases, %d runs, %d failures (%d known, %d unexpected), %d known failures now pass; "
          "%.1f s (generation %.1f s, slowest run %s %.1f s)"
          % (len(cases), len(runs), len(failed), len(failed) - len(unexpected), len(unexpected), len(fixed),
             elapsed, t_gen, slow.key if slow else "-", slow.seconds if slow else 0))
    bad = len(unexpected) + len(fixed) + len(stale)
    print("%d passed, %d failed" % (len(runs) - len(unexpected), len(unexpected) + len(fixed) + len(stale)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
