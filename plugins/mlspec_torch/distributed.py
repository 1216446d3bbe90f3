"""`resources.gpus: N > 1`: the run in N processes under torchrun, one per GPU, through DDP.

The plugin writes the step's request (StepRequest.to_json) and what it worked out beside it (the
champion's metrics, the entrypoint's position) to a JSON file and launches `torchrun --standalone
--nproc_per_node N -m mlspec_torch.distributed FILE` as a child process group (so a second Ctrl-C
stops every rank); each rank rebuilds the request from the file, joins the process group (NCCL on
GPUs, gloo on CPUs) and trains its share; rank 0 evaluates, stores the artifacts and writes the
outputs back. On a CPU, N processes with gloo take the same path: that is how the tests run it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlspec.sdk import MlspecError, StepInterrupted
from mlspec_torch.loop import TrainingFailed


def launch(job: dict[str, Any], processes: int, scratch: Path, log: Callable[[str], None],
           cancelled: threading.Event) -> dict[str, Any]:
    """Run `job` (`request`: the StepRequest as JSON; `champion`, `where`, `accelerator` beside it) on
    `processes` ranks."""
    address, workdir = job["request"]["resource"]["address"], job["request"]["workdir"]
    job_file, result_file = scratch / "job.json", scratch / "result.json"
    job_file.write_text(json.dumps({**job, "result": str(result_file)}))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               "-m", "mlspec_torch.distributed", str(job_file)]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                             start_new_session=True, cwd=workdir)
    tail: list[str] = []

    def stop_on_cancel() -> None:
        cancelled.wait()
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)

    threading.Thread(target=stop_on_cancel, daemon=True).start()
    assert child.stdout is not None
    for line in child.stdout:
        line = line.rstrip("\n")
        tail = [*tail[-39:], line]
        if line.startswith("[mlspec] "):
            log(line[len("[mlspec] "):])
    code = child.wait()
    if cancelled.is_set():
        raise StepInterrupted(f"{address}: the DDP run was stopped; the next apply resumes from its "
                              "last checkpoint")
    result = json.loads(result_file.read_text()) if result_file.is_file() else None
    if result is not None and "error" in result:
        raise TrainingFailed(result["error"])
    errors = sorted(scratch.glob("error.rank*.json"))
    if errors:  # a rank other than 0 failed first: its reason, not torchrun's summary of the kill
        found = json.loads(errors[0].read_text())
        raise TrainingFailed(f"{found['error']} (rank {found['rank']} of {processes})")
    if code != 0 or result is None:
        shown = "\n".join(f"  {line}" for line in tail[-20:])
        raise TrainingFailed(f"{address}: torchrun exited with {code} before rank 0 reported:\n{shown}")
    return dict(result["outputs"])


def main(path: str) -> int:
    """One rank (torchrun sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous)."""
    import torch
    import torch.distributed as dist

    from mlspec.sdk import StepRequest
    from mlspec_torch.training import RunContext, run

    job = json.loads(Path(path).read_text())
    me = int(os.environ.get("RANK", 0))
    use_cuda = torch.cuda.is_available() and job["accelerator"] != "cpu"
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group("nccl" if use_cuda else "gloo")
    try:
        context = RunContext(
            StepRequest.from_json(job["request"]), champion=job.get("champion"), commit=job.get("commit"),
            log=lambda line: print(f"[mlspec] {line}", flush=True), where=job["where"])
        outputs = run(context)
        if me == 0:
            _write(job["result"], {"outputs": outputs})
        return 0
    except Exception as err:  # every rank says why it stopped; the launcher reports the first
        reason = str(err) if isinstance(err, MlspecError) else f"{type(err).__name__}: {err}"
        if me == 0:
            _write(job["result"], {"error": reason})
        else:
            _write(str(Path(job["result"]).with_name(f"error.rank{me}.json")), {"error": reason, "rank": me})
        return 1
    finally:
        dist.destroy_process_group()


def _write(path: str, value: Any) -> None:
    tmp = f"{path}.tmp"
    Path(tmp).write_text(json.dumps(value))
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
