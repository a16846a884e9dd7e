"""Run the jobs of a roofline plan as Ray tasks, then merge them.

`roofline plan CITY.toml -o PLAN` cuts a city into tile jobs (``PLAN/plan.json`` lists them).
This driver submits one Ray task per job; each task runs the ``roofline`` binary on its job
(``roofline labels|features|predict --job PLAN/jobs/N``), which writes its partition
``PLAN/<stage>/tile=N/part.parquet`` (atomically: a temporary file renamed into place). PLAN must
therefore be a path every Ray node sees (a shared file system on a multi-node cluster). Tasks
whose worker dies (a node lost, the task killed) are retried up to ``max_retries`` times, and so
are runs of ``roofline`` killed by a signal (the OOM killer); a run that fails with an error
(bad input) is not retried: the driver stops with its one-line message. When every job is done
the driver runs ``roofline merge`` on the machine it runs on, which checks that every building
is there exactly once and writes the table one process would have written. Each attempt of a
job leaves a line (host, pid, time) in ``PLAN/ray/<stage>-<time>-<pid>/job-N``.

Test hook: with ``ROOFLINE_RAY_KILL_FIRST_ATTEMPT=N`` in the driver's environment, the first
attempt of job N kills its ``roofline`` process and then its own Ray worker (SIGKILL) shortly
after starting, the way a lost node would; Ray runs the job again.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import ray

#: The roofline subcommand of each stage.
STAGE_COMMANDS = {"labels": "labels", "features": "features", "predictions": "predict"}

#: Environment variable of the test hook (see the module docs).
KILL_ENV = "ROOFLINE_RAY_KILL_FIRST_ATTEMPT"


class RooflineKilled(Exception):
    """roofline died of a signal (OOM killer, a node drained): worth running again."""


class RooflineFailed(Exception):
    """roofline stopped with an error (bad input, a full disk): running it again would not help."""


def load_plan(plan_dir: Path) -> dict:
    """The plan manifest (``plan.json``) of a plan folder."""
    manifest = plan_dir / "plan.json"
    try:
        plan = json.loads(manifest.read_text())
    except FileNotFoundError:
        raise SystemExit(f"roofline-ray: error: {manifest}: no plan here (run `roofline plan` first)")
    except json.JSONDecodeError as e:
        raise SystemExit(f"roofline-ray: error: {manifest}: not a plan manifest ({e})")
    if not plan.get("jobs"):
        raise SystemExit(f"roofline-ray: error: {manifest}: the plan has no jobs")
    return plan


def find_roofline(given: str | None) -> str:
    """The roofline binary: ``given``, else ``$ROOFLINE_BIN``, else ``roofline`` on PATH."""
    exe = given or os.environ.get("ROOFLINE_BIN") or shutil.which("roofline")
    if not exe:
        raise SystemExit(
            "roofline-ray: error: no roofline binary (give --roofline PATH or put roofline on PATH)"
        )
    return str(Path(exe).resolve())


def job_command(roofline: str, stage: str, job_dir: Path, model: str | None, threads: int) -> list:
    """The command line of one job."""
    cmd = [roofline, "--quiet", "--threads", str(threads), STAGE_COMMANDS[stage]]
    if stage == "predictions":
        cmd += ["--model", model]
    return cmd + ["--job", str(job_dir)]


@ray.remote
def run_job(cmd: list, attempts_dir: str, job_id: int, kill_job: int | None) -> dict:
    """Runs one job's roofline command on a Ray worker; returns how it went. Each attempt
    leaves a line in ``attempts_dir/job-N`` (on the plan's shared path)."""
    attempts = Path(attempts_dir)
    attempts.mkdir(parents=True, exist_ok=True)
    log = attempts / f"job-{job_id}"
    # One line per attempt (appends of one short line are atomic): the driver and the tests
    # read how many times a job ran.
    with open(log, "a") as f:
        f.write(f"{socket.gethostname()} {os.getpid()} {time.time():.3f}\n")
    attempt = len(log.read_text().splitlines())
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if kill_job == job_id and attempt == 1:
        # Well inside the run: a job of the test's plan takes ~0.15 s (0.2 s here raced it).
        time.sleep(0.02)
        running = proc.poll() is None
        proc.kill()
        proc.wait()
        (attempts / f"job-{job_id}.killed").write_text(
            "killed while running\n" if running else "killed after it ended\n"
        )
        os.kill(os.getpid(), signal.SIGKILL)
    out, err = proc.communicate()
    if proc.returncode < 0:
        raise RooflineKilled(f"job {job_id}: roofline killed by signal {-proc.returncode}")
    if proc.returncode != 0:
        raise RooflineFailed(err.strip().splitlines()[-1] if err.strip() else f"exit code {proc.returncode}")
    return {
        "job": job_id,
        "seconds": time.monotonic() - start,
        "attempt": attempt,
        "host": socket.gethostname(),
        "stdout": out,
    }


def run_plan(
    plan_dir: str | Path,
    stage: str,
    output: str,
    *,
    model: str | None = None,
    roofline: str | None = None,
    address: str | None = None,
    num_cpus: int | None = None,
    cpus_per_task: int = 1,
    max_retries: int = 3,
    merge_args: list | None = None,
    quiet: bool = False,
) -> list:
    """Runs every job of the plan in ``plan_dir`` for ``stage`` on Ray and merges them into
    ``output``; returns one record per job (seconds, attempt, host).

    ``address``: a running Ray cluster (``"auto"`` on a node of one); without it a local Ray
    instance with ``num_cpus`` CPUs is started for the run and stopped after it.
    ``merge_args``: extra arguments of ``roofline merge`` (e.g. ``["--table", "heights"]`` for
    a ``PG:`` output).
    """
    if stage not in STAGE_COMMANDS:
        raise SystemExit(f"roofline-ray: error: unknown stage '{stage}' (labels, features or predictions)")
    if stage == "predictions" and not model:
        raise SystemExit("roofline-ray: error: the predictions stage needs --model")
    plan_dir = Path(plan_dir).resolve()
    plan = load_plan(plan_dir)
    exe = find_roofline(roofline)
    if model:
        model = str(Path(model).resolve())
    kill = os.environ.get(KILL_ENV)
    kill_job = int(kill) if kill else None

    def say(msg: str) -> None:
        if not quiet:
            print(f"roofline-ray: {msg}", file=sys.stderr, flush=True)

    started = False
    if not ray.is_initialized():
        kwargs = {"include_dashboard": False, "log_to_driver": False}
        if address:
            kwargs["address"] = address
        else:
            kwargs["num_cpus"] = num_cpus
        ray.init(**kwargs)
        started = True
    try:
        task = run_job.options(
            num_cpus=cpus_per_task,
            max_retries=max_retries,
            retry_exceptions=[RooflineKilled],
        )
        # This run's attempt records: PLAN/ray/<stage>-<time>-<pid>/job-N.
        run_dir = plan_dir / "ray" / f"{stage}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        pending = {}
        for job in plan["jobs"]:
            cmd = job_command(exe, stage, plan_dir / job["path"], model, cpus_per_task)
            pending[task.remote(cmd, str(run_dir), job["id"], kill_job)] = job["id"]
        n = len(pending)
        say(f"{plan['city_name']}: {n} {stage} jobs submitted ({int(ray.cluster_resources().get('CPU', 0))} CPUs in the cluster)")
        records = []
        t0 = time.monotonic()
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            job_id = pending.pop(ready[0])
            try:
                r = ray.get(ready[0])
            except Exception as e:  # a failed job: stop the others, report it in one line
                for ref in pending:
                    ray.cancel(ref, force=True)
                cause = getattr(e, "cause", None) or e
                msg = " ".join(str(cause).split())
                raise SystemExit(f"roofline-ray: error: job {job_id}: {msg}")
            records.append(r)
            retried = f", attempt {r['attempt']}" if r["attempt"] > 1 else ""
            say(f"[{len(records)}/{n}] job {r['job']} done in {r['seconds']:.1f} s on {r['host']}{retried} ({time.monotonic() - t0:.1f} s elapsed)")
    finally:
        if started:
            ray.shutdown()
    records.sort(key=lambda r: r["job"])
    merge = [exe, "--quiet", "merge", str(plan_dir), "--stage", stage, "-o", output] + list(merge_args or [])
    done = subprocess.run(merge, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr.strip() or f"roofline merge failed ({done.returncode})")
    say(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else f"merged into {output}")
    return records


def main(argv: list | None = None) -> None:
    """``python -m roofline_ray PLAN --stage S -o OUT``: see ``--help``."""
    p = argparse.ArgumentParser(
        prog="roofline-ray",
        description="Run a roofline plan's jobs as Ray tasks (retried when a worker dies), then merge them.",
    )
    p.add_argument("plan", help="plan folder written by `roofline plan` (on a path every node sees)")
    p.add_argument("--stage", required=True, choices=sorted(STAGE_COMMANDS), help="which stage to run")
    p.add_argument("-o", "--output", required=True, help="merged table (.parquet, .gpkg, ... or PG:dbname=...)")
    p.add_argument("--model", help="model file (the predictions stage)")
    p.add_argument("--roofline", help="roofline binary (default: $ROOFLINE_BIN, else roofline on PATH)")
    p.add_argument("--address", help="Ray cluster to join (e.g. auto); default: a local Ray instance")
    p.add_argument("--num-cpus", type=int, help="CPUs of the local Ray instance (default: all)")
    p.add_argument("--cpus-per-task", type=int, default=1, help="CPUs (roofline threads) per job (default 1)")
    p.add_argument("--max-retries", type=int, default=3, help="runs of a job after its worker died (default 3)")
    p.add_argument("--table", help="table of a PG: output (passed to roofline merge)")
    p.add_argument("--overwrite", action="store_true", help="replace the PG: table (passed to roofline merge)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    a = p.parse_args(argv)
    merge_args = (["--table", a.table] if a.table else []) + (["--overwrite"] if a.overwrite else [])
    run_plan(
        a.plan,
        a.stage,
        a.output,
        model=a.model,
        roofline=a.roofline,
        address=a.address,
        num_cpus=a.num_cpus,
        cpus_per_task=a.cpus_per_task,
        max_retries=a.max_retries,
        merge_args=merge_args,
        quiet=a.quiet,
    )


if __name__ == "__main__":
    main()
