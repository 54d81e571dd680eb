#!/usr/bin/python3
"""The adversarial corpus of issue 24: lying model and data files.

    make_corpus.py --bsp BSP --make-test-model MTM --make-data MDH OUT_DIR

Builds small valid files with the real pipeline (make_test_model tiny, bsp
prune, finetune, compact fp32 and int8, schedule, codegen; bsp init
fmnist-cnn; make_data_h5; IDX files), then writes mutated copies of them into
OUT_DIR/cases, each a file that is valid HDF5 and looks like a bsp model or
data file but lies somewhere (or a directory of IDX files that lies).
OUT_DIR/manifest.json lists every case: its name, class, base file, kind
(model, data: an HDF5 data file, idx: an IDX directory), the subcommands that read it
and what each must do with it (run_corpus.py checks):

  error   exit 1 or 2 with one 'bsp SUB:' line on stderr, no output file, the
          input untouched, within the time limit;
  ok      exit 0 (stderr only 'bsp SUB: ...' warnings), the input untouched,
          and when the case names a reference file (ref), the same report
          (stdout) and output file as that reference gives: a legitimate file
          that merely looks odd (a stride far larger than the map, an unknown
          dataset that readers must ignore);
  either  one of the two: a clean error, or success that gives what the
          reference gives (a group whose content is edited may be refused or
          dropped as a stale one is; a value whose type is wider than the
          format's may be refused or converted exactly).

Everything is deterministic (fixed seeds), so run_corpus.py's list of known
failures names the same cases on every run.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np

I64 = np.int64
STR = h5py.string_dtype()

# Subcommands (the harness knows how to run each; see run_corpus.py).
COMMON = ["info", "info-json", "prune", "finetune", "eval", "compact", "compact-int8", "export", "schedule",
          "estimate", "bench"]
DATA_CMDS = ["eval", "finetune", "compact-int8"]
# The subcommands each class of case runs (of those its base file supports;
# None: all), to keep the corpus within its time budget: a compact or program
# group's content matters to the stages that use it (info reports it, eval,
# bench and sim run it, export and schedule translate it); prune and finetune
# only read it to drop it.
CLASS_CMDS = {
    "compact": ["info", "eval", "compact", "export-int8", "schedule", "codegen", "sim", "estimate",
                "bench", "prune"],
    "reader": ["info", "prune", "eval", "compact-int8", "export", "export-int8", "schedule", "codegen",
               "sim", "estimate", "bench"],
}


class Corpus:
    def __init__(self, out, bsp, mtm, mdh):
        self.out = os.path.abspath(out)
        self.bsp, self.mtm, self.mdh = bsp, mtm, mdh
        self.bases_dir = os.path.join(self.out, "bases")
        self.cases_dir = os.path.join(self.out, "cases")
        for d in (self.bases_dir, self.cases_dir):
            os.makedirs(d, exist_ok=True)
        self.cases = []
        self.names = set()
        self.base_cmds = {}
        self.refs = {}

    # --- the valid files, made by the real pipeline ---------------------------------
    def sh(self, *args):
        r = subprocess.run(list(args), cwd=self.bases_dir, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit("make_corpus: %s failed: %s" % (" ".join(args), r.stderr.strip()))

    def make_bases(self):
        b, sh = self.bsp, self.sh
        sh(self.mdh, "data.h5", "16", "8", "8", "3", "10")
        sh(self.mtm, "tiny", "dense.h5")
        sh(b, "prune", "dense.h5", "--pattern", "block:8x8", "--density", "0.5", "-q", "-o", "block.h5")
        sh(b, "prune", "dense.h5", "--pattern", "nm:2:4", "-q", "-o", "nm.h5")
        sh(b, "prune", "dense.h5", "--pattern", "tw:16", "--density", "0.5", "-q", "-o", "tw.h5")
        sh(b, "prune", "dense.h5", "--pattern", "channel", "--density", "0.5", "-q", "-o", "chan.h5")
        sh(b, "finetune", "block.h5", "--data", "data.h5", "--epochs", "1", "--limit", "8", "--batch", "8", "-q",
           "-o", "trained.h5")
        sh(b, "compact", "block.h5", "-o", "bsr.h5")
        sh(b, "compact", "nm.h5", "-o", "nmc.h5")
        sh(b, "compact", "tw.h5", "-o", "twc.h5")
        sh(b, "compact", "block.h5", "--dtype", "int8", "--calib", "data.h5", "--calib-images", "4", "-o", "q8.h5")
        sh(b, "compact", "nm.h5", "--dtype", "int8", "--calib", "data.h5", "--calib-images", "4", "-o", "q8nm.h5")
        sh(b, "schedule", "q8.h5", "--target", "aie2:2x2", "-o", "sched.h5")
        sh(b, "codegen", "sched.h5", "-o", "prog.h5")
        sh(b, "schedule", "bsr.h5", "--target", "aie2:2x2", "-o", "schedf.h5")
        sh(b, "codegen", "schedf.h5", "-o", "progf.h5")
        sh(b, "init", "--arch", "fmnist-cnn", "-o", "fmnist.h5")
        # Stripped files (bsp-format(5), DROPPED DENSE WEIGHTS), one with a program.
        sh(b, "strip", "bsr.h5", "-o", "bsrs.h5")
        sh(b, "strip", "q8.h5", "-o", "q8s.h5")
        sh(b, "strip", "prog.h5", "-o", "progs.h5")
        os.remove(os.path.join(self.bases_dir, "schedf.h5"))
        # One-channel images for the IDX data cases (IDX holds [N, H, W] bytes):
        # the tiny model with its stem cut to one input channel.
        shutil.copyfile(self.base_path("dense"), self.base_path("gray"))
        with h5py.File(self.base_path("gray"), "r+") as f:
            set_attr(f[N + "input"], "shape", np.array([8, 8, 1], I64))
            replace_ds(f, N + "stem/weight", f[N + "stem/weight"][()][..., :1].copy())
        write_idx(os.path.join(self.bases_dir, "idx"), 16, 4)
        int8 = ["export-int8"]
        self.base_cmds = {
            "dense": COMMON, "block": COMMON, "nm": COMMON, "tw": COMMON, "chan": COMMON, "trained": COMMON,
            "bsr": COMMON, "nmc": COMMON, "twc": COMMON, "q8": COMMON + int8, "q8nm": COMMON + int8,
            "sched": COMMON + int8 + ["codegen"], "prog": COMMON + int8 + ["codegen", "sim"],
            "progf": COMMON + ["codegen", "sim"],
            # compact refuses to compact rebuilt int8 weights again (its own test: e2e strip)
            "bsrs": COMMON, "q8s": [x for x in COMMON if not x.startswith("compact")] + int8,
            "progs": [x for x in COMMON if not x.startswith("compact")] + int8 + ["codegen", "sim"],
            # 870k weights: only the cheap readers
            "fmnist": ["info", "info-json", "prune", "compact", "export", "estimate"],
            "gray": ["info"],  # its data: the IDX cases
        }
        for name in self.base_cmds:
            self.case(name + ".control", "control", name, None, "ok", note="the valid file itself")
        self.case("data.control", "control", "data", None, "ok", kind="data", note="the valid data file itself")
        self.case("idx.control", "control", "idx", None, "ok", kind="idx", note="valid IDX files")

    def base_path(self, base):
        return os.path.join(self.bases_dir, base + ".h5")

    # --- cases ----------------------------------------------------------------------------
    def case(self, name, cls, base, mutate, expect="error", ref=None, over=None, cmds=None, check=None, kind="model",
             note="", raw=None, same_file=True):
        """Writes one case. mutate(f) edits the h5py file (r+); raw(path) edits the bytes instead."""
        assert name not in self.names, name
        self.names.add(name)
        path = os.path.join(self.cases_dir, name + ".h5")
        if kind == "idx":
            path = os.path.join(self.cases_dir, name)
            shutil.copytree(os.path.join(self.bases_dir, "idx"), path)
            if raw is not None:
                raw(path)
            exp = {c: expect for c in DATA_CMDS}
            exp.update({c: e for c, e in (over or {}).items() if c in exp})
            self.cases.append({"name": name, "class": cls, "base": base, "kind": kind, "file": "cases/" + name,
                               "model": "bases/gray.h5", "expect": exp, "ref": ref, "same_file": same_file,
                               "check": check or {}, "note": note})
            return name
        if raw is not None and base is None:
            raw(path)
        else:
            shutil.copyfile(self.base_path(base), path)
            if mutate is not None:
                with h5py.File(path, "r+") as f:
                    mutate(f)
            if raw is not None:
                raw(path)
        if cmds is None:
            cmds = DATA_CMDS if kind == "data" else self.base_cmds[base]
            if CLASS_CMDS.get(cls):
                cmds = [x for x in cmds if x in CLASS_CMDS[cls]]
            if cls not in ("control", "geometry"):  # info's JSON: for the MAC totals and the references
                cmds = [x for x in cmds if x != "info-json"]
        compute = {"eval", "finetune", "compact-int8", "bench", "sim"}  # the stages that run the network
        exp = {c: expect for c in cmds}
        if over and "compute" in over:
            exp.update({c: over["compute"] for c in cmds if c in compute})
        for c, e in (over or {}).items():
            if c == "compute":
                continue
            if e is None:
                exp.pop(c, None)
            elif c in exp:
                exp[c] = e
        self.cases.append({"name": name, "class": cls, "base": base, "kind": kind, "file": "cases/" + name + ".h5",
                           "expect": exp, "ref": ref, "same_file": same_file, "check": check or {}, "note": note})
        return name

    def ref_without(self, base, *groups):
        """A control file: BASE with GROUPS deleted (what a reader that drops them sees)."""
        name = "%s.without-%s" % (base, "-".join(g.strip("/").replace("/", "_") for g in groups))
        if name not in self.names:
            def m(f):
                for g in groups:
                    if g in f:
                        del f[g]
            # The subcommands that need a removed group refuse the reference.
            needs = {"sim": "program", "codegen": "schedule", "export-int8": "compact"}
            over = {cmd: "error" for cmd, g in needs.items() if g in groups}
            self.case(name, "control", base, m, "ok", over=over,
                      note="reference: %s without %s" % (base, ", ".join(groups)))
        return name

    def write(self):
        with open(os.path.join(self.out, "manifest.json"), "w") as fh:
            json.dump({"cases": self.cases, "data": "bases/data.h5"}, fh, indent=1)


# --- h5py helpers ----------------------------------------------------------------------------
def set_attr(obj, name, value, dtype=None):
    if name in obj.attrs:
        del obj.attrs[name]
    if dtype is None:
        obj.attrs[name] = value
    else:
        obj.attrs.create(name, value, dtype=dtype)


def A(path, name, value, dtype=None):
    """Mutation: set attribute NAME of the object at PATH."""
    def m(f):
        set_attr(f[path], name, value, dtype)
    return m


def DEL(*paths):
    def m(f):
        for p in paths:
            del f[p]
    return m


def DELA(path, name):
    def m(f):
        del f[path].attrs[name]
    return m


def replace_ds(f, path, data, dtype=None, like=True, **kw):
    old = f.get(path)
    if old is not None and like and isinstance(old, h5py.Dataset) and old.compression and "compression" not in kw:
        kw["compression"] = old.compression
    if old is not None:
        attrs = dict(old.attrs) if isinstance(old, h5py.Dataset) else {}
        del f[path]
    else:
        attrs = {}
    d = f.create_dataset(path, data=data, dtype=dtype, **kw)
    for k, v in attrs.items():
        d.attrs[k] = v
    return d


def D(path, data, dtype=None, **kw):
    """Mutation: replace the dataset at PATH (keeping its attributes and compression)."""
    def m(f):
        replace_ds(f, path, data, dtype, **kw)
    return m


def E(path, fn, dtype=None):
    """Mutation: rewrite the dataset at PATH as fn(its values) (a new shape or type allowed)."""
    def m(f):
        a = f[path][()]
        b = fn(a.copy())
        if dtype is None and isinstance(b, np.ndarray) and b.shape == a.shape and b.dtype == a.dtype:
            f[path][...] = b
        else:
            replace_ds(f, path, b, dtype)
    return m


def seq(*ms):
    def m(f):
        for x in ms:
            x(f)
    return m


def at(a, idx, v):
    a[idx] = v
    return a


def flat_at(a, i, v):
    a.reshape(-1)[i] = v
    return a


N = "graph/nodes/"


def order_edit(fn):
    def m(f):
        o = [x.decode() if isinstance(x, bytes) else x for x in f["graph/order"][()]]
        replace_ds(f, "graph/order", np.array(fn(o), dtype=object), dtype=STR)
    return m


def rename_node(f, old, new):
    """Renames a node everywhere (group, order, other nodes' inputs)."""
    f.move(N + old, N + new)
    o = [x.decode() if isinstance(x, bytes) else x for x in f["graph/order"][()]]
    replace_ds(f, "graph/order", np.array([new if x == old else x for x in o], dtype=object), dtype=STR)
    for k in f["graph/nodes"]:
        g = f[N + k]
        if "inputs" not in g.attrs:
            continue
        ins = [x.decode() if isinstance(x, bytes) else x for x in g.attrs["inputs"]]
        if old in ins:
            set_attr(g, "inputs", np.array([new if x == old else x for x in ins], dtype=object), STR)


def inputs(node, names):
    return A(N + node, "inputs", np.array(names, dtype=object), STR)


# --- the cases -------------------------------------------------------------------------------
def geometry(c):
    cls = "geometry"
    ref = c.case("dense.e-stride-2", "control", "dense", A(N + "e", "stride", np.array([2, 2], I64)), "ok",
                 note="reference: e (1x1 conv on a 2x2 map before the global pool) with stride 2 gives a 1x1 map")
    # Window attributes above 2^24 are refused (bsp-format(5), LIMITS); below
    # it a huge stride is a legitimate one-pixel output.
    for tag, s in [("2p16", 2**16), ("4096", 4096), ("2p24", 2**24)]:
        c.case("dense.e-stride-" + tag, cls, "dense", A(N + "e", "stride", np.array([s, s], I64)), "ok", ref=ref,
               same_file=False,
               note="stride %d on a 2x2 map: a legitimate 1x1 output, as with stride 2" % s)
    for tag, s in [("2p31", 2**31), ("2p62", 2**62), ("int64max", 2**63 - 1)]:
        c.case("dense.e-stride-" + tag, cls, "dense", A(N + "e", "stride", np.array([s, s], I64)),
               note="stride %d: above the 2^24 limit of bsp-format(5) LIMITS" % s)
    c.case("dense.e-stride-2p24-rows", cls, "dense", A(N + "e", "stride", np.array([2**24, 1], I64)), "ok",
           ref=c.case("dense.e-stride-2x1", "control", "dense", A(N + "e", "stride", np.array([2, 1], I64)), "ok",
                      note="reference: stride [2, 1]"),
           same_file=False, note="stride [2^24, 1]: a legitimate 1x2 output")
    c.case("dense.e-stride-2p31-rows", cls, "dense", A(N + "e", "stride", np.array([2**31, 1], I64)),
           note="stride [2^31, 1]: above the 2^24 limit")
    c.case("dense.se-pool-stride-2p24", cls, "dense", A(N + "se.pool", "stride", np.array([2**24, 2**24], I64)),
           "ok", ref="dense.control", same_file=False,
           note="the whole-map average pool with a huge stride: the same 1x1 output")
    c.case("dense.se-pool-stride-2p31", cls, "dense", A(N + "se.pool", "stride", np.array([2**31, 2**31], I64)),
           note="pool stride 2^31: above the 2^24 limit")
    bad_stride = {"zero": [0, 0], "neg": [-1, -1], "int64min": [-2**63, 1], "len3": [1, 1, 1], "len1": [1],
                  "empty": np.zeros(0, I64)}
    for tag, v in bad_stride.items():
        c.case("dense.a-stride-" + tag, cls, "dense", A(N + "a", "stride", np.array(v, I64)))
    c.case("dense.a-stride-float", cls, "dense", A(N + "a", "stride", np.array([1.0, 1.0])),
           note="stride as float64: the format says int64")
    c.case("dense.a-stride-float-half", cls, "dense", A(N + "a", "stride", np.array([1.5, 1.5])))
    c.case("dense.a-stride-string", cls, "dense", A(N + "a", "stride", "1,1", STR))
    c.case("dense.a-stride-scalar", cls, "dense", A(N + "a", "stride", 1, I64))
    c.case("dense.a-stride-2d", cls, "dense", A(N + "a", "stride", np.array([[1, 1]], I64)), "either",
           ref="dense.control", note="stride as a [1, 2] array")
    c.case("dense.a-stride-int32", cls, "dense", A(N + "a", "stride", np.array([1, 1], np.int32)), "either",
           ref="dense.control", note="int32 instead of int64: refused, or converted exactly")
    c.case("dense.a-stride-uint64max", cls, "dense", A(N + "a", "stride", np.array([2**64 - 1] * 2, np.uint64)))
    c.case("dense.a-stride-missing", cls, "dense", DELA(N + "a", "stride"), "either", ref="dense.control",
           same_file=False, note="refused, or the default stride 1")
    c.case("dense.a-stride-null", cls, "dense", A(N + "a", "stride", h5py.Empty(I64)),
           note="an attribute with a null dataspace")
    for tag, v in {"2p31": [2**31] * 4, "2p40": [2**40] * 4, "neg": [-1] * 4, "len2": [1, 1],
                   "int64max": [2**63 - 1] * 4, "bottom-huge": [1, 1, 2**62, 1]}.items():
        c.case("dense.a-pad-" + tag, cls, "dense", A(N + "a", "pad", np.array(v, I64)))
    for tag, v in {"2p31": [2**31] * 2, "zero": [0, 0], "neg": [-1, -1], "int64max": [2**63 - 1] * 2,
                   "len3": [1, 1, 1]}.items():
        c.case("dense.a-dilation-" + tag, cls, "dense", A(N + "a", "dilation", np.array(v, I64)))
    for tag, v in {"zero": 0, "neg": -2, "3": 3, "2p31": 2**31, "1": 1, "int64max": 2**63 - 1}.items():
        c.case("dense.g-groups-" + tag, cls, "dense", A(N + "g", "groups", v, I64),
               note="g: 16 -> 16 channels, groups 2 (weight [16, 1, 1, 8])")
    c.case("dense.g-groups-float", cls, "dense", A(N + "g", "groups", 2.5))
    c.case("dense.dw-groups-1", cls, "dense", A(N + "dw", "groups", 1, I64),
           note="a depthwise conv's groups set to 1: the weight [16, 3, 3, 1] no longer fits")
    # The input's shape.
    for tag, v in {"2p31": [2**31, 2**31, 3], "2p40": [2**40, 8, 3], "zero": [0, 8, 3], "neg": [-8, 8, 3],
                   "len2": [8, 8], "len4": [1, 8, 8, 3], "channels": [8, 8, 4],
                   "int64max": [2**63 - 1, 2**63 - 1, 3]}.items():
        c.case("dense.input-shape-" + tag, cls, "dense", A(N + "input", "shape", np.array(v, I64)),
               note="the SE pool's 4x4 window no longer covers the map" if tag in ("2p31", "2p40") else "")
    # Huge maps in a consistent graph (the SE pool widened to the whole map):
    # a legitimate model that info, prune, compact and export can handle (with
    # exact MAC totals) and that the stages running activations must refuse
    # with a bound, not run out of memory or time.
    big = {"compute": "error", "info": "either", "info-json": "either", "prune": "either", "compact": "either",
           "export": "either", "schedule": "either", "estimate": "either"}
    for tag, (h, w) in {"46341": (46342, 46342), "2p16": (2**16, 2**16), "near-2p31": (2**31 - 2, 2),
                        "2p40": (2**40, 2), "2p62": (2**62, 2)}.items():
        h2, w2 = (h - 2) // 2 + 1, (w - 2) // 2 + 1
        c.case("dense.input-big-" + tag, cls, "dense",
               seq(A(N + "input", "shape", np.array([h, w, 3], I64)),
                   A(N + "se.pool", "kernel", np.array([h2, w2], I64)),
                   A(N + "se.pool", "stride", np.array([h2, w2], I64))), "error", over=big,
               check={"macs": tiny_macs(h, w)}, note="input [%d, %d, 3]" % (h, w))
    for tag, p in {"2p20": 2**20, "2p31": 2**31, "2p61": 2**61}.items():
        c.case("dense.e-pad-" + tag, cls, "dense", A(N + "e", "pad", np.array([p] * 4, I64)), "error", over=big,
               check={"macs": tiny_macs(8, 8, e_pad=p)}, note="a 1x1 conv padded by %d: a huge map" % p)
    c.case("dense.e-dilation-2p24", cls, "dense", A(N + "e", "dilation", np.array([2**24] * 2, I64)), "ok",
           ref="dense.control", same_file=False, note="dilation of a 1x1 kernel changes nothing")
    c.case("dense.e-dilation-2p62", cls, "dense", A(N + "e", "dilation", np.array([2**62] * 2, I64)),
           note="dilation 2^62: above the 2^24 limit")
    c.case("dense.input-shape-16", cls, "dense",
           seq(A(N + "input", "shape", np.array([16, 16, 3], I64)), A(N + "se.pool", "kernel", np.array([8, 8], I64)),
               A(N + "se.pool", "stride", np.array([8, 8], I64))), "ok",
           over={"eval": "error", "finetune": "error", "compact-int8": "error"},
           note="a legitimate larger input (the SE pool widened to the 8x8 map); the 8x8 data no longer fits it")
    c.case("dense.input-shape-float", cls, "dense", A(N + "input", "shape", np.array([8.0, 8.0, 3.0])))
    # Pools.
    for tag, (k, v) in {"kernel-zero": ("kernel", [0, 0]), "kernel-2p31": ("kernel", [2**31] * 2),
                        "kernel-neg": ("kernel", [-2, -2]), "kernel-len1": ("kernel", [2]),
                        "stride-zero": ("stride", [0, 0]), "stride-neg": ("stride", [-2, -2]),
                        "pad-ge-kernel": ("pad", [2, 2, 2, 2]), "pad-2p31": ("pad", [2**31] * 4),
                        "pad-neg": ("pad", [-1] * 4)}.items():
        c.case("dense.pool1-" + tag, cls, "dense", A(N + "pool1", k, np.array(v, I64)))
    c.case("dense.pool1-stride-2p31", cls, "dense", A(N + "pool1", "stride", np.array([2**31] * 2, I64)),
           note="maxpool stride 2^31: [1, 1, 16] into c, then the SE pool's 4x4 window no longer fits")
    c.case("dense.pool2-count-include-pad-2", cls, "dense", A(N + "pool2", "count_include_pad", 2, I64))
    c.case("dense.pool2-count-include-pad-str", cls, "dense", A(N + "pool2", "count_include_pad", "yes", STR))
    # Parameter shapes.
    c.case("dense.a-weight-rank3", cls, "dense", E(N + "a/weight", lambda a: a.reshape(16, 9, 16)))
    c.case("dense.a-weight-kernel-11", cls, "dense", D(N + "a/weight", np.zeros((16, 11, 11, 16), np.float32)),
           note="an 11x11 kernel on an 8x8 map padded by 1")
    c.case("dense.a-weight-zero-dim", cls, "dense", D(N + "a/weight", np.zeros((0, 3, 3, 16), np.float32)))
    c.case("dense.a-weight-empty", cls, "dense", D(N + "a/weight", np.zeros((0,), np.float32)))
    c.case("dense.a-weight-scalar", cls, "dense", D(N + "a/weight", np.float32(1.0)))
    c.case("dense.a-weight-rank32", cls, "dense", D(N + "a/weight", np.zeros((1,) * 32, np.float32)),
           note="a dataset of HDF5's largest rank")
    c.case("dense.a-weight-null", cls, "dense", D(N + "a/weight", h5py.Empty("f4")),
           note="a dataset with a null dataspace")
    c.case("dense.a-weight-huge-unallocated", cls, "dense",
           D(N + "a/weight", None, dtype="f4", shape=(2**24, 3, 3, 16), chunks=(1, 3, 3, 16)),
           note="a chunked weight of 2^24 x 3 x 3 x 16 floats (9 GB) that the file never stored")
    c.case("dense.fc1-weight-in-33", cls, "dense", D(N + "fc1/weight", np.zeros((32, 33), np.float32)))
    c.case("dense.stem-bias-len15", cls, "dense", E(N + "stem/bias", lambda a: a[:15]))
    c.case("dense.c.bn-var-len31", cls, "dense", E(N + "c.bn/var", lambda a: a[:31]))
    c.case("dense.c.bn-gamma-2d", cls, "dense", E(N + "c.bn/gamma", lambda a: a.reshape(1, 32)))
    c.case("dense.fc-out-11", cls, "dense", seq(D(N + "fc/weight", np.zeros((11, 32), np.float32)),
                                                  D(N + "fc/bias", np.zeros(11, np.float32))), "ok",
           over={"finetune": "either", "eval": "either", "compact-int8": "either"},
           note="11 outputs for 10-class data: the data's labels still fit (0..9)")
    # A larger model's geometry.
    c.case("fmnist.conv1-stride-2p31", cls, "fmnist", A(N + "conv1.conv", "stride", np.array([2**31] * 2, I64)),
           note="conv1's map becomes 1x1: pool1's 2x2 window no longer fits")
    c.case("fmnist.fc1-weight-in-3137", cls, "fmnist", D(N + "fc1/weight", np.zeros((256, 3137), np.float32)))


def tiny_macs(h, w, e_pad=0):
    """make_test_model tiny's MACs per image for an input [h, w, 3] (bsp info's total)."""
    h2, w2 = (h - 2) // 2 + 1, (w - 2) // 2 + 1          # pool1
    h3, w3 = (h2 - 1) // 2 + 1, (w2 - 1) // 2 + 1        # pool2: 3x3, stride 2, pad 1
    he, we = h3 + 2 * e_pad, w3 + 2 * e_pad              # e: 1x1
    return (h * w * 16 * (27 + 144 + 9 + 8) + h2 * w2 * (32 * 144 + 16 * 32) + he * we * 32 * 48
            + 32 * 32 + 32 * 10)


def values(c):
    cls = "values"
    params = [("stem", "weight"), ("stem", "bias"), ("a", "weight"), ("dw", "weight"), ("fc1", "weight"),
              ("fc", "bias"), ("c.bn", "gamma"), ("c.bn", "beta"), ("c.bn", "mean"), ("c.bn", "var"),
              ("cat.bn", "var")]
    for node, p in params:
        c.case("dense.%s-%s-nan" % (node, p), cls, "dense", E(N + node + "/" + p, lambda a: flat_at(a, 5, np.nan)))
    for node, p in [("a", "weight"), ("fc", "bias"), ("c.bn", "var"), ("c.bn", "gamma")]:
        for tag, v in [("inf", np.inf), ("-inf", -np.inf)]:
            c.case("dense.%s-%s-%s" % (node, p, tag), cls, "dense", E(N + node + "/" + p, lambda a, v=v:
                                                                         flat_at(a, 5, v)))
    c.case("block.a-weight-nan", cls, "block", E(N + "a/weight", lambda a: flat_at(a, 0, np.nan)))
    c.case("dense.c.bn-var-neg", cls, "dense", E(N + "c.bn/var", lambda a: at(a, 3, -0.5)))
    c.case("dense.c.bn-var-neg-tiny", cls, "dense", E(N + "c.bn/var", lambda a: at(a, 3, -1e-30)))
    c.case("dense.c.bn-var-zero", cls, "dense", E(N + "c.bn/var", lambda a: at(a, 3, 0.0)), "ok",
           note="var 0 is a constant channel: legitimate (eps > 0)")
    for tag, v in [("zero", 0.0), ("neg", -1e-5), ("nan", np.nan), ("inf", np.inf)]:
        c.case("dense.c.bn-eps-" + tag, cls, "dense", A(N + "c.bn", "eps", v))
    c.case("dense.c.bn-eps-string", cls, "dense", A(N + "c.bn", "eps", "1e-5", STR))
    c.case("dense.c.bn-eps-array", cls, "dense", A(N + "c.bn", "eps", np.array([1e-5, 1e-5])))
    c.case("dense.c.bn-eps-int", cls, "dense", A(N + "c.bn", "eps", 1, I64), "either",
           ref=c.case("dense.c.bn-eps-1", "control", "dense", A(N + "c.bn", "eps", 1.0), "ok",
                      note="reference: eps 1.0"), same_file=False,
           note="eps as int64 1: refused, or read as 1.0")
    c.case("dense.c.bn-eps-1e-300-var-zero", cls, "dense",
           seq(A(N + "c.bn", "eps", 1e-300), E(N + "c.bn/var", lambda a: at(a, 3, 0.0))), "either",
           check={"finite": True},
           note="var + eps > 0 but 1/sqrt(var + eps) = 1e150: the folded weight overflows float32")
    c.case("dense.fc1-weight-1e38", cls, "dense", E(N + "fc1/weight", lambda a: a * 0 + np.float32(1e38)), "either",
           check={"finite": True}, note="finite weights whose sums overflow float32")
    c.case("dense.a-weight-subnormal", cls, "dense", E(N + "a/weight", lambda a: a * np.float32(1e-40)), "ok",
           note="subnormal weights: legitimate")
    c.case("dense.a-weight-float64", cls, "dense", E(N + "a/weight", lambda a: a.astype(np.float64)), "either",
           ref="dense.control", note="float64 holding float32 values: refused, or converted exactly")
    c.case("dense.a-weight-float64-1e300", cls, "dense",
           E(N + "a/weight", lambda a: flat_at(a.astype(np.float64), 7, 1e300)),
           note="float64 1e300 is infinite as float32")
    c.case("dense.a-weight-float16", cls, "dense", E(N + "a/weight", lambda a: a.astype(np.float16)), "either")
    c.case("dense.a-weight-int32", cls, "dense", E(N + "a/weight", lambda a: (a * 100).astype(np.int32)))
    c.case("dense.a-weight-bigendian", cls, "dense", E(N + "a/weight", lambda a: a.astype(">f4")), "either",
           ref="dense.control", note="big-endian float32: the same values")
    c.case("dense.a-weight-strings", cls, "dense", D(N + "a/weight", np.array(["x"] * 4, dtype=object), dtype=STR))
    c.case("dense.a-weight-compound", cls, "dense",
           D(N + "a/weight", np.zeros((16, 3, 3, 16), dtype=[("re", "f4"), ("im", "f4")])))
    c.case("dense.clip-min-gt-max", cls, "dense", seq(A(N + "a.clip", "min", 6.0), A(N + "a.clip", "max", 0.0)))
    c.case("dense.clip-min-nan", cls, "dense", A(N + "a.clip", "min", np.nan))
    c.case("dense.clip-max-inf", cls, "dense", A(N + "a.clip", "max", np.inf), "either",
           note="clip to [0, inf]: a relu, or refused")
    c.case("dense.hardsigmoid-alpha-nan", cls, "dense", A(N + "se.gate", "alpha", np.nan))
    c.case("dense.hardsigmoid-beta-inf", cls, "dense", A(N + "se.gate", "beta", np.inf))
    c.case("dense.input-norm-std-zero", cls, "dense", seq(A(N + "input", "norm_mean", np.zeros(3)),
                                                         A(N + "input", "norm_std", np.zeros(3))))
    c.case("dense.input-norm-mean-nan", cls, "dense", seq(A(N + "input", "norm_mean", np.array([0, np.nan, 0])),
                                                         A(N + "input", "norm_std", np.ones(3))))
    c.case("dense.input-norm-len2", cls, "dense", seq(A(N + "input", "norm_mean", np.zeros(2)),
                                                     A(N + "input", "norm_std", np.ones(2))))
    c.case("trained.norm-std-neg", cls, "trained", A(N + "input", "norm_std", np.array([-1.0, 1.0, 1.0])), "either",
           note="a negative std: a sign flip, legitimate arithmetic, or refused")


def masks(c):
    cls = "masks"
    # block: a's block mask is [2, 2]; weights under a zero block are zero.
    def unmasked_weight(f, node):
        m = f[N + node + "/mask"][()]
        w = f[N + node + "/weight"][()]
        if m.shape == w.shape:
            idx = np.argwhere(m == 0)[0]
        else:  # block mask [ceil(O/R), ceil(I/C)], 8x8
            br, bc = np.argwhere(m == 0)[0]
            idx = (br * 8, 0, 0, bc * 8) if w.ndim == 4 else (br * 8, bc * 8)
        w[tuple(idx)] = 0.25
        f[N + node + "/weight"][...] = w
    for base, node in [("block", "a"), ("block", "fc1"), ("nm", "c"), ("tw", "c"), ("chan", "c"), ("bsr", "a"),
                       ("q8", "a")]:
        c.case("%s.%s-weight-under-zero-mask" % (base, node), cls, base, lambda f, n=node: unmasked_weight(f, n),
               "either", ref=base + ".control" if base in ("block", "nm", "tw", "chan") else None,
               note="a nonzero weight where the mask is 0: refused, or zeroed as documented (then as the valid file)")
    for tag, v in [("2", 2), ("255", 255)]:
        c.case("block.a-mask-value-" + tag, cls, "block", E(N + "a/mask", lambda a, v=v: flat_at(a, 0, v)))
        c.case("nm.c-mask-value-" + tag, cls, "nm", E(N + "c/mask", lambda a, v=v: flat_at(a, 1, v)))
    c.case("block.a-mask-shape", cls, "block", E(N + "a/mask", lambda a: np.ones((3, 2), np.uint8)))
    c.case("block.a-mask-rank1", cls, "block", E(N + "a/mask", lambda a: a.reshape(-1)))
    c.case("nm.c-mask-shape", cls, "nm", E(N + "c/mask", lambda a: a[:16]))
    c.case("block.a-mask-float32", cls, "block", E(N + "a/mask", lambda a: a.astype(np.float32)), "either",
           ref="block.control", note="a float32 mask of 0.0 and 1.0")
    c.case("block.a-mask-float-half", cls, "block", E(N + "a/mask", lambda a: a.astype(np.float32) * 0.5))
    c.case("block.a-mask-int64-256", cls, "block", E(N + "a/mask", lambda a: flat_at(a.astype(I64), 0, 256)))
    c.case("block.a-mask-int8-neg", cls, "block", E(N + "a/mask", lambda a: flat_at(a.astype(np.int8), 0, -1)))
    c.case("block.a-mask-strings", cls, "block", D(N + "a/mask", np.array(["1"] * 4, dtype=object), dtype=STR))
    for tag, v in [("neg", -0.5), ("2", 2.0), ("nan", np.nan), ("inf", np.inf)]:
        c.case("block.a-density-" + tag, cls, "block", A(N + "a/mask", "density", v))
    c.case("block.a-density-wrong", cls, "block", A(N + "a/mask", "density", 0.1), "either",
           note="a density in range that is not the mask's")
    c.case("block.a-density-string", cls, "block", A(N + "a/mask", "density", "half", STR))
    for tag, v in [("zero", [0, 8]), ("neg", [-8, 8]), ("len1", [8]), ("2p31", [2**31, 8]), ("4x4", [4, 4])]:
        c.case("block.a-block-" + tag, cls, "block", A(N + "a/mask", "block", np.array(v, I64)))
    c.case("block.a-block-missing", cls, "block", DELA(N + "a/mask", "block"))
    c.case("block.a-pattern-unknown", cls, "block", A(N + "a/mask", "pattern", "hexagon:3", STR))
    c.case("block.a-pattern-missing", cls, "block", DELA(N + "a/mask", "pattern"))
    c.case("block.a-pattern-nm-on-block-mask", cls, "block", A(N + "a/mask", "pattern", "nm:2:4", STR))
    c.case("block.mask-on-batchnorm", cls, "block",
           lambda f: f.create_dataset(N + "a.bn/mask", data=np.ones(16, np.uint8)), "either",
           ref="block.control", note="a mask dataset in a batchnorm node: ignored (unknown there) or refused")
    c.case("block.a-mask-all-zero-weights-zero", cls, "block",
           seq(E(N + "a/mask", lambda a: a * 0), E(N + "a/weight", lambda a: a * 0),
               A(N + "a/mask", "density", 0.0)), "ok", note="a fully pruned layer: legitimate")

    def nm_three(f):  # three ones in a group of four (weights kept nonzero there)
        m = f[N + "c/mask"][()]
        w = f[N + "c/weight"][()]
        g = m[0, 0, 0, 0:4]
        z = np.argwhere(g == 0)[0][0]
        m[0, 0, 0, z] = 1
        w[0, 0, 0, z] = 0.125
        f[N + "c/mask"][...] = m
        f[N + "c/weight"][...] = w
    c.case("nm.c-three-of-four", cls, "nm", nm_three, note="nm:2:4 mask with 3 ones in a group")
    c.case("nm.stem-nm-pattern-cin3", cls, "nm",
           lambda f: (f.create_dataset(N + "stem/mask", data=np.ones((16, 3, 3, 3), np.uint8)),
                      set_attr(f[N + "stem/mask"], "pattern", "nm:2:4", STR),
                      set_attr(f[N + "stem/mask"], "density", 1.0)),
           note="nm:2:4 on a layer with Cin 3")
    c.case("chan.c-partial-channel", cls, "chan", E(N + "c/mask", lambda a: flat_at(a, 1, 1 - a.reshape(-1)[1])),
           note="channel pattern with one channel half kept")
    # tw: c has 2 tiles of 16 columns over K = 144.
    c.case("tw.c-column-tile-out-of-range", cls, "tw", E(N + "c/mask_column_tile", lambda a: at(a, 3, 5)))
    c.case("tw.c-column-tile-neg2", cls, "tw", E(N + "c/mask_column_tile", lambda a: at(a, 3, -2)))
    c.case("tw.c-column-tile-int32max", cls, "tw", E(N + "c/mask_column_tile", lambda a: at(a, 3, 2**31 - 1)))
    c.case("tw.c-column-tile-short", cls, "tw", E(N + "c/mask_column_tile", lambda a: a[:20]))
    c.case("tw.c-column-tile-order", cls, "tw", E(N + "c/mask_column_tile", lambda a: 1 - a),
           note="tiles numbered out of the order of their first column")
    c.case("tw.c-column-tile-too-wide", cls, "tw", E(N + "c/mask_column_tile", lambda a: a * 0),
           note="one tile of 32 columns for tw:16")
    c.case("tw.c-tile-rows-value-2", cls, "tw", E(N + "c/mask_tile_rows", lambda a: flat_at(a, 0, 2)))
    c.case("tw.c-tile-rows-empty-tile", cls, "tw", E(N + "c/mask_tile_rows", lambda a: at(a, 1, 0)))
    c.case("tw.c-tile-rows-shape", cls, "tw", E(N + "c/mask_tile_rows", lambda a: a[:, :100]))
    c.case("tw.c-tile-rows-3-tiles", cls, "tw", E(N + "c/mask_tile_rows", lambda a: np.vstack([a, a[:1]])))
    c.case("tw.c-tile-rows-missing", cls, "tw", DEL(N + "c/mask_tile_rows"))

    def tw_bit_outside(f):
        m = f[N + "c/mask"][()]
        rows = f[N + "c/mask_tile_rows"][()]
        t = f[N + "c/mask_column_tile"][()]
        k = int(np.argwhere(rows[t[0]] == 0)[0][0])
        w = f[N + "c/weight"][()]
        m.reshape(32, -1)[0, k] = 1
        w.reshape(32, -1)[0, k] = 0.5
        f[N + "c/mask"][...] = m
        f[N + "c/weight"][...] = w
    c.case("tw.c-bit-outside-tile", cls, "tw", tw_bit_outside, note="a kept weight in a row its tile does not keep")


def stripped(c):
    """Files whose dense weights were dropped: every lie is refused (nothing to fall back on)."""
    cls = "compact"
    c.case("q8s.bn-mean-edited", cls, "q8s", E(N + "c.bn/mean", lambda a: a + np.float32(1)),
           note="the graph edited after strip: the rebuilt graph's hash is not rebuilt_hash")
    c.case("q8s.no-compact", cls, "q8s", DEL("compact"), note="weights absent and nothing to rebuild them from")
    c.case("progs.no-compact", cls, "progs", DEL("compact"))
    c.case("q8s.rebuilt-hash-deleted", cls, "q8s", DELA("compact", "rebuilt_hash"))
    c.case("q8s.rebuilt-hash-garbage", cls, "q8s", A("compact", "rebuilt_hash", "zz", STR))
    c.case("q8s.rebuilt-hash-int", cls, "q8s", A("compact", "rebuilt_hash", 7, I64))
    c.case("bsr.a-weight-deleted", cls, "bsr", DEL(N + "a/weight"), note="a weight absent in a whole file")
    c.case("bsrs.stem-weight-deleted", cls, "bsrs", DEL(N + "stem/weight"),
           note="an fp32 dense layer's compact form is the graph's weight")
    c.case("bsrs.a-weight-back", cls, "bsrs",
           lambda f: f[N + "a"].create_dataset("weight", data=np.zeros(tuple(f["compact/layers/a"].attrs["weight_shape"]),
                                                                       np.float32)),
           note="a dense weight in a stripped file")
    c.case("q8s.a-weight-shape-huge", cls, "q8s", A("compact/layers/a", "weight_shape",
                                                    np.array([2**20, 3, 3, 2**20], I64)),
           note="the shape of a rebuilt weight is bounded before it is allocated")
    c.case("q8s.a-weight-shape-rank3", cls, "q8s", A("compact/layers/a", "weight_shape", np.array([16, 9, 16], I64)))
    c.case("q8s.a-weight-shape-zero", cls, "q8s", A("compact/layers/a", "weight_shape", np.array([0, 3, 3, 16], I64)))
    c.case("q8s.a-weight-shape-string", cls, "q8s", A("compact/layers/a", "weight_shape", "16,3,3,16", STR))
    c.case("q8s.a-layer-deleted", cls, "q8s", DEL("compact/layers/a"))
    c.case("q8s.a-values-zeroed", cls, "q8s", E("compact/layers/a/values", lambda a: a * 0),
           note="edited compact values: the group hash")


def compact(c):
    cls = "compact"
    L = "compact/layers/"
    I = "compact/int8/"
    fp = lambda base: c.ref_without(base, "compact")  # noqa: E731
    q = lambda base: c.ref_without(base, "compact", "schedule", "program")  # noqa: E731
    # nm: c's index packs 2-bit positions, 2 per group of 4 (2:4).
    c.case("nmc.c-nm-duplicate-positions", cls, "nmc", E(L + "c/index", lambda a: a * 0), "either", ref=fp("nmc"),
           note="every position 0: duplicates")
    c.case("nmc.c-nm-unsorted", cls, "nmc", E(L + "c/index", lambda a: ((a & 0x33) << 2) | ((a >> 2) & 0x33)),
           "either", ref=fp("nmc"), note="each group's two positions swapped")
    c.case("nmc.c-nm-index-short", cls, "nmc", E(L + "c/index", lambda a: a[:-1]), "either", ref=fp("nmc"))
    c.case("nmc.c-nm-values-short", cls, "nmc", E(L + "c/values", lambda a: a[:-1]), "either", ref=fp("nmc"))
    c.case("nmc.c-nm-values-nan", cls, "nmc", E(L + "c/values", lambda a: flat_at(a, 0, np.nan)), "either",
           ref=fp("nmc"))
    c.case("nmc.c-nm-values-edited", cls, "nmc", E(L + "c/values", lambda a: a + np.float32(0.5)), "either",
           ref=fp("nmc"), note="values edited after source_hash was computed")
    c.case("nmc.c-nm-3-4", cls, "nmc", A(L + "c", "nm", np.array([3, 4], I64)), "either", ref=fp("nmc"))
    c.case("nmc.c-nm-0-4", cls, "nmc", A(L + "c", "nm", np.array([0, 4], I64)), "either", ref=fp("nmc"))
    c.case("nmc.c-nm-2-0", cls, "nmc", A(L + "c", "nm", np.array([2, 0], I64)), "either", ref=fp("nmc"))
    c.case("nmc.c-nm-2-2p40", cls, "nmc", A(L + "c", "nm", np.array([2, 2**40], I64)), "either", ref=fp("nmc"))
    c.case("nmc.c-nm-values-float64", cls, "nmc", E(L + "c/values", lambda a: a.astype(np.float64)), "either",
           ref=fp("nmc"))
    c.case("nmc.c-nm-index-int16", cls, "nmc", E(L + "c/index", lambda a: a.astype(np.int16)), "either",
           ref=fp("nmc"))
    # bsr: a has row_ptr [0 2 2], col_idx [0 1] (2 block columns).
    c.case("bsr.a-col-idx-out-of-range", cls, "bsr", E(L + "a/col_idx", lambda a: at(a, 1, 99)), "either",
           ref=fp("bsr"))
    c.case("bsr.a-col-idx-neg", cls, "bsr", E(L + "a/col_idx", lambda a: at(a, 0, -1)), "either", ref=fp("bsr"))
    c.case("bsr.a-col-idx-duplicate", cls, "bsr", E(L + "a/col_idx", lambda a: at(a, 1, 0)), "either", ref=fp("bsr"))
    c.case("bsr.a-col-idx-unsorted", cls, "bsr", E(L + "a/col_idx", lambda a: a[::-1].copy()), "either",
           ref=fp("bsr"))
    c.case("bsr.a-row-ptr-decreasing", cls, "bsr", E(L + "a/row_ptr", lambda a: np.array([0, 2, 1], np.int32)),
           "either", ref=fp("bsr"))
    c.case("bsr.a-row-ptr-last-big", cls, "bsr", E(L + "a/row_ptr", lambda a: np.array([0, 2, 2**31 - 1], np.int32)),
           "either", ref=fp("bsr"))
    c.case("bsr.a-row-ptr-first-neg", cls, "bsr", E(L + "a/row_ptr", lambda a: at(a, 0, -1)), "either",
           ref=fp("bsr"))
    c.case("bsr.a-row-ptr-short", cls, "bsr", E(L + "a/row_ptr", lambda a: a[:2]), "either", ref=fp("bsr"))
    c.case("bsr.a-values-short", cls, "bsr", E(L + "a/values", lambda a: a[:-1]), "either", ref=fp("bsr"))
    c.case("bsr.a-values-edited", cls, "bsr", E(L + "a/values", lambda a: a + np.float32(0.25)), "either",
           ref=fp("bsr"), note="fp32 values edited after source_hash (no longer bitwise the graph's weight)")
    c.case("bsr.a-values-nan", cls, "bsr", E(L + "a/values", lambda a: flat_at(a, 3, np.nan)), "either",
           ref=fp("bsr"))
    c.case("bsr.a-values-int16", cls, "bsr", E(L + "a/values", lambda a: (a * 1000).astype(np.int16)), "either",
           ref=fp("bsr"))
    c.case("bsr.a-values-strings", cls, "bsr", D(L + "a/values", np.array(["v"] * 8, dtype=object), dtype=STR),
           "either", ref=fp("bsr"))
    c.case("bsr.a-block-4x4", cls, "bsr", A(L + "a", "block", np.array([4, 4], I64)), "either", ref=fp("bsr"))
    c.case("bsr.a-block-zero", cls, "bsr", A(L + "a", "block", np.array([0, 8], I64)), "either", ref=fp("bsr"))
    c.case("bsr.a-weight-shape", cls, "bsr", A(L + "a", "weight_shape", np.array([16, 3, 3, 32], I64)), "either",
           ref=fp("bsr"))
    c.case("bsr.a-weight-shape-huge", cls, "bsr", A(L + "a", "weight_shape", np.array([2**40, 3, 3, 16], I64)),
           "either", ref=fp("bsr"))
    c.case("bsr.a-format-bogus", cls, "bsr", A(L + "a", "format", "csr", STR), "either", ref=fp("bsr"))
    c.case("bsr.a-format-nm", cls, "bsr", A(L + "a", "format", "nm", STR), "either", ref=fp("bsr"))
    c.case("bsr.layer-a-missing", cls, "bsr", DEL(L + "a"), "either", ref=fp("bsr"))
    c.case("bsr.layer-unknown-extra", cls, "bsr", lambda f: f.copy(f[L + "a"], L + "zz"), "either", ref="bsr.control",
           note="a compact layer for no graph node")
    c.case("bsr.dtype-fp16", cls, "bsr", A("compact", "dtype", "fp16", STR), "either", ref=fp("bsr"))
    c.case("bsr.dtype-int8-without-int8", cls, "bsr", A("compact", "dtype", "int8", STR), "either", ref=fp("bsr"))
    c.case("bsr.source-hash-garbage", cls, "bsr", A("compact", "source_hash", "zzzz", STR), "either", ref=fp("bsr"))
    c.case("bsr.source-hash-missing", cls, "bsr", DELA("compact", "source_hash"), "either", ref=fp("bsr"))
    c.case("bsr.source-hash-int", cls, "bsr", A("compact", "source_hash", 7, I64), "either", ref=fp("bsr"))
    c.case("bsr.stale-graph-edit", cls, "bsr", E(N + "fc/bias", lambda a: a + np.float32(1)), "ok",
           ref=c.case("bsr.stale-graph-edit-ref", "control", "bsr",
                      seq(E(N + "fc/bias", lambda a: a + np.float32(1)), DEL("compact")), "ok",
                      note="reference: the edited graph without /compact"),
           note="a graph edited after compact: the stale group is ignored, as bsp-format(5) says")
    # tw: c has 2 tiles; tile_rows are k indices < 144.
    c.case("twc.c-tile-rows-out-of-range", cls, "twc", E(L + "c/tile_rows", lambda a: at(a, 0, 144)), "either",
           ref=fp("twc"))
    c.case("twc.c-tile-rows-neg", cls, "twc", E(L + "c/tile_rows", lambda a: at(a, 0, -5)), "either", ref=fp("twc"))
    c.case("twc.c-tile-cols-out-of-range", cls, "twc", E(L + "c/tile_cols", lambda a: at(a, 0, 32)), "either",
           ref=fp("twc"))
    c.case("twc.c-tile-cols-duplicate", cls, "twc", E(L + "c/tile_cols", lambda a: at(a, 16, 0)), "either",
           ref=fp("twc"), note="a channel in two tiles")
    c.case("twc.c-tile-row-ptr-decreasing", cls, "twc", E(L + "c/tile_row_ptr", lambda a: at(a, 1, a[2] + 1)),
           "either", ref=fp("twc"))
    c.case("twc.c-tile-col-ptr-huge", cls, "twc", E(L + "c/tile_col_ptr", lambda a: at(a, 2, 2**31 - 1)), "either",
           ref=fp("twc"))
    c.case("twc.c-values-short", cls, "twc", E(L + "c/values", lambda a: a[:-1]), "either", ref=fp("twc"))
    c.case("twc.c-tile-width-zero", cls, "twc", A(L + "c", "tile_width", 0, I64), "either", ref=fp("twc"))
    # int8: the integer program.
    c.case("q8.a-values-edited", cls, "q8", E(L + "a/values", lambda a: -a), "either", ref=q("q8"),
           note="int8 values negated after source_hash")
    c.case("q8.a-values-int16-300", cls, "q8", E(L + "a/values", lambda a: flat_at(a.astype(np.int16), 0, 300)),
           "either", ref=q("q8"))
    c.case("q8.a-values-float64", cls, "q8", E(L + "a/values", lambda a: a.astype(np.float64)), "either",
           ref=q("q8"))
    c.case("q8.a-values-minus128", cls, "q8", E(L + "a/values", lambda a: flat_at(a, 0, -128)), "either",
           ref=q("q8"), note="int8 weights are in [-127, 127]")
    for what, fn in [("nan", lambda a: flat_at(a, 0, np.nan)), ("zero", lambda a: flat_at(a, 0, 0.0)),
                     ("neg", lambda a: flat_at(a, 0, -a[0])), ("inf", lambda a: flat_at(a, 0, np.inf))]:
        c.case("q8.a-w-scale-" + what, cls, "q8", E(I + "a/w_scale", fn), "either", ref=q("q8"))
    for what, v in [("nan", np.nan), ("zero", 0.0), ("neg", -0.05), ("1e300", 1e300)]:
        c.case("q8.input-scale-" + what, cls, "q8", A(I + "input", "scale", v), "either", ref=q("q8"))
    c.case("q8.a-bias-int32max", cls, "q8", E(I + "a/bias", lambda a: at(a, 0, 2**31 - 1)), "either", ref=q("q8"),
           note="biases are clamped to 2^30 - 1")
    c.case("q8.a-bias-float", cls, "q8", E(I + "a/bias", lambda a: a.astype(np.float32) + np.float32(0.5)),
           "either", ref=q("q8"))
    for what, v in [("64", 64), ("neg", -1), ("int32min", -2**31)]:
        c.case("q8.a-rq-shift-" + what, cls, "q8", E(I + "a/rq_shift", lambda a, v=v: at(a, 0, v)), "either",
               ref=q("q8"))
    for what, v in [("zero", 0), ("int32min", -2**31)]:
        c.case("q8.a-rq-mult-" + what, cls, "q8", E(I + "a/rq_mult", lambda a, v=v: at(a, 0, v)), "either",
               ref=q("q8"))
    c.case("q8.a-rq-mult-short", cls, "q8", E(I + "a/rq_mult", lambda a: a[:-1]), "either", ref=q("q8"))
    c.case("q8.a-clamp-inverted", cls, "q8", A(I + "a", "clamp", np.array([127, -128], I64)), "either", ref=q("q8"))
    c.case("q8.a-clamp-wide", cls, "q8", A(I + "a", "clamp", np.array([-1000, 1000], I64)), "either", ref=q("q8"))
    c.case("q8.a-kind-dense", cls, "q8", A(I + "a", "kind", "dense", STR), "either", ref=q("q8"),
           note="int8 kind dense for a conv2d node")
    c.case("q8.pool1-kind-avgpool", cls, "q8", A(I + "pool1", "kind", "avgpool", STR), "either", ref=q("q8"),
           note="int8 kind avgpool for a maxpool node (no count_rq)")
    c.case("q8.a-kind-bogus", cls, "q8", A(I + "a", "kind", "conv3d", STR), "either", ref=q("q8"))
    c.case("q8.a.bn-fused-into-missing", cls, "q8", A(I + "a.bn", "fused_into", "nowhere", STR), "either",
           ref=q("q8"))
    c.case("q8.a.bn-fused-into-fc", cls, "q8", A(I + "a.bn", "fused_into", "fc", STR), "either", ref=q("q8"))
    c.case("q8.int8-node-missing", cls, "q8", DEL(I + "c"), "either", ref=q("q8"))
    c.case("q8.int8-node-extra", cls, "q8", lambda f: f.copy(f[I + "pool1"], I + "zz"), "either", ref="q8.control")
    c.case("q8.d.sig-table-255", cls, "q8", E(I + "d.sig/table", lambda a: a[:255]), "either", ref=q("q8"))
    c.case("q8.d.sig-table-int16", cls, "q8", E(I + "d.sig/table", lambda a: a.astype(np.int16) * 3), "either",
           ref=q("q8"))
    c.case("q8.pool2-count-rq-short", cls, "q8", A(I + "pool2", "count_rq_mult", np.array([1, 1], I64)), "either",
           ref=q("q8"))
    c.case("q8.pool2-count-rq-shift-99", cls, "q8", A(I + "pool2", "count_rq_shift", np.array([99] * 9, I64)),
           "either", ref=q("q8"))
    c.case("q8.res-in-mult-len3", cls, "q8", A(I + "res", "in_mult", np.array([1, 1, 1], I64)), "either",
           ref=q("q8"))
    c.case("q8.res-in-shift-99", cls, "q8", A(I + "res", "in_shift", 99, I64), "either", ref=q("q8"))
    c.case("q8.res-in-mult-huge", cls, "q8", A(I + "res", "in_mult", np.array([2**62, 2**62], I64)), "either",
           ref=q("q8"), note="products that overflow int64")
    c.case("q8.cat-in-rq-short", cls, "q8", A(I + "cat", "in_rq_mult", np.array([1], I64)), "either", ref=q("q8"))
    c.case("q8.se.mul-rq-len1", cls, "q8", A(I + "se.mul", "rq", np.array([1], I64)), "either", ref=q("q8"))
    c.case("q8.cat.bn-weight-missing", cls, "q8", DEL(I + "cat.bn/weight"), "either", ref=q("q8"))
    c.case("q8.pow2-lie", cls, "q8", A("compact", "pow2", 1, I64), "either", ref=q("q8"),
           note="pow2 = 1 with scales that are not powers of two")
    c.case("q8nm.c-nm-duplicate-positions", cls, "q8nm", E(L + "c/index", lambda a: a * 0), "either",
           ref=q("q8nm"))


def spec(c):
    cls = "reader"
    c.case("block.unknown-dataset-in-node", cls, "block",
           lambda f: f.create_dataset(N + "a/notes", data=np.arange(4, dtype=np.float32)), "ok", ref="block.control",
           note="bsp-format(5): readers ignore datasets they do not know")
    c.case("block.unknown-attribute-in-node", cls, "block", A(N + "a", "comment", "from another tool", STR), "ok",
           ref="block.control", same_file=False, note="ignored (an output file may keep it)")
    c.case("block.unknown-root-attribute", cls, "block", A("/", "license", "CC0", STR), "ok", ref="block.control")
    c.case("block.unknown-root-group", cls, "block", lambda f: f.create_group("extras/deep").attrs.create("x", 1),
           "ok", ref="block.control")
    c.case("block.unknown-graph-dataset", cls, "block",
           lambda f: f.create_dataset("graph/layout", data=np.zeros(3)), "ok", ref="block.control")
    c.case("q8.unknown-int8-attribute", cls, "q8", A("compact/int8/a", "zero_point", 0, I64), "ok", ref="q8.control")
    c.case("block.repacked", cls, "block", None, "ok", ref="block.control",
           raw=lambda p: repack(p), note="the same objects copied by h5py into a new file (another layout)")
    c.case("block.format-version-2", cls, "block", A("/", "format_version", np.array([2, 0], I64)))
    c.case("block.format-version-1-99", cls, "block", A("/", "format_version", np.array([1, 99], I64)), "ok",
           ref="block.control", note="a newer minor version opens")
    c.case("block.format-version-0", cls, "block", A("/", "format_version", np.array([0, 9], I64)))
    c.case("block.format-version-neg", cls, "block", A("/", "format_version", np.array([-1, 0], I64)))
    c.case("block.format-version-len1", cls, "block", A("/", "format_version", np.array([1], I64)))
    c.case("block.format-version-string", cls, "block", A("/", "format_version", "1.0", STR))
    c.case("block.format-version-missing", cls, "block", DELA("/", "format_version"))
    c.case("block.format-bsq", cls, "block", A("/", "format", "bsq", STR))
    c.case("block.format-missing", cls, "block", DELA("/", "format"))
    c.case("block.format-fixed-string", cls, "block", A("/", "format", np.bytes_("bsp")), "either",
           ref="block.control", note="a fixed-length string attribute")
    c.case("block.producer-missing", cls, "block", DELA("/", "producer"), "either")
    c.case("block.arch-missing", cls, "block", DELA("/", "arch"), "either")
    c.case("block.arch-1mb", cls, "block", A("/", "arch", "x" * (1 << 20), STR), "ok",
           note="a 1 MB architecture name: free text")
    c.case("block.arch-int", cls, "block", A("/", "arch", 5, I64), "either")
    c.case("block.history-ints", cls, "block", D("history", np.arange(3, dtype=I64)), "either")
    c.case("block.history-missing", cls, "block", DEL("history"), "either")
    c.case("block.history-10000", cls, "block", D("history", np.array(["bsp x"] * 10000, dtype=object), dtype=STR),
           "ok")
    c.case("block.history-2d", cls, "block", D("history", np.array([["a", "b"]], dtype=object), dtype=STR),
           "either")
    # The graph's structure.
    c.case("block.graph-missing", cls, "block", DEL("graph"))
    c.case("block.nodes-missing", cls, "block", DEL("graph/nodes"))
    c.case("block.order-missing", cls, "block", DEL("graph/order"))
    c.case("block.order-empty", cls, "block", D("graph/order", np.array([], dtype=object), dtype=STR))
    c.case("block.order-ints", cls, "block", D("graph/order", np.arange(30, dtype=I64)))
    c.case("block.order-missing-node", cls, "block", order_edit(lambda o: o + ["ghost"]))
    c.case("block.order-drops-node", cls, "block", order_edit(lambda o: [x for x in o if x != "a.clip"]))
    c.case("block.order-drops-last", cls, "block", order_edit(lambda o: o[:-1]), "either",
           note="the last node left out: its group is still in /graph/nodes")
    c.case("block.order-duplicate", cls, "block", order_edit(lambda o: o[:5] + [o[4]] + o[5:]))
    c.case("block.order-forward-reference", cls, "block",
           order_edit(lambda o: [o[0]] + [o[2], o[1]] + o[3:]), note="stem.bn before stem")
    c.case("block.order-input-not-first", cls, "block", order_edit(lambda o: o[1:2] + o[:1] + o[2:]))
    c.case("block.cycle", cls, "block", inputs("stem", ["e.relu"]), note="stem reads a later node")
    c.case("block.self-loop", cls, "block", inputs("a", ["a"]))
    c.case("block.input-to-missing-node", cls, "block", inputs("a", ["ghost"]))
    c.case("block.inputs-ints", cls, "block", A(N + "a", "inputs", np.array([1], I64)))
    c.case("block.inputs-scalar-string", cls, "block", A(N + "a", "inputs", "stem.relu", STR), "either",
           ref="block.control")
    c.case("block.inputs-missing", cls, "block", DELA(N + "a", "inputs"))
    c.case("block.input-node-has-input", cls, "block", inputs("input", ["stem"]))
    c.case("block.two-input-nodes", cls, "block",
           seq(A(N + "a.clip", "op", "input", STR), A(N + "a.clip", "shape", np.array([8, 8, 16], I64))),
           "either", note="a second input node")
    c.case("block.op-missing", cls, "block", DELA(N + "a", "op"))
    c.case("block.op-unknown", cls, "block", A(N + "a", "op", "conv3d", STR))
    c.case("block.op-int", cls, "block", A(N + "a", "op", 3, I64))
    c.case("block.op-1mb", cls, "block", A(N + "a.clip", "op", "y" * (1 << 20), STR),
           note="an unknown op of 1 MB: the error line must stay one line")
    c.case("block.op-uppercase", cls, "block", A(N + "a.clip", "op", "CLIP", STR))
    c.case("block.add-one-input", cls, "block", inputs("res", ["stem.relu"]))
    c.case("block.add-three-inputs", cls, "block", inputs("res", ["stem.relu", "g.bn", "a.clip"]), "ok",
           note="add of three maps of one shape: legitimate")
    c.case("block.mul-scale-first", cls, "block", inputs("se.mul", ["se.gate", "c.relu"]))
    c.case("block.concat-mismatched", cls, "block", inputs("cat", ["se.mul", "res.relu"]),
           note="concat of [4,4,32] and [8,8,16]")
    c.case("block.dense-on-map", cls, "block", inputs("fc1", ["e.relu"]), note="dense on a [2,2,32] map")
    c.case("block.name-with-slash", cls, "block", lambda f: rename_node(f, "fc", "x/fc"),
           note="a node named 'x/fc' (the group nodes/x/fc)")
    c.case("block.name-newline", cls, "block", seq(lambda f: rename_node(f, "a.clip", "a\nclip"),
                                                   A(N + "a\nclip", "min", 7.0)),
           note="a node named 'a<newline>clip' with min > max: the error names it on one line")
    c.case("block.name-long", cls, "block", lambda f: rename_node(f, "a.clip", "n" * 60000), "ok",
           note="a 60000-character node name")
    c.case("block.softlink-to-parent", cls, "block",
           seq(DEL(N + "a.clip"), lambda f: f.__setitem__(N + "a.clip", h5py.SoftLink("/graph/nodes"))),
           note="a node that is a soft link to /graph/nodes")
    c.case("block.external-link", cls, "block",
           seq(DEL(N + "a.clip"), lambda f: f.__setitem__(N + "a.clip", h5py.ExternalLink("nowhere.h5", "/x"))),
           note="a node that is an external link to a missing file")
    c.case("block.dangling-node", cls, "block",
           seq(lambda f: f.copy(f[N + "fc1.relu"], N + "spare"), order_edit(lambda o: o[:-1] + ["spare", o[-1]])),
           "either", note="a node nobody reads")
    c.case("block.node-is-dataset", cls, "block",
           seq(DEL(N + "a.clip"), lambda f: f.create_dataset(N + "a.clip", data=np.zeros(3))))
    c.case("dense.softmax-middle", cls, "dense", A(N + "res.relu", "op", "softmax", STR), "either",
           over={"finetune": "error", "compact-int8": "error"},
           note="a softmax in the middle: the trainer and int8 refuse it")
    c.case("dense.softmax-last", cls, "dense",
           seq(lambda f: f.copy(f[N + "fc1.relu"], N + "sm"), inputs("sm", ["fc"]), A(N + "sm", "op", "softmax", STR),
               order_edit(lambda o: o + ["sm"])), "ok",
           over={"schedule": "either", "estimate": "either"}, note="a legitimate final softmax")
    # Raw files.
    c.case("raw.empty", cls, None, None, raw=lambda p: open(p, "wb").close(), cmds=COMMON)
    c.case("raw.text", cls, None, None, raw=lambda p: open(p, "w").write("not a model\n"), cmds=COMMON)
    c.case("block.truncated-half", cls, "block", None, raw=lambda p: truncate(p, 0.5))
    c.case("block.truncated-tail", cls, "block", None, raw=lambda p: truncate(p, 0.97))
    c.case("raw.hdf5-empty", cls, None, None, raw=lambda p: h5py.File(p, "w").close(), cmds=COMMON)
    c.case("block.a-weight-lzf", cls, "block",
           lambda f: replace_ds(f, N + "a/weight", f[N + "a/weight"][()], compression="lzf"),
           note="a dataset compressed with a filter bsp's HDF5 does not have")
    c.case("block.a-weight-bad-checksum", cls, "block",
           lambda f: replace_ds(f, N + "a/weight", f[N + "a/weight"][()], fletcher32=True, chunks=(16, 3, 3, 16)),
           raw=lambda p: corrupt_chunk(p, N + "a/weight"),
           note="a fletcher32-checksummed chunk whose bytes were changed")
    c.case("block.a-mask-corrupt-deflate", cls, "block", None, raw=lambda p: corrupt_chunk(p, N + "a/mask"),
           note="a deflate stream with changed bytes")
    # Schedule and program.
    S = "schedule/"
    sref = c.ref_without("prog", "schedule", "program")
    pref = c.ref_without("prog", "program")
    st = S + "stages/0001/"
    for tag, (path, name, v) in {
        "version-2": (S, "version", np.int64(2)),
        "dtype-bogus": (S, "dtype", "fp8"),
        "hardware-garbage": (S, "hardware", "{not json"),
        "hardware-rows-0": (S, "hardware", None),
        "ddr-bytes-neg": (S, "ddr_bytes", np.int64(-1)),
        "ddr-bytes-2p62": (S, "ddr_bytes", np.int64(2**62)),
        "split-zero": (st, "split", np.array([0, 0, 0, 0], I64)),
        "split-2p31": (st, "split", np.array([2**31, 1, 1, 1], I64)),
        "split-len3": (st, "split", np.array([4, 1, 1], I64)),
        "tile-neg": (st, "tile", np.array([-8, 2, 8], I64)),
        "tile-2p40": (st, "tile", np.array([2**40, 2, 8], I64)),
        "tile-zero": (st, "tile", np.array([0, 0, 0], I64)),
        "order-C": (st, "order", "C"),
        "weights-resident-7": (st, "weights_resident", np.int64(7)),
        "channel-bounds-out": (st, "channel_bounds", np.array([0, 99], I64)),
        "channel-bounds-decreasing": (st, "channel_bounds", np.array([16, 0], I64)),
        "fingerprint-edited": (S, "fingerprint", "0123456789abcdef"),
    }.items():
        def m(f, path=path, name=name, v=v, tag=tag):
            if tag == "hardware-rows-0":
                h = json.loads(f[S].attrs["hardware"])
                walk_set(h, "rows", 0)
                v = json.dumps(h)
            set_attr(f[path], name, v, STR if isinstance(v, str) else None)
        c.case("prog.schedule-" + tag, cls, "prog", m, "either", ref=sref)
    c.case("prog.schedule-stage-missing", cls, "prog", DEL(S + "stages/0003"), "either", ref=sref)
    c.case("prog.schedule-stage-extra", cls, "prog", lambda f: f.copy(f[S + "stages/0003"], S + "stages/0099"),
           "either", ref=sref)
    c.case("prog.schedule-storages-neg-addr", cls, "prog", E(S + "storages", lambda a: at(a, (1, 4), -7)), "either",
           ref=sref)
    c.case("prog.schedule-storages-huge-h", cls, "prog", E(S + "storages", lambda a: at(a, (1, 0), 2**40)), "either",
           ref=sref)
    c.case("prog.schedule-storages-short", cls, "prog", E(S + "storages", lambda a: a[:, :5]), "either", ref=sref)
    c.case("prog.schedule-weight-chunks-addr", cls, "prog",
           E(S + "stages/0000/weight_chunks", lambda a: at(a, (1, 7), 2**40)), "either", ref=sref)
    c.case("prog.schedule-row-order-bad", cls, "prog",
           lambda f: f[S + "stages/0006"].attrs.create("row_order", np.array([3, 3, 3, 3], I64)), "either", ref=sref,
           note="a row_order that is not a permutation")
    P = "program/"
    c.case("prog.program-fingerprint-stale", cls, "prog", A(P, "fingerprint", "0123456789abcdef", STR), "either",
           ref=pref, note="a program whose fingerprint is not the schedule's")
    c.case("prog.program-source-hash-stale", cls, "prog", A(P, "source_hash", "0123456789abcdef", STR), "either",
           ref=pref)
    for tag, fn in {
        "word-flip": lambda a: flat_at(a, 40, a[40] ^ 0x0F0F0F0F),
        "words-minus1": lambda a: (a.__setitem__(slice(100, 140), -1), a)[1],
        "word-opcode": lambda a: flat_at(a, 0, a[0] + 1),
        "truncated": lambda a: a[: len(a) // 2],
        "extended": lambda a: np.concatenate([a, np.full(64, 0x7FFFFFFF, np.int32)]),
        "zeros": lambda a: a * 0,
        "int64": lambda a: a.astype(I64),
        "empty": lambda a: a[:0],
        "count-huge": lambda a: flat_at(a, 2, 2**31 - 1),
    }.items():
        c.case("prog.program-code-" + tag, cls, "prog", E(P + "code", fn), "either", ref=pref,
               note="instruction words edited; the fingerprint still matches the schedule")
    c.case("progf.program-code-word-flip", cls, "progf", E(P + "code", lambda a: flat_at(a, 40, a[40] ^ 0x0F0F0F0F)),
           "either", ref=c.ref_without("progf", "program"))
    c.case("prog.program-names-short", cls, "prog", E(P + "names", lambda a: a[:10]), "either", ref=pref)
    c.case("prog.program-ddr-image-short", cls, "prog", E(P + "ddr_image", lambda a: a[:100]), "either", ref=pref)
    c.case("prog.program-ddr-image-edited", cls, "prog", E(P + "ddr_image", lambda a: a ^ np.uint8(0x55)), "either",
           ref=pref, note="weights image edited after the fingerprint")
    c.case("prog.program-input-addr-huge", cls, "prog", A(P, "input_addr", 2**40, I64), "either", ref=pref)
    c.case("prog.program-output-addr-neg", cls, "prog", A(P, "output_addr", -64, I64), "either", ref=pref)
    c.case("prog.program-output-shape-wrong", cls, "prog", A(P, "output_shape", np.array([1, 1, 1000], I64)),
           "either", ref=pref)
    c.case("prog.program-ddr-bytes-small", cls, "prog", A(P, "ddr_bytes", 16, I64), "either", ref=pref)
    c.case("prog.program-version-9", cls, "prog", A(P, "version", 9, I64), "either", ref=pref)
    c.case("prog.program-dtype-fp32", cls, "prog", A(P, "dtype", "fp32", STR), "either", ref=pref)


def data(c):
    cls = "data"
    T, TL = "train/images", "train/labels"

    def train(name, mutate, expect="error", over=None, **kw):
        """A lie in the training split: bsp eval reads only the test split."""
        o = {"eval": "either"}
        o.update(over or {})
        c.case(name, cls, "data", mutate, expect, over=o, kind="data", **kw)

    def test(name, mutate, expect="error", over=None, **kw):
        """A lie in the test split: compact calibrates on the training images."""
        o = {"compact-int8": "either"}
        o.update(over or {})
        c.case(name, cls, "data", mutate, expect, over=o, kind="data", **kw)

    floats = lambda a: a.astype(np.float32) / 255  # noqa: E731
    train("data.train-float-nan", E(T, lambda a: flat_at(floats(a), 9, np.nan)))
    train("data.train-float-inf", E(T, lambda a: flat_at(floats(a), 9, np.inf)))
    test("data.test-float-nan", E("test/images", lambda a: flat_at(floats(a), 0, np.nan)))
    train("data.train-float-1e30", E(T, lambda a: flat_at(floats(a), 9, 1e30)), "either",
          note="finite but huge pixels: train into an infinite variance")
    test("data.test-float-1e30", E("test/images", lambda a: flat_at(floats(a), 0, 1e30)), "either",
         check={"finite": True}, note="eval: huge logits; never a loss computed from inf or NaN")
    c.case("data.float-valid", cls, "data", seq(E(T, floats), E("test/images", floats)), "ok", kind="data",
           note="float32 pixels in [0, 1]: legitimate")
    for tag, v in [("10", 10), ("neg", -1), ("2p40", 2**40)]:
        train("data.train-label-" + tag, E(TL, lambda a, v=v: flat_at(a.astype(I64), 0, v)),
              over={"compact-int8": "either"}, note="compact's calibration does not use the labels")
        test("data.test-label-" + tag, E("test/labels", lambda a, v=v: flat_at(a.astype(I64), 0, v)))
    train("data.labels-float", E(TL, lambda a: a.astype(np.float32)), over={"compact-int8": "either"})
    c.case("data.labels-uint8", cls, "data", E(TL, lambda a: a.astype(np.uint8)), "ok", kind="data",
           note="any integer type")
    train("data.labels-2d", E(TL, lambda a: a.reshape(-1, 1)), "either")
    train("data.images-int16", E(T, lambda a: a.astype(np.int16)))
    train("data.images-float64", E(T, lambda a: a.astype(np.float64) / 255), "either")
    train("data.images-rank2", E(T, lambda a: a.reshape(16, -1)))
    train("data.images-rank5", E(T, lambda a: a.reshape(16, 8, 8, 3, 1)))
    train("data.images-9x9", D(T, np.zeros((16, 9, 9, 3), np.uint8)))
    train("data.images-channels-1", D(T, np.zeros((16, 8, 8), np.uint8)))
    train("data.count-mismatch", E(TL, lambda a: a[:10]), over={"compact-int8": "either"})
    train("data.zero-images", seq(E(T, lambda a: a[:0]), E(TL, lambda a: a[:0])),
          note="no training images")
    test("data.no-test", DEL("test"), over={"finetune": "ok", "compact-int8": "ok"},
         note="no test split: eval has nothing to evaluate")
    train("data.no-labels", DEL(TL), over={"compact-int8": "either"})
    train("data.images-group", seq(DEL(T), lambda f: f.create_group(T)))
    train("data.images-strings", D(T, np.array(["p"] * 16, dtype=object), dtype=STR))
    train("data.images-huge-unallocated",
          seq(DEL(T), lambda f: f.create_dataset(T, shape=(2**40, 8, 8, 3), dtype="u1", chunks=(1, 8, 8, 3)),
              DEL(TL), lambda f: f.create_dataset(TL, shape=(2**40,), dtype="i8", chunks=(1024,))), "either",
          note="2^40 training images the file never stored: --limit / --calib-images read only a few")
    c.case("data.flat-and-split", cls, "data",
           lambda f: (f.copy(f[T], "images"), f.copy(f[TL], "labels")), "either", kind="data",
           note="both a split and root images")


IMG, LAB, TIMG, TLAB = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                         "t10k-labels-idx1-ubyte")


def write_idx(d, n_train, n_test, h=8, w=8):
    """A valid IDX directory (as Fashion-MNIST's): big-endian headers, bytes."""
    os.makedirs(d, exist_ok=True)
    rng = np.random.RandomState(1)
    for img, lab, n in ((IMG, LAB, n_train), (TIMG, TLAB, n_test)):
        with open(os.path.join(d, img), "wb") as fh:
            fh.write(np.array([0x803, n, h, w], ">u4").tobytes() + rng.randint(0, 256, n * h * w).astype(np.uint8).tobytes())
        with open(os.path.join(d, lab), "wb") as fh:
            fh.write(np.array([0x801, n], ">u4").tobytes() + rng.randint(0, 10, n).astype(np.uint8).tobytes())


def idx_header(name, words):
    """Raw mutation: rewrite the big-endian header words of one IDX file."""
    def m(d):
        p = os.path.join(d, name)
        b = bytearray(open(p, "rb").read())
        b[:4 * len(words)] = np.array(words, ">u4").tobytes()
        open(p, "wb").write(bytes(b))
    return m


def idx_bytes(name, fn):
    def m(d):
        p = os.path.join(d, name)
        b = fn(bytearray(open(p, "rb").read()))
        open(p, "wb").write(bytes(b))
    return m


def idx(c):
    cls = "data"
    train = {"eval": "either"}  # bsp eval reads only the test files
    test = {"compact-int8": "either", "finetune": "either"}
    for tag, words in {"magic": [0x804], "n-2p31": [0x803, 2**31], "n-2p32-1": [0x803, 2**32 - 1],
                       "h-zero": [0x803, 16, 0], "h-2p16": [0x803, 16, 2**16], "w-2p32-1": [0x803, 16, 8, 2**32 - 1],
                       "9x9": [0x803, 16, 9, 9]}.items():
        c.case("idx.train-images-" + tag, cls, "idx", None, kind="idx", raw=idx_header(IMG, words), over=train)
    c.case("idx.test-images-n-2p31", cls, "idx", None, kind="idx", raw=idx_header(TIMG, [0x803, 2**31]), over=test)
    c.case("idx.train-labels-magic", cls, "idx", None, kind="idx", raw=idx_header(LAB, [0x803]), over=train)
    c.case("idx.train-labels-count", cls, "idx", None, kind="idx", raw=idx_header(LAB, [0x801, 15]),
           over=dict(train, **{"compact-int8": "either"}))
    c.case("idx.train-labels-10", cls, "idx", None, kind="idx", raw=idx_bytes(LAB, lambda b: b[:8] + b"\x0a" + b[9:]),
           over=dict(train, **{"compact-int8": "either"}))
    c.case("idx.test-labels-255", cls, "idx", None, kind="idx", raw=idx_bytes(TLAB, lambda b: b[:8] + b"\xff" + b[9:]),
           over=test)
    c.case("idx.train-images-truncated", cls, "idx", None, kind="idx", raw=idx_bytes(IMG, lambda b: b[:-5]),
           over=train)
    c.case("idx.train-images-header-only", cls, "idx", None, kind="idx", raw=idx_bytes(IMG, lambda b: b[:6]),
           over=train)
    c.case("idx.train-images-corrupt-gz", cls, "idx", None, kind="idx",
           raw=lambda d: (open(os.path.join(d, IMG + ".gz"), "wb").write(b"\x1f\x8b\x08\x00garbage"),
                          os.remove(os.path.join(d, IMG))), over=train)
    c.case("idx.train-images-extra-bytes", cls, "idx", None, "either", kind="idx",
           raw=idx_bytes(IMG, lambda b: b + b"\x00" * 100), note="bytes after the last image")


def repack(path):
    tmp = path + ".repack"
    with h5py.File(path, "r") as src, h5py.File(tmp, "w") as dst:
        for k, v in src.attrs.items():
            dst.attrs.create(k, v, dtype=src.attrs.get_id(k).dtype)
        for k in src:
            src.copy(src[k], dst, name=k)
    os.replace(tmp, path)


def truncate(path, frac):
    size = os.path.getsize(path)
    with open(path, "r+b") as fh:
        fh.truncate(int(size * frac))


def corrupt_chunk(path, dset):
    with h5py.File(path, "r") as f:
        d = f[dset]
        if d.chunks:
            info = d.id.get_chunk_info(0)
            off, size = info.byte_offset, info.size
        else:
            off, size = d.id.get_offset(), d.id.get_storage_size()
    with open(path, "r+b") as fh:
        fh.seek(off + size // 2)
        b = fh.read(4)
        fh.seek(off + size // 2)
        fh.write(bytes(x ^ 0xA5 for x in b))


def walk_set(obj, key, value):
    if isinstance(obj, dict):
        for k in obj:
            if k == key:
                obj[k] = value
            else:
                walk_set(obj[k], key, value)
    elif isinstance(obj, list):
        for x in obj:
            walk_set(x, key, value)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bsp", required=True)
    ap.add_argument("--make-test-model", required=True)
    ap.add_argument("--make-data", required=True)
    ap.add_argument("out")
    a = ap.parse_args()
    np.random.seed(0)
    c = Corpus(a.out, os.path.abspath(a.bsp), os.path.abspath(a.make_test_model), os.path.abspath(a.make_data))
    c.make_bases()
    geometry(c)
    values(c)
    masks(c)
    compact(c)
    stripped(c)
    spec(c)
    data(c)
    idx(c)
    c.write()
    print("make_corpus: %d cases in %s" % (len(c.cases), c.out))


if __name__ == "__main__":
    main()
