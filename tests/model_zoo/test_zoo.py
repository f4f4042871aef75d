"""model_zoo.zoo: Keras is imported without its unused extras, and only the importing thread skips them."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from model_zoo import zoo

ROOT = Path(__file__).resolve().parents[2]
FRESH_PROCESS = """
import sys
from model_zoo import zoo
keras = zoo.import_keras()
skipped = [name for name in zoo.KERAS_SKIPPED_EXTRAS if name in sys.modules]
assert not skipped, skipped
assert not any(isinstance(hook, zoo._SkipInThisThread) for hook in sys.meta_path)
import matplotlib.pyplot, sklearn.metrics                  # still importable afterwards
assert keras.Input((2,)).shape == (None, 2)
print("ok")
"""


def test_import_keras_leaves_out_the_extras_in_a_fresh_process():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    env.pop(zoo.KERAS_EXTRAS_ENV, None)
    result = subprocess.run([sys.executable, "-c", FRESH_PROCESS], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-2000:]


def test_skip_hook_applies_to_its_own_thread_only(tmp_path, monkeypatch):
    (tmp_path / "zoo_skip_probe").mkdir()
    (tmp_path / "zoo_skip_probe" / "__init__.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    hook = zoo._SkipInThisThread(["zoo_skip_probe"])
    monkeypatch.setattr(sys, "meta_path", [hook, *sys.meta_path])
    other = {}
    worker = threading.Thread(target=lambda: other.update(module=__import__("zoo_skip_probe")))
    worker.start()
    worker.join()
    assert other["module"].VALUE == 1                      # another session's thread imports normally
    monkeypatch.delitem(sys.modules, "zoo_skip_probe")
    with pytest.raises(ModuleNotFoundError):
        __import__("zoo_skip_probe")
