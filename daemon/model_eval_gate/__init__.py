"""model-eval-gate: gate ML model versions on sandboxed, paired-bootstrap evaluations.

The public API is imported lazily so that `import model_eval_gate.stats` (pure
numpy) does not pull in the database driver.
"""
from __future__ import annotations

__all__ = ["run_eval_gate", "run_eval_gate_quick", "force_promote", "register_model", "validate_metadata"]
__version__ = "0.1.0"

_EXPORTS = {
    "run_eval_gate": "gate",
    "run_eval_gate_quick": "gate",
    "force_promote": "gate",
    "register_model": "catalog",
    "validate_metadata": "catalog",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'model_eval_gate' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{module}", __name__), name)
