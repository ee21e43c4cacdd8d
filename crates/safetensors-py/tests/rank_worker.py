"""One rank of the ``load_for_rank`` tests (``test_load_for_rank.py`` starts 2 or 3 of these).

Usage: ``python rank_worker.py <spec.json> <rank>``. The spec names the process group's
address and size, and the loads to run: each entry gives the location, plan, mode and the
file to save this rank's result to (with our own ``save_file``; the test compares it with
``torch.chunk`` of the original tensors). A load that raises records the error's type and
message instead, so the test can check that every rank failed cleanly rather than hung.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta

import torch.distributed as dist

from safetensors.torch import load_for_rank, save_file


def main() -> None:
    spec = json.loads(open(sys.argv[1], encoding="utf-8").read())
    rank = int(sys.argv[2])
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{spec['port']}",
        rank=rank,
        world_size=spec["world_size"],
        timeout=timedelta(seconds=spec["timeout"]),
    )
    try:
        for load in spec["loads"]:
            location = load["location"]
            if rank != 0 and load.get("others_location"):
                location = load["others_location"]  # broadcast: only rank 0 may touch the files
            out_path = load["out"].format(rank=rank)
            try:
                out = load_for_rank(location, load["plan"], mode=load["mode"])
            except Exception as e:  # recorded for the test to check
                with open(out_path + ".err", "w", encoding="utf-8") as f:
                    json.dump({"type": type(e).__name__, "message": str(e)}, f)
                continue
            save_file({k: v.contiguous() for k, v in out.items()}, out_path)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
