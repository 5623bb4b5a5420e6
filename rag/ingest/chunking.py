"""Section-aware chunking: chunks never span two sections and tile each section exactly.

For a section text T split into chunks c_0..c_n: c_i.text == T[c_i.start:c_i.end], c_0.start == 0,
c_i.end == c_{i+1}.start and c_n.end == len(T). So the section can be rebuilt from its chunks, and every quote
cited from a chunk is a span of the stored section.
"""

from __future__ import annotations

from dataclasses import dataclass

from rag.core.text import sentence_spans


@dataclass(slots=True, frozen=True)
class Chunk:
    index: int
    start: int
    end: int
    text: str


def chunk_section(text: str, max_chars: int = 1200) -> list[Chunk]:
    if not text:
        return []
    spans = sentence_spans(text, max_len=max_chars)
    cuts = [0]
    cur_start = 0
    for s, e in spans:
        if e - cur_start > max_chars and s > cur_start:
            cuts.append(s)
            cur_start = s
    cuts.append(len(text))
    chunks = []
    for i, (a, b) in enumerate(zip(cuts, cuts[1:], strict=False)):
        chunks.append(Chunk(i, a, b, text[a:b]))
    return chunks
