"""Build rag/data/prescription_examples.jsonl: labelled, name-masked questions for the request classifier, taken from
the *tuning* halves of the evaluation sets written for this project.

    python eval/build_rx_examples.py        # needs an ingested KB (the linker masks the drug names)

What goes in: every question of eval/paraphrase/rx_probe*.jsonl, probe*.jsonl and dev.jsonl that is not tagged
`held_aside` — requests to prescribe (what `drugrag eval` scores as a refusal question) as positives,
questions about a prescribed drug and ordinary questions as negatives. What never goes in: the held-aside halves,
the held-out set (heldout.jsonl), the QiZhen sets and the sets kept for testing whole (`TEST_SETS`), nor
any question that also occurs in one of them, nor a tuning question whose masked text is a test question's (a label
probe's phrasing filled with another drug in the held-aside half); they stay test sets. Each question is masked as
the service masks it (`mask_mentions`: linked names → X, Z, …; diseases → Y), so the classifier learns the request's
form, not the drug.
Rebuild after adding a probe; the file is data for the classifier, shipped with the package like the frames.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.evaluation import kind_of  # noqa: E402  (a request to prescribe is scored as a "refusal" question)
from rag.retrieval.intent import EXAMPLES, TEST_SETS  # noqa: E402

SRC = ROOT / "eval" / "paraphrase"
log = logging.getLogger("build_rx_examples")


def sources() -> list[Path]:
    files = sorted(SRC.glob("rx_probe*.jsonl")) + sorted(SRC.glob("probe*.jsonl")) + [SRC / "dev.jsonl"]
    return [f for f in files if f.exists()]


def held_aside_rows() -> list[dict[str, object]]:
    """Every question of a test set (held-aside halves, QiZhen, `TEST_SETS`): the same question can be
    generated into a tuning half of one probe and the held-aside half of another; it then stays out."""
    rows: list[dict[str, object]] = []
    for f in sorted(SRC.glob("*.jsonl")):
        for ln in f.read_text(encoding="utf-8").splitlines():
            row = json.loads(ln)
            if "held_aside" in row.get("tags", []) or f.stem in TEST_SETS or "qizhen" in f.stem:
                rows.append(row)
    return rows


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from rag.retrieval.retriever import request_texts
    from rag.service import DrugService

    linker = DrugService().retriever.linker
    out: list[dict[str, object]] = []
    held = held_aside_rows()
    aside = {str(r["id"]) for r in held}
    # nor a tuning question whose masked text is a test question's ("what is X used for" filled with another drug)
    seen = {request_texts(str(r["question"]), linker.link(str(r["question"])))[0] for r in held}
    for f in sources():
        rows = [json.loads(ln) for ln in f.read_text(encoding="utf-8").splitlines() if ln.strip()]
        kept = [r for r in rows if r["id"] not in aside]  # held-aside rows are in `aside` too
        for r in kept:
            lr = linker.link(r["question"])
            # as the service reads it: masked, without a clause that disclaims a request, and the trailing clauses it
            # scores on their own, cut from the question as asked (the masked text has no punctuation left to cut at)
            text, tails = request_texts(r["question"], lr)
            if text in seen:
                continue
            seen.add(text)
            out.append({"id": r["id"], "text": text, "tails": tails, "request": kind_of(r) == "refusal",
                        "from": f.name})
        log.info("%s: %d of %d questions (tuning half)", f.name, len(kept), len(rows))
    with EXAMPLES.open("w", encoding="utf-8") as fh:
        for r in out:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    log.info("%s: %d examples, %d requests", EXAMPLES, len(out), sum(bool(r["request"]) for r in out))


if __name__ == "__main__":
    main()
