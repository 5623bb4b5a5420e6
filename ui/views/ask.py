"""Ask: a conversation of cited answers; each citation opens the label section with the quote highlighted."""

from __future__ import annotations

from typing import Any

import streamlit as st

from rag.answer.schema import Answer, Turn
from ui.components import call, client_or_stop, plain, render_answer

PLACEHOLDER = "Ask a drug question in English or 中文 — e.g. What is naproxen used for? / 布洛芬的用法用量？"
TURNS = "ask_turns"
PENDING = "ask_pending"


def _queue(question: str) -> None:
    st.session_state[PENDING] = question


def _clear() -> None:
    st.session_state[TURNS] = []


def _history(turns: list[dict[str, Any]]) -> list[Turn]:
    out: list[Turn] = []
    for t in turns:
        ans: Answer | None = t.get("answer")
        if ans is None:
            continue
        out.append(Turn(role="user", content=t["question"][:4000]))
        out.append(Turn(role="assistant", content=ans.answer[:4000]))
    return out[-10:]


def _show_question(q: str) -> None:
    plain(q if len(q) <= 600 else f"{q[:600]} … ({len(q):,} characters)")


def _render_turn(i: int, t: dict[str, Any]) -> None:
    with st.chat_message("user"):
        _show_question(t["question"])
    with st.chat_message("assistant"):
        if t.get("error"):
            st.error(t["error"], icon=":material/error:")
            return
        ans: Answer = t["answer"]
        answer_tab, json_tab = st.tabs(["Answer", "JSON"])
        with answer_tab:
            render_answer(ans, key=f"t{i}", on_follow_up=_queue)
        with json_tab:
            st.json(ans.model_dump(mode="json"), expanded=2)


st.title("Ask")
st.caption("Answers come from drug labels and a medical knowledge graph; every fact cites its source. "
           "Open a source to see the quoted text highlighted in the label.")
turns: list[dict[str, Any]] = st.session_state.setdefault(TURNS, [])
with st.sidebar:
    st.button("Clear conversation", on_click=_clear, disabled=not turns, icon=":material/delete:")

typed = st.chat_input(PLACEHOLDER, key="ask_input")
question = typed if typed is not None else st.session_state.pop(PENDING, None)

if not turns and question is None:
    st.info("Ask about a drug's uses, dosage, warnings, side effects or interactions — in English or Chinese.",
            icon=":material/lightbulb:")
    examples = ["What is naproxen used for?", "What are the side effects of ibuprofen?",
                "Can I take warfarin with aspirin?", "阿莫西林的用法用量是什么？"]
    cols = st.columns(len(examples))
    for col, ex in zip(cols, examples, strict=True):
        col.button(ex, on_click=_queue, args=(ex,), key=f"example-{ex}", width="stretch")

for i, t in enumerate(turns):
    _render_turn(i, t)

if question is not None:
    client = client_or_stop()
    with st.chat_message("user"):
        _show_question(question)
    with st.chat_message("assistant"), st.spinner("Searching the labels and the knowledge graph…"):
        answer, err = call(client.ask, question, _history(turns))
    turns.append({"question": question, "answer": answer, "error": err})
    st.rerun()
