"""The training driver checks the NeMo stack without importing NeMo (docs/design.md §6): it builds
no NeMo object itself except for the step-0 reference, which sets NeMo up on its own, so a resumed
launch (every launch after a preemption) does not pay NeMo's imports twice (driver and worker)."""

from __future__ import annotations

import json

from model_fixtures import run_python

HEAVY = ("nemo", "megatron", "lightning", "pytorch_lightning")


def test_the_driver_stack_check_does_not_import_nemo(tmp_path):
    out = tmp_path / "modules.json"
    rc, output = run_python(f"""
        import json, sys
        from pathlib import Path
        from morphcpt.models.train import check_stack
        versions = check_stack("llama")
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})
        Path({str(out)!r}).write_text(json.dumps({{"versions": versions, "heavy": heavy}}))
    """)
    assert rc == 0, output
    found = json.loads(out.read_text())
    assert found["versions"]["nemo"] == "2.7.3" and found["versions"]["megatron.core"] == "0.15.3", found
    assert "software: NeMo 2.7.3" in output  # the stack is still logged
    assert found["heavy"] == [], found["heavy"][:20]
