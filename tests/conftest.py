from __future__ import annotations

import warnings

warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"onnx\.backend\.test\.case\..*")
