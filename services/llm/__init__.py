"""The embedded LLM: SmolLM2-135M-Instruct behind llama-cpp-python's OpenAI-compatible server."""
