"""The application edges over rag.service.DrugService: the CLI, the JSON API and the llama-index adapter."""
