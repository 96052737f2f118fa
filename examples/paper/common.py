"""The machinery every experiment script of examples/paper shares: scales, runs, records.

An experiment is a set of rows of paper_values.json (each: the program evaluated, its
params, the program the model was trained with, the paper's numbers). For each row and seed
it needs one training run (`attn train`, shared by every row trained the same way) and one
measurement on it (`attn eval`, or `attn passkey` for retrieval). Everything is a command of
the attn CLI; this file only decides which, runs them, and records what happened.

Resumable: a measurement whose JSON exists is skipped, a finished training run is skipped,
an interrupted one continues with --resume. Every run directory gets record.json: the
commit, each command, the config, the seed, the tokens seen, wall and CPU time, hardware.
--dry-run prints every command (and whether it would be skipped) and runs nothing.

Not here: the report (report.py), plotting (report.py, through attn plot and gnuplot).
"""
import argparse
import datetime
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
STDLIB = os.path.join(ROOT, "stdlib")


def load_values():
    with open(os.path.join(HERE, "paper_values.json")) as f:
        return json.load(f)["rows"]


# The scales. Each names the model and data, how long text runs and passkey runs train,
# and what is measured. `rows` restricts the experiments to some rows (None: all).
SCALES = {
    # The pipeline end to end in the test suite (minutes on 2 cores): numbers mean nothing.
    "ci": {
        "what": "the pipeline end to end (a few optimiser steps per run): checks that every script, command and "
                "report section works; its numbers mean nothing",
        "config": "tiny", "tokenizer": "bpe:128", "seq_len": 32, "backend": "reference", "device": "cpu",
        "threads": 1, "seeds": [1],
        "text": {"steps": 2, "micro_batch": 2, "lr": 3e-3},
        "passkey": {"steps": 2, "micro_batch": 2, "lr": 3e-3, "mix": 0.5, "max_length": 96, "filler": "repeat"},
        "lengths": ["1x", "2x", "4x", "8x", "16x"], "max_docs": 2,
        "passkey_lengths": ["4x", "8x", "16x"], "passkey_depths": [0, 0.5, 1], "passkey_trials": 2,
        "passkey_loss": False,
        "figure2_p": [3, 15], "trained_p": [15],
        "rows": None,
    },
    # About an hour on 2 cores for table 4 and retrieval (more for every table): a tiny GPT-2
    # on the built-in corpus with a 512-merge BPE, so the time goes to attention.
    "cpu": {
        "what": "a tiny GPT-2 (4 layers, 128 wide, 0.6M parameters besides embeddings) trained for minutes on "
                "the built-in corpus (State of the Union speeches, bpe:512) at 128 tokens; retrieval trained on a "
                "passkey mix",
        "config": "tiny", "tokenizer": "bpe:512", "seq_len": 128, "backend": "cpu", "device": "cpu",
        "threads": 1, "seeds": [1, 2],
        "text": {"steps": 100, "micro_batch": 16, "lr": 3e-3},
        # Instances of 64-129 tokens (129: what a window of 128 inputs holds with its last
        # target), half with "copy" filler (random words that recur: every word after its first
        # occurrence is a copy, so the induction circuit retrieval uses is trained on most
        # tokens; NOTES.md), half with the repeated sentences the test uses; windows aligned
        # with the instances (attn train --windows aligned), so each is seen whole.
        "passkey": {"steps": 1500, "micro_batch": 16, "lr": 3e-3, "warmup": 50, "mix": 0.9, "min_length": 64,
                    "max_length": 129, "filler": "copy,repeat", "eval_filler": "repeat", "digits": 5,
                    "windows": "aligned"},
        "lengths": ["1x", "2x", "4x", "8x", "16x"], "max_docs": 8,
        "passkey_lengths": ["1x", "2x", "4x", "8x", "16x"], "passkey_depths": [0, 0.25, 0.5, 0.75, 1],
        "passkey_trials": 20, "passkey_loss": True,
        "figure2_p": [1, 3, 7, 15, 30], "trained_p": [3, 15],
        "rows": None,
    },
    # One GPU, at most 8 minutes: softmax against LSSA/LSSAR at 256 tokens, and retrieval.
    "gpu": {
        "what": "GPT-2 'small' (6 layers, 384 wide) at 256 tokens on the built-in corpus (GPT-2 BPE), bf16 on "
                "one GPU, a few minutes per run: softmax against LSSA/LSSAR, and retrieval",
        "config": "small", "tokenizer": "gpt2", "seq_len": 256, "backend": "cuda", "device": "cuda",
        "threads": 0, "seeds": [1],
        "text": {"steps": 400, "micro_batch": 32, "lr": 1e-3},
        "passkey": {"steps": 400, "micro_batch": 32, "lr": 1e-3, "mix": 0.5, "max_length": 256, "filler": "repeat"},
        "lengths": ["1x", "2x", "4x", "8x", "16x"], "max_docs": 8,
        "passkey_lengths": ["1x", "2x", "4x", "8x", "16x"], "passkey_depths": [0, 0.25, 0.5, 0.75, 1],
        "passkey_trials": 20, "passkey_loss": True,
        "figure2_p": [3, 15], "trained_p": [],
        "rows": ["t4-softmax", "t4-lssa", "t4-lssar15", "t4-lssar3", "f1-softmax", "f1-lssa", "f1-lssar",
                 "pk-softmax", "pk-lssa", "pk-lssarp15", "pk-softmaxreweightedp3"],
    },
    # The paper's recipe: GPT-2 124M, RoPE + NTK, 1024 tokens, FineWeb-10B as llm.c shards
    # (--data), 524,288 tokens a step for 18,865 steps. For --dry-run on anything short of
    # a GPU cluster.
    "paper": {
        "what": "the paper's recipe (GPT-2 124M, 1024 tokens, FineWeb-10B, 18,865 steps of 524,288 tokens)",
        "config": "124m", "tokenizer": "gpt2", "seq_len": 1024, "backend": "cuda", "device": "cuda",
        "threads": 0, "seeds": [1],
        "text": {"steps": 18865, "micro_batch": 64, "lr": 6e-4, "batch_tokens": 524288},
        "passkey": {"steps": 18865, "micro_batch": 64, "lr": 6e-4, "batch_tokens": 524288, "mix": 0.05,
                    "max_length": 1024, "filler": "text"},
        "lengths": ["1x", "2x", "4x", "8x", "16x"], "max_docs": 0,
        "passkey_lengths": ["1x", "2x", "4x", "8x", "16x"], "passkey_depths": [0, 0.25, 0.5, 0.75, 1],
        "passkey_trials": 100, "passkey_loss": True,
        "figure2_p": [1, 2, 3, 5, 7, 10, 15, 20, 30], "trained_p": [3, 15],
        "rows": None,
    },
}


def param_suffix(params):
    return "".join("_%s%s" % (k, v) for k, v in sorted(params.items()))


def stem(program):
    return program[:-5] if program.endswith(".attn") else program


def set_args(params):
    out = []
    for k, v in sorted(params.items()):
        out += ["--set", "%s=%s" % (k, v)]
    return out


class Runner:
    """Runs (or prints) the commands of one scale into one results directory."""

    def __init__(self, scale, out, dry_run=False, seeds=None, attn=None, data=None, log=sys.stdout):
        if scale not in SCALES:
            raise SystemExit("unknown scale '%s' (expected %s)" % (scale, ", ".join(SCALES)))
        self.name = scale
        self.scale = SCALES[scale]
        self.out = os.path.abspath(out)
        self.dry = dry_run
        self.seeds = seeds or self.scale["seeds"]
        self.attn = attn or os.environ.get("ATTN") or os.path.join(ROOT, "build", "bin", "attn")
        self.user_data = data
        self.log = log
        self.commit = self._commit()
        self.hardware = self._hardware()
        self.done_here = set()  # runs and data this process has trained or prepared (or printed)
        self.only_rows = None   # a subset of row ids (run_all.py --rows)
        self.lock = threading.Lock()

    # -- facts for the records -------------------------------------------------------
    def _commit(self):
        try:
            head = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True, text=True,
                                  check=True).stdout.strip()
            dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True).stdout.strip()
            return head + ("+dirty" if dirty else "")
        except (OSError, subprocess.CalledProcessError):
            return "unknown"

    def _hardware(self):
        cpu = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        cpu = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        hw = {"cpu": cpu, "cores": os.cpu_count(), "threads_used": self.scale["threads"] or os.cpu_count(),
              "system": platform.platform()}
        if self.scale["device"] == "cuda":
            try:
                hw["gpu"] = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout.strip()
            except OSError:
                hw["gpu"] = "none found"
        return hw

    # -- commands --------------------------------------------------------------------
    def say(self, text):
        with self.lock:
            print(text, file=self.log, flush=True)

    def run(self, args, skip=False):
        """Runs `attn ARGS`; returns (wall seconds, CPU seconds) or None when printed only."""
        line = " ".join(shlex.quote(a) for a in [self.attn] + args)
        if self.dry or skip:
            self.say(("# done, skipped: " if skip else "$ ") + line)
            return None
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.time()
        result = subprocess.run([self.attn] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wall = time.time() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if result.returncode != 0:
            self.say("$ " + line + "\n" + result.stdout)
            raise SystemExit("attn exited %d: %s" % (result.returncode, line))
        tail = [l for l in result.stdout.splitlines() if not l.startswith("[")][-12:]
        self.say("\n".join(["$ " + line] + ["  " + l for l in tail] + ["  (%.0f s)" % wall]))
        return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)

    def common(self):
        t = self.scale["threads"]
        return ["--threads", str(t)] if t else []

    # -- data ------------------------------------------------------------------------
    def text_data(self):
        if self.name == "paper":
            return self.user_data or "FINEWEB10B_DIR"
        d = os.path.join(self.out, "data", "text")
        if d not in self.done_here:
            done = os.path.exists(os.path.join(d, "sotu_val_documents.json"))
            self.run(["data", "prepare", "--tokenizer", self.scale["tokenizer"], "--out", d], skip=done)
            self.done_here.add(d)
        return d

    def passkey_data(self):
        text = self.text_data()
        p = self.scale["passkey"]
        d = os.path.join(self.out, "data", "passkey")
        if d not in self.done_here:
            done = os.path.exists(os.path.join(d, "synth.json"))
            lengths = ["--min-length", str(p["min_length"])] if "min_length" in p else []
            self.run(["data", "synth", "--task", "passkey", "--data", text, "--out", d, "--mix", str(p["mix"]),
                      "--max-length", str(p["max_length"])] + lengths + ["--filler", p["filler"], "--digits",
                      str(p.get("digits", 5)), "--seed", "1"], skip=done)
            self.done_here.add(d)
        return d

    # -- runs ------------------------------------------------------------------------
    def run_id(self, program, params, data, seed):
        return "%s%s-%s-s%d" % (stem(program), param_suffix(params), data, seed)

    def run_dir(self, run_id):
        return os.path.join(self.out, "runs", run_id)

    def record(self, run_id):
        path = os.path.join(self.run_dir(run_id), "record.json")
        if os.path.exists(path):
            with open(path) as f:
                return json.load(f)
        return {}

    def write_record(self, run_id, record):
        path = os.path.join(self.run_dir(run_id), "record.json")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(record, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)

    def train(self, program, params, data_kind, seed):
        """The training run of `program` with `params` on text or passkey data; returns its id."""
        run_id = self.run_id(program, params, data_kind, seed)
        d = self.run_dir(run_id)
        rec = self.record(run_id)
        finished = rec.get("train", {}).get("finished", False)
        data = self.passkey_data() if data_kind == "passkey" else self.text_data()
        t = self.scale[data_kind]
        args = ["train", "--config", self.scale["config"], "--attn", os.path.join(STDLIB, program)] + set_args(params)
        args += ["--backend", self.scale["backend"], "--device", self.scale["device"], "--data", data,
                 "--steps", str(t["steps"]), "--seq-len", str(self.scale["seq_len"]),
                 "--micro-batch", str(t["micro_batch"]), "--lr", str(t["lr"]), "--seed", str(seed), "--quiet",
                 "--out", d]
        if "batch_tokens" in t:
            args += ["--batch-tokens", str(t["batch_tokens"])]
        if "warmup" in t:
            args += ["--warmup", str(t["warmup"])]
        if "windows" in t:  # aligned: windows start at documents, so instances are seen whole
            args += ["--windows", t["windows"]]
        if t["steps"] >= 200:  # an interrupted long run resumes from its last checkpoint
            args += ["--checkpoint-every", str(max(100, t["steps"] // 20))]
        args += self.common()
        resume = not finished and os.path.exists(os.path.join(d, "checkpoint", "state.json"))
        if resume:
            args.append("--resume")
        timing = self.run(args, skip=finished)
        if timing is None:
            return run_id
        with open(os.path.join(d, "config.json")) as f:
            config = json.load(f)
        rec.update({"id": run_id, "scale": self.name, "program": program, "params": params, "data": data_kind,
                    "data_dir": os.path.relpath(data, self.out), "seed": seed, "commit": self.commit,
                    "hardware": self.hardware})
        previous = rec.get("train", {})
        rec["train"] = {"command": [self.attn] + args, "finished": True,
                        "seconds": timing[0] + (previous.get("seconds", 0) if resume else 0),
                        "cpu_seconds": timing[1] + (previous.get("cpu_seconds", 0) if resume else 0),
                        "tokens": config["steps"] * config["batch_tokens"], "config": config,
                        "date": datetime.datetime.now().isoformat(timespec="seconds")}
        rec.setdefault("measurements", {})
        self.write_record(run_id, rec)
        return run_id

    def measure_name(self, program, params):
        return stem(program) + param_suffix(params)

    def _measured(self, run_id, kind, name, args):
        out = os.path.join(self.run_dir(run_id), kind, name + ".json")
        done = os.path.exists(out)
        if not self.dry and not done:
            os.makedirs(os.path.dirname(out), exist_ok=True)
        timing = self.run(args + ["--out", out] + self.common(), skip=done)
        if timing is not None:
            rec = self.record(run_id)
            rec.setdefault("measurements", {})["%s/%s" % (kind, name)] = {
                "command": [self.attn] + args + ["--out", out] + self.common(), "seconds": timing[0],
                "cpu_seconds": timing[1], "commit": self.commit,
                "date": datetime.datetime.now().isoformat(timespec="seconds")}
            self.write_record(run_id, rec)
        return out

    def evaluate(self, run_id, program, params, data):
        args = ["eval", "--ckpt", self.run_dir(run_id), "--attn", os.path.join(STDLIB, program)] + set_args(params)
        args += ["--backend", self.scale["backend"], "--device", self.scale["device"], "--data", data,
                 "--lengths", ",".join(self.scale["lengths"]), "--max-docs", str(self.scale["max_docs"]),
                 "--per-position", str(self.scale["seq_len"])]
        return self._measured(run_id, "eval", self.measure_name(program, params), args)

    def passkey(self, run_id, program, params, data):
        s = self.scale
        args = ["passkey", "--ckpt", self.run_dir(run_id), "--attn", os.path.join(STDLIB, program)] + set_args(params)
        args += ["--backend", s["backend"], "--device", s["device"], "--data", data,
                 "--lengths", ",".join(s["passkey_lengths"]),
                 "--depths", ",".join(str(x) for x in s["passkey_depths"]), "--trials", str(s["passkey_trials"]),
                 "--filler", s["passkey"].get("eval_filler", s["passkey"]["filler"]), "--digits", "5", "--seed", "1"]
        return self._measured(run_id, "passkey", self.measure_name(program, params), args)


def rows_of(runner, experiment):
    """The rows of `experiment` this scale runs (figure 2: only the scale's p values)."""
    rows = [r for r in load_values() if r["experiment"] == experiment]
    keep = runner.scale["rows"]
    if keep is not None:
        rows = [r for r in rows if r["id"] in keep]
    if runner.only_rows is not None:
        rows = [r for r in rows if r["id"] in runner.only_rows]
    if experiment == "figure2":
        rows = [r for r in rows if r["params"].get("p") in runner.scale["figure2_p"]]
    if experiment == "table4":
        rows = [r for r in rows if not r["table"].startswith("4 (trained")
                or r["params"].get("p") in runner.scale["trained_p"]]
    return rows


def plan(runner, experiments):
    """The jobs of `experiments`: {run key: [measurements]}, each training run once however many
    rows share it. A run key is (program, params, data kind, seed); a measurement is
    (kind, program, params) with kind "eval" or "passkey"."""
    jobs = {}

    def need(program, params, kind, seed, measurement):
        key = (program, tuple(sorted(params.items())), kind, seed)
        todo = jobs.setdefault(key, [])
        if measurement not in todo:
            todo.append(measurement)

    for experiment in experiments:
        rows = rows_of(runner, experiment)
        runner.say("# %s at scale %s: %d rows x %d seeds" % (experiment, runner.name, len(rows), len(runner.seeds)))
        kind = "passkey" if experiment == "passkey" else "text"
        for seed in runner.seeds:
            for row in rows:
                tw = row["trained_with"]
                m = (row["program"], tuple(sorted(row["params"].items())))
                if kind == "passkey":
                    need(tw["program"], tw["params"], kind, seed, ("passkey",) + m)
                    if runner.scale["passkey_loss"]:
                        need(tw["program"], tw["params"], kind, seed, ("eval",) + m)
                else:
                    need(tw["program"], tw["params"], kind, seed, ("eval",) + m)
        if experiment == "figure2":  # gradient norms of runs trained with the re-weighting
            for seed in runner.seeds:
                for program in ("softmax_rw.attn", "lssar.attn"):
                    for p in runner.scale["trained_p"]:
                        row_id = "t4-trained-%s-p%d" % (stem(program), p)  # the same runs as table 4's
                        if runner.only_rows is None or row_id in runner.only_rows:
                            need(program, {"p": p}, "text", seed, ("eval", program, (("p", p),)))
    return jobs


def execute(runner, jobs, workers=1):
    """Trains and measures every job; `workers` jobs at a time (each its own run directory)."""
    kinds = {key[2] for key in jobs}
    data = {}
    if "text" in kinds or "passkey" in kinds:
        data["text"] = runner.text_data()
    if "passkey" in kinds:
        data["passkey"] = runner.passkey_data()

    def one(item):
        (program, params, kind, seed), measurements = item
        run_id = runner.train(program, dict(params), kind, seed)
        for what, mprogram, mparams in measurements:
            if what == "passkey":
                runner.passkey(run_id, mprogram, dict(mparams), data[kind])
            else:
                runner.evaluate(run_id, mprogram, dict(mparams), data[kind])

    items = list(jobs.items())
    if workers <= 1 or runner.dry:
        for item in items:
            one(item)
        return
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        for f in [pool.submit(one, item) for item in items]:
            f.result()


def run_experiment(runner, experiment, workers=1):
    execute(runner, plan(runner, [experiment]), workers)


def arguments(description, experiment=True):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--scale", required=True, choices=sorted(SCALES), help="ci, cpu, gpu or paper")
    ap.add_argument("--out", help="results directory (default: examples/paper/results/SCALE)")
    ap.add_argument("--seeds", help="comma-separated seeds (default: the scale's)")
    ap.add_argument("--attn", help="the attn binary (default: $ATTN, else build/bin/attn)")
    if experiment:
        ap.add_argument("--jobs", type=int, default=1, help="training runs at a time (default 1)")
        ap.add_argument("--dry-run", action="store_true", help="print every command, run nothing")
        ap.add_argument("--data", help="paper scale: the FineWeb-10B shard directory (llm.c's format)")
    return ap


def runner_from(args):
    seeds = None
    if args.seeds:
        try:
            seeds = [int(s) for s in args.seeds.split(",") if s]
        except ValueError:
            raise SystemExit("--seeds: comma-separated integers, not '%s'" % args.seeds)
        if not seeds or any(s < 0 for s in seeds):
            raise SystemExit("--seeds: at least one seed, none negative")
    out = args.out or os.path.join(HERE, "results", args.scale)
    if args.scale == "paper" and not getattr(args, "dry_run", False) and not getattr(args, "data", None):
        raise SystemExit("the paper scale needs --data DIR (FineWeb-10B as llm.c shards); try --dry-run")
    return Runner(args.scale, out, dry_run=getattr(args, "dry_run", False), seeds=seeds, attn=args.attn,
                  data=getattr(args, "data", None))


def experiment_main(experiment, description):
    args = arguments(description).parse_args()
    runner = runner_from(args)
    if args.jobs < 1:
        raise SystemExit("--jobs: at least 1")
    run_experiment(runner, experiment, args.jobs)
