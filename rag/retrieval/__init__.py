"""From a question to evidence: embedding, keyword vectors, entity linking, section routing, the retriever."""
