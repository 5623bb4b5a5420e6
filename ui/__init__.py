"""Streamlit UI: ask (cited answers + source viewer), interaction checker, knowledge-graph browser, KB report.

`streamlit run ui/app.py` (or `drugrag ui`). Pages talk to the knowledge base only through `ui.client`, which calls
rag.service.DrugService in-process or the HTTP API (settings.ui_backend).
"""
