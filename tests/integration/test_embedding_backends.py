"""The embedding backends on the real multilingual-e5-small: exact tokenisation, torch fast path = sentence-
transformers, ONNX export and int8 quality against torch fp32 on real label chunks, calibration and its cache."""

from __future__ import annotations

import random
import sys

import numpy as np
import pytest

from rag.core.settings import Settings
from rag.retrieval.runners import OnnxRunner, TorchRunner, make_runner
from rag.retrieval.tokens import FastTokenizer


@pytest.fixture(scope="module")
def chunk_texts(data_dir, model_dir) -> list[str]:
    """Real embed texts of every source (openFDA, SPL, 中文说明书), sampled with a seed."""
    from rag.ingest.pipeline import label_points, load_sources

    s = Settings(data_dir=data_dir, embedding_model=str(model_dir), ddinter_paths=[], cmedkg_path="",
                 limit_labels=150)
    labels, _, _ = load_sources(s)
    texts = [t for lab in labels for t in label_points(lab, s)[1]]
    return ["passage: " + t for t in random.Random(0).sample(texts, 300)]


@pytest.fixture(scope="module")
def fp32(model_dir) -> TorchRunner:
    return TorchRunner(str(model_dir), 96, "float32")


@pytest.fixture(scope="module")
def onnx_home(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-home")


def test_fast_tokenizer_ids_equal_the_models_tokenizer(model_dir, fp32, chunk_texts) -> None:
    fast = FastTokenizer.for_model(model_dir, 96)
    assert fast is not None and fast.folded  # the e5 build's 4,800 Replace rules fold into one pass
    texts = [*chunk_texts, "query: 萘普生有哪些禁忌？", "query: x"]
    want = fp32.model.tokenizer(texts, truncation=True, max_length=96)["input_ids"]
    assert fast.encode_ids(texts) == want


def test_a_shorter_passage_window_equals_the_models_own_truncation(model_dir, fp32, chunk_texts) -> None:
    # passages are embedded in a 64-token window, questions in 96 (Settings.embedding_passage_max_tokens): the ids
    # cut from the 96 window are the model tokenizer's at 64, and the vectors those of sentence-transformers at 64
    fast = FastTokenizer.for_model(model_dir, 96)
    assert fast is not None
    want = fp32.model.tokenizer(chunk_texts, truncation=True, max_length=64)["input_ids"]
    assert fast.encode_ids(chunk_texts, 64) == want
    assert sum(len(x) for x in want) < sum(len(x) for x in fast.encode_ids(chunk_texts))
    fp32.model.max_seq_length = 64
    try:
        ref = fp32.model.encode(chunk_texts[:32], batch_size=32, normalize_embeddings=True)
    finally:
        fp32.model.max_seq_length = 96
    assert np.abs(fp32.encode(chunk_texts[:32], max_length=64) - ref).max() < 1e-5


def test_the_embedder_embeds_passages_in_their_window_and_questions_in_theirs(model_dir, fp32, tmp_path) -> None:
    from rag.retrieval.embedding import SentenceTransformerEmbedder

    e = SentenceTransformerEmbedder(str(model_dir), max_seq_length=96, passage_max_tokens=64, backend="torch",
                                    dtype="float32", home=tmp_path, cache_path=tmp_path / "emb.sqlite")
    long = "warfarin | Warnings: " + "bleeding risk increases with age and with other drugs that affect clotting. " * 8
    got = e.embed_passages([long])
    assert np.abs(got - fp32.encode(["passage: " + long], max_length=64)).max() < 1e-5
    assert np.abs(got - fp32.encode(["passage: " + long])).max() > 1e-3  # not the 96-token vector
    q = e.embed_queries([long])
    assert np.abs(q - fp32.encode(["query: " + long])).max() < 1e-5


def test_torch_fast_path_equals_sentence_transformers_encode(fp32, chunk_texts) -> None:
    texts = chunk_texts[:64]
    ref = fp32.model.encode(texts, batch_size=32, normalize_embeddings=True)
    assert np.abs(fp32.encode(texts) - ref).max() < 1e-5


def test_onnx_backends_match_torch_fp32_on_real_chunks(model_dir, fp32, chunk_texts, onnx_home) -> None:
    ref = fp32.encode(chunk_texts)
    for kind, floor in (("onnx-fp32", 0.99999), ("onnx-int8", 0.99)):
        r = make_runner(kind, str(model_dir), 96, onnx_home)
        assert isinstance(r, OnnxRunner) and r.kind == kind and r.dim == 384
        cos = np.sum(r.encode(chunk_texts) * ref, axis=1)
        assert cos.mean() >= floor and cos.min() >= floor - 0.02, (kind, cos.mean(), cos.min())
        # the one-thread session agrees with the batch session; int8 activations are quantised per batch (ONNX
        # Runtime's dynamic quantisation), so there a text's vector moves a little with its batch-mates
        one, batch = r.encode(chunk_texts[:1])[0], r.encode(chunk_texts[:8])[0]
        if kind == "onnx-fp32":
            assert np.abs(one - batch).max() < 1e-4
        else:
            assert float(one @ batch) >= 0.99
    assert (onnx_home / "models" / "onnx").is_dir()


def test_small_calls_session_is_measured_once_and_either_choice_gives_the_same_vectors(model_dir, onnx_home,
                                                                                     monkeypatch) -> None:
    q = ["query: 萘普生有哪些禁忌？", "query: can I take naproxen with food?"]
    vecs = {}
    for margin, want in ((0.0, 1), (100.0, 2)):  # 0: one thread always wins; 100: the two-thread session does
        monkeypatch.setattr(OnnxRunner, "PICK_MARGIN", margin)
        r = make_runner("onnx-fp32", str(model_dir), 96, onnx_home, threads=2)
        assert isinstance(r, OnnxRunner) and r.small_choice is None
        vecs[want] = r.encode(q)
        choice = r.small_choice
        assert choice is not None and choice["measured"] and choice["threads"] == want
        assert set(choice["median_ms"]) == {"1", "2"} and all(v > 0 for v in choice["median_ms"].values())
        assert (r._bulk is None) == (want == 1)  # the session not chosen is closed
        r.encode(q)
        assert r.small_choice is choice  # measured once
        assert np.abs(r.encode(q * 3)[:2] - vecs[want]).max() < 1e-4  # a batch (bulk session) agrees
    assert np.abs(vecs[1] - vecs[2]).max() < 1e-4
    monkeypatch.setattr(OnnxRunner, "PICK_MARGIN", 0.0)
    ingesting = make_runner("onnx-fp32", str(model_dir), 96, onnx_home, threads=2)
    ingesting.encode(q * 3)  # a passage batch first opens the all-core session
    ingesting.encode(q)
    assert ingesting.small_choice["threads"] == 1 and ingesting._bulk is not None  # kept for the next batch
    one = make_runner("onnx-fp32", str(model_dir), 96, onnx_home, threads=1)
    one.encode(q[:1])
    assert one.small_choice == {"threads": 1, "measured": False}


def test_auto_backend_is_measured_once_and_cached(model_dir, onnx_home) -> None:
    from rag.components import make_embedder

    s = Settings(home=onnx_home, machine_cache=onnx_home, embedding_model=str(model_dir))  # ONNX files from above
    e = make_embedder(s)
    assert e.backend in ("torch-fp32", "torch-bf16", "onnx-fp32", "onnx-int8")
    cal = e.calibration  # type: ignore[attr-defined]
    assert cal["cached"] is False and cal["measured"][e.backend]["ok"]
    assert all(v["cos_mean"] >= 0.99 for v in cal["measured"].values() if v["ok"])
    again = make_embedder(s)
    assert again.backend == e.backend and again.calibration["cached"] is True  # type: ignore[attr-defined]
    other = make_embedder(Settings(home=onnx_home / "another-kb", machine_cache=onnx_home,
                                   embedding_model=str(model_dir)))
    assert other.backend == e.backend and other.calibration["cached"] is True  # type: ignore[attr-defined]
    assert not (onnx_home / "another-kb" / "cache" / "embedding_backend.json").exists()  # per machine, not per KB
    if again.backend.startswith("onnx"):
        code = ("import sys; from rag.components import make_embedder; from rag.core.settings import Settings; "
                f"e = make_embedder(Settings(home={str(onnx_home)!r}, machine_cache={str(onnx_home)!r}, "
                f"embedding_model={str(model_dir)!r})); "
                "e.embed_queries(['warfarin']); print('torch' in sys.modules)")
        import subprocess

        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        assert out.strip() == "False"  # a cached ONNX choice serves without importing torch


def test_slow_path_windows_hold_under_concurrent_calls(model_dir, fp32) -> None:
    # without a fast tokenizer the window is set on the shared sentence-transformers model for each call; a passage
    # batch (64) and a question (96) encoded at the same time must each get their own window
    from concurrent.futures import ThreadPoolExecutor

    slow = TorchRunner(str(model_dir), 96, "float32", shared=fp32.model)
    slow.tok = None
    long = "passage: warfarin | Warnings: " + "bleeding risk rises with age and with drugs that affect clotting. " * 8
    want64, want96 = slow.encode([long] * 8, max_length=64), slow.encode([long] * 8)
    assert np.abs(want64 - want96).max() > 1e-3

    def run(window: int | None) -> float:
        want = want64 if window == 64 else want96
        return max(float(np.abs(slow.encode([long] * 8, max_length=window) - want).max()) for _ in range(12))

    with ThreadPoolExecutor(4) as pool:
        errs = list(pool.map(run, [64, None, 64, None]))
    assert max(errs) < 1e-5
    assert fp32.model.max_seq_length == 96
