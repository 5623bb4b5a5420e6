"""drugrag: retrieval, cited answers, generation and the one service behind CLI, API and UI."""
