"""Embedding backends without the real model: exact fast tokenisation, the calibration's choice and cache,
content-hash dedup before the model, pooling specs, and ingest with/without overlapped stages."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, trainers
from tokenizers.models import Unigram

from rag.retrieval import calibration as cal
from rag.retrieval.embedding import SentenceTransformerEmbedder
from rag.retrieval.runners import read_pooling
from rag.retrieval.tokens import FastTokenizer, cut_text, fold_normalizer


def _label_texts(data_dir: Path, n: int = 300) -> list[str]:
    with zipfile.ZipFile(data_dir / "openfda" / "drug-label-0001-of-0001.json.zip") as z:
        recs = json.loads(z.read(z.namelist()[0]))["results"]
    out = []
    for r in recs:
        for key in ("indications_and_usage", "dosage_and_administration", "warnings"):
            if key in r:
                out.append(" ".join(r[key]))
        if len(out) >= n:
            break
    zh = [json.loads(x)["text"] for x in (data_dir / "zh_inserts" / "tcm_inserts.jsonl").open(encoding="utf-8")]
    return out[:n] + zh[:60]


@pytest.fixture(scope="module")
def tokenizer_json(tmp_path_factory, data_dir) -> Path:
    """A real Unigram tokenizer trained on label text, with a Sequence-of-Replace normaliser like the e5 build's."""
    texts = _label_texts(data_dir)
    tok = Tokenizer(Unigram())
    rules = [normalizers.Replace("\t", " "), normalizers.Replace("\n", " "), normalizers.Replace("\u00a0", " "),
             normalizers.Replace("Ｗ", "W"), normalizers.Replace("（", "("), normalizers.Replace("）", ")"),
             normalizers.Replace("①", "(1)"), normalizers.Replace("\u200b", ""),
             normalizers.Replace(Regex(" {2,}"), " ")]
    tok.normalizer = normalizers.Sequence(rules)
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.train_from_iterator(texts, trainers.UnigramTrainer(vocab_size=3000, special_tokens=["<pad>", "<unk>"],
                                                           unk_token="<unk>"))
    p = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    tok.save(str(p))
    return p


def test_fold_normalizer_equals_the_sequence(tokenizer_json) -> None:
    spec = json.loads(tokenizer_json.read_text())["normalizer"]
    folded = fold_normalizer(spec)
    assert folded is not None
    table, regexes = folded
    orig = Tokenizer.from_file(str(tokenizer_json)).normalizer
    for text in ["Ｗarfarin\t（10 mg）  daily\u00a0①", "孕妇禁用。\n\n  本品\u200b", ""]:
        fast = text.translate(table)
        for rx, rep in regexes:
            fast = rx.sub(rep, fast)
        assert fast == orig.normalize_str(text)


@pytest.mark.parametrize("rules", [
    [{"type": "Replace", "pattern": {"String": "ab"}, "content": "x"}],            # multi-character pattern
    [{"type": "Replace", "pattern": {"String": "a"}, "content": "b"},
     {"type": "Replace", "pattern": {"String": "b"}, "content": "c"}],             # a chain: order matters
    [{"type": "Lowercase"}],                                                       # not a Replace
])
def test_fold_normalizer_refuses_what_it_cannot_fold(rules) -> None:
    assert fold_normalizer({"type": "Sequence", "normalizers": rules}) is None


def test_fast_tokenizer_gives_the_tokenizers_ids(tokenizer_json, data_dir) -> None:
    texts = [t[:3000] for t in _label_texts(data_dir)] + ["x", "Ｗ  ", "孕妇" * 500, "word " * 2000]
    for window in (16, 96):
        fast = FastTokenizer(tokenizer_json, window)
        assert fast.folded
        ref = Tokenizer.from_file(str(tokenizer_json))
        ref.enable_truncation(window)
        want = [e.ids for e in ref.encode_batch(texts)]
        assert fast.encode_ids(texts) == want
        assert any(len(t) > fast.max_chars for t in texts)  # the cut path ran
    ids, mask = fast.pad([[5, 6, 7], [8]])
    assert ids.tolist() == [[5, 6, 7], [8, fast.pad_id, fast.pad_id]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]


def test_cut_text_keeps_short_text_and_cuts_at_whitespace() -> None:
    s = "alpha beta gamma"
    assert cut_text(s, 100) is s
    assert cut_text(s, 12) == "alpha beta"
    assert cut_text("x" * 50, 10) == "x" * 10


class FakeRunner:
    """A seam stand-in for a model runner: fixed vectors (optionally perturbed), a scripted duration per call."""

    def __init__(self, kind: str, seconds: float, noise: float = 0.0, clock: list[float] | None = None) -> None:
        self.kind, self.seconds, self.noise, self.clock = kind, seconds, noise, clock
        self.calls: list[int] = []

    @property
    def dim(self) -> int:
        return 8

    def encode(self, texts, progress: bool = False, max_length=None) -> np.ndarray:
        self.calls.append(len(texts))
        if self.clock is not None:
            self.clock[0] += self.seconds
        v = np.stack([np.random.default_rng(abs(hash(t)) % 2**32).standard_normal(8) for t in texts])
        if self.noise:
            v = v + self.noise * np.random.default_rng(1).standard_normal(v.shape)
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def test_measure_picks_the_fastest_backend_that_matches_fp32() -> None:
    now = [0.0]
    runners = {
        "torch-fp32": FakeRunner("torch-fp32", 1.0, clock=now),
        "torch-bf16": FakeRunner("torch-bf16", 4.0, clock=now),             # emulated bf16: 4x slower
        "onnx-fp32": FakeRunner("onnx-fp32", 0.6, clock=now),
        "onnx-int8": FakeRunner("onnx-int8", 0.1, noise=2.0, clock=now),    # fastest, but wrong vectors
    }
    res = cal.measure(runners, [f"text {i}" for i in range(10)], rounds=3, clock=lambda: now[0])
    assert res["onnx-int8"]["ok"] is False and res["onnx-int8"]["cos_mean"] < cal.MIN_MEAN_COSINE
    assert res["torch-fp32"]["cos_mean"] == pytest.approx(1.0)
    ok = {k: v for k, v in res.items() if v["ok"]}
    assert max(ok, key=lambda k: ok[k]["chunks_per_s"]) == "onnx-fp32"
    assert res["torch-fp32"]["chunks_per_s"] == pytest.approx(10.0)
    assert len(runners["torch-bf16"].calls) == 2  # warm-up + round 0 only: hopeless after one round
    assert len(runners["onnx-int8"].calls) == 2   # rejected: not timed again


def test_choice_is_cached_per_machine_key(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    info = cal.machine_info("/models/e5", 96, None)
    assert cal.cached_choice(tmp_path, info) is None
    cal.store_choice(tmp_path, info, {"choice": "onnx-int8", "measured": {}})
    assert cal.cached_choice(tmp_path, info)["choice"] == "onnx-int8"
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")  # what torch may use changed: measure again
    capped = cal.machine_info("/models/e5", 96, None)
    assert cal.machine_key(capped) != cal.machine_key(info) and cal.cached_choice(tmp_path, capped) is None
    assert cal.cached_choice(tmp_path, cal.machine_info("/models/e5", 128, None)) is None  # another window


def test_identical_passages_are_embedded_once(tmp_path) -> None:
    e = SentenceTransformerEmbedder("/models/none", cache_path=tmp_path / "cache" / "emb.sqlite", home=tmp_path)
    fake = FakeRunner("onnx-int8", 0.0)
    e._runner = fake  # the seam: the model runner
    texts = ["naproxen | Contraindications: asthma", "same text", "same text", "other", "same text"]
    v = e.embed_passages(texts)
    assert fake.calls == [3] and e.last_stats == {"texts": 5, "distinct": 3, "embedded": 3}
    assert np.allclose(v[1], v[2]) and np.allclose(v[1], v[4]) and not np.allclose(v[0], v[1])
    again = e.embed_passages(texts[::-1])  # all from the cache, in the caller's order
    assert fake.calls == [3] and np.allclose(again, v[::-1], atol=1e-3)
    nocache = SentenceTransformerEmbedder("/models/none", home=tmp_path)
    nocache._runner = fake
    nocache.embed_passages(texts)
    assert fake.calls == [3, 3]  # dedup without a cache too


def test_one_machine_cache_serves_every_home_and_a_rebuilt_model_misses(tmp_path, monkeypatch) -> None:
    from rag.components import make_embedder
    from rag.core.settings import Settings

    monkeypatch.delenv("DRUGRAG_EMBEDDING_CACHE_PATH", raising=False)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"w" * 10)
    fake = FakeRunner("onnx-int8", 0.0)

    def embedder(home: str):
        s = Settings(home=tmp_path / home, machine_cache=tmp_path / "machine", embedding_model=str(model))
        assert s.embedding_cache_file == tmp_path / "machine" / "cache" / "embeddings.sqlite"
        e = make_embedder(s)
        e._runner = fake  # type: ignore[attr-defined]
        return e

    texts = ["warfarin | Interactions: aspirin", "naproxen | Dosage: 250 mg"]
    embedder("kb1").embed_passages(texts)
    second = embedder("kb2")  # another knowledge base on the same machine
    second.embed_passages(texts)
    assert fake.calls == [2] and second.last_stats["embedded"] == 0
    (model / "model.safetensors").write_bytes(b"w" * 11)  # the model rebuilt in place: its old vectors are stale
    embedder("kb3").embed_passages(texts)
    assert fake.calls == [2, 2]


def test_an_unwritable_cache_is_skipped_not_fatal(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    e = SentenceTransformerEmbedder("/models/none", cache_path=blocker / "cache" / "emb.sqlite", home=tmp_path)
    fake = FakeRunner("onnx-int8", 0.0)
    e._runner = fake
    assert e.embed_passages(["a", "b"]).shape[0] == 2 and e.embed_passages(["a"]).shape[0] == 1
    assert fake.calls == [2, 1]


def test_read_pooling_accepts_only_plain_transformer_pooling(tmp_path) -> None:
    def model(modules: list[dict], pool: dict | None) -> Path:
        d = tmp_path / str(len(list(tmp_path.iterdir())))
        (d / "1_Pooling").mkdir(parents=True)
        (d / "modules.json").write_text(json.dumps(modules))
        if pool is not None:
            (d / "1_Pooling" / "config.json").write_text(json.dumps(pool))
        return d

    st = "sentence_transformers.models."
    plain = [{"path": "", "type": st + "Transformer"}, {"path": "1_Pooling", "type": st + "Pooling"},
             {"path": "2_Normalize", "type": st + "Normalize"}]
    assert read_pooling(model(plain, {"pooling_mode_mean_tokens": True})) == ("mean", True)
    assert read_pooling(model(plain[:2], {"pooling_mode": "cls"})) == ("cls", False)
    dense = [*plain[:2], {"path": "2_Dense", "type": st + "Dense"}]
    assert read_pooling(model(dense, {"pooling_mode_mean_tokens": True})) is None
    assert read_pooling(model(plain, {"pooling_mode_max_tokens": True})) is None
    assert read_pooling(tmp_path / "missing") is None


def test_ingest_with_and_without_overlap_ends_alike(tmp_path) -> None:
    from conftest import build_kb

    from rag.components import make_graph_store, make_vector_store
    from rag.core.settings import Settings

    reports = {}
    for overlap in (True, False):
        home = tmp_path / f"overlap-{overlap}"
        build_kb(home, embedding_model="hash", limit_labels=8, cmedkg_path="", ingest_overlap=overlap,
                 ddinter_paths=["ddinter/ddinter_downloads_code_A.csv"])
        rep = json.loads((home / "ingest_report.json").read_text())
        s = Settings(home=home, embedding_model="hash")
        v, g = make_vector_store(s), make_graph_store(s, read_only=True)
        reports[overlap] = (rep["labels"], rep["chunks"], rep["graph_counts"], v.label_hashes(), g.label_hashes())
        v.close()
        g.close()
        assert rep["seconds"]["graph"] > 0 and rep["embedding"]["backend"] == "hash"
    assert reports[True] == reports[False]
    assert reports[True][2]["edges"].get("INTERACTS_WITH", 0) > 1_000  # DDInter was loaded in both


def test_bf16_is_not_native_where_torch_is_capped_to_avx2() -> None:
    import os
    import subprocess
    import sys

    code = "from rag.retrieval.embedding import native_bf16, resolve_dtype; print(native_bf16(), resolve_dtype('auto'))"
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout.split()
    assert out == ["False", "float32"]  # the CPUID probe may say bf16, but torch would emulate it here
