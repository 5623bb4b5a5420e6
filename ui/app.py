"""Streamlit entry point: `drugrag ui` or `streamlit run ui/app.py`. Pages live in ui/views/ (st.navigation)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run ui/app.py` puts ui/ first on sys.path, not the project root
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from rag.core.settings import get_settings  # noqa: E402
from ui.components import call, get_client, inject_css  # noqa: E402

st.set_page_config(page_title="drugrag — cited drug answers", page_icon=":material/medication:", layout="wide")

PAGES = (
    Path(__file__).resolve().parent / "views"
)  # not "pages/": that name switches Streamlit to its legacy multipage mode
nav = st.navigation(
    [
        st.Page(PAGES / "ask.py", title="Ask", icon=":material/chat:", default=True),
        st.Page(
            PAGES / "interactions.py",
            title="Interaction checker",
            icon=":material/medication:",
            url_path="interactions",
        ),
        st.Page(PAGES / "graph_browser.py", title="Knowledge graph", icon=":material/hub:", url_path="graph"),
        st.Page(PAGES / "knowledge_base.py", title="Knowledge base", icon=":material/database:", url_path="kb"),
    ]
)

inject_css()
call(get_client)  # open the KB (and warm the model up in the background) before the first question
with st.sidebar:
    s = get_settings()
    where = s.api_url if s.ui_backend == "http" else str(s.home)
    st.caption(f"Backend: **{s.ui_backend}** · {where}")
    st.caption(
        "Every fact cites verbatim label text or a knowledge-graph edge. For reference only — not medical "
        "advice and not a prescription."
    )

nav.run()
