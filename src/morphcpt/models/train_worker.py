"""Entry point of one training worker: `python -m morphcpt.models.train_worker SPEC.json`
(under torchrun on GPUs). The __main__ guard matters: checkpoint writers may spawn processes."""

import json
import sys
from pathlib import Path

if __name__ == "__main__":
    from morphcpt.fileio import caused_by_no_space
    from morphcpt.models.checkpoints import NO_SPACE_EXIT_CODE
    from morphcpt.models.recipe import train
    from morphcpt.models.run_lock import worker_lock

    spec = json.loads(Path(sys.argv[1]).read_text())
    try:
        with worker_lock(Path(spec["train_dir"])):  # rank 0: an orphaned worker still holds its folder
            train(spec)
    except Exception as exc:
        if not caused_by_no_space(exc):  # a full disk (mostly in a checkpoint save): the driver says it in
            raise                        # one line and removes the cut-off save (docs/design.md §6)
        first_line = (str(exc).splitlines() or [""])[0][:300]
        print(f"train: out of disk space in the worker ({type(exc).__name__}: {first_line})", file=sys.stderr, flush=True)
        sys.exit(NO_SPACE_EXIT_CODE)
