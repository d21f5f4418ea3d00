"""Entry point of one training worker: `python -m morphcpt.models.train_worker SPEC.json`
(under torchrun on GPUs). The __main__ guard matters: checkpoint writers may spawn processes."""

import json
import sys
from pathlib import Path

if __name__ == "__main__":
    from morphcpt.models.recipe import train
    from morphcpt.models.run_lock import worker_lock

    spec = json.loads(Path(sys.argv[1]).read_text())
    with worker_lock(Path(spec["train_dir"])):  # rank 0: an orphaned worker still holds its folder
        train(spec)
