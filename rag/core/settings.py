"""Typed settings (env prefix DRUGRAG_, optional settings file). Defaults need no server.

Backends are chosen here and only here (rag.components builds them from these settings).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _default_data_dir() -> Path:
    shared = PROJECT_ROOT.parent / "shared" / "data"
    return shared if shared.exists() else PROJECT_ROOT / "data"


def _default_home() -> Path:
    return PROJECT_ROOT / ".drugrag"


def _default_machine_cache() -> Path:
    import os

    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "drugrag"


def _split_list(v: Any) -> Any:
    """Env values for list settings: a JSON list, or comma-separated (`a,b,c`); '' is the empty list."""
    if isinstance(v, str):
        v = v.strip()
        if v.startswith("["):
            import json

            return json.loads(v)
        return [x.strip() for x in v.split(",") if x.strip()]
    return v


CsvList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DRUGRAG_", env_file=None, extra="ignore")

    # where things live
    home: Path = Field(default_factory=_default_home, description="embedded stores, model cache, ingest reports")
    data_dir: Path = Field(default_factory=_default_data_dir, description="source data root")
    machine_cache: Path = Field(default_factory=_default_machine_cache, description="per-machine facts shared by "
                                "every home: the embedding-backend calibration (keyed by CPU, flags, versions), "
                                "the ONNX export of the model and the passage-vector cache")

    # sources to ingest (paths relative to data_dir unless absolute); empty string disables one
    openfda_paths: list[str] = ["openfda"]
    spl_paths: list[str] = ["spl"]
    cn_insert_paths: list[str] = ["zh_inserts"]
    ddinter_paths: list[str] = ["ddinter"]
    cmedkg_path: str = "cmedkg"
    limit_labels: int | None = Field(default=None, description="load at most N labels per source (tests, demos)")

    # backends
    vector_backend: Literal["edge", "qdrant"] = "edge"
    graph_backend: Literal["kuzu", "neo4j"] = "kuzu"
    qdrant_url: str = "http://localhost:6333"
    qdrant_api_key: SecretStr | None = None
    collection: str = "drug_chunks"
    qdrant_shards: int = Field(default=1, ge=1, description="shards of a collection drugrag creates on a Qdrant "
                               "server (a cluster spreads them over its nodes); an existing collection keeps its own")
    qdrant_replicas: int = Field(default=1, ge=1, description="copies of each shard on a Qdrant cluster")
    neo4j_uri: str = "bolt://localhost:7687"
    neo4j_user: str = "neo4j"
    neo4j_password: SecretStr = SecretStr("drugrag-dev")
    neo4j_database: str = "neo4j"

    # embedding
    embedding_model: str = Field(
        default="", description="sentence-transformers id or local path; '' = home/models/multilingual-e5-small; "
        "'hash' = the deterministic smoke/test embedder (no model)")
    embedding_query_prompt: str = "query: "
    embedding_passage_prompt: str = "passage: "
    embedding_max_seq_length: int = Field(
        default=96, description="token window of the embedding model for questions (and the most any text gets)")
    embedding_passage_max_tokens: int = Field(
        default=64, description="token window for label passages (capped at embedding_max_seq_length). 64 instead "
        "of 96 embeds 28% fewer tokens per ingest (1.06 M vs 1.48 M on the sample; the model's arithmetic is what "
        "bounds ingest on an AVX2-only CPU) at the same held-out quality (cited_section_hit 0.9559 both, recall@5 "
        "0.9904 vs 0.9915; dev 0.9861 vs 0.9903: three near-tie 'what to avoid' questions)")
    embedding_backend: Literal["auto", "torch", "onnx"] = Field(
        default="auto", description="auto: the fastest backend whose vectors match torch fp32 (mean cosine >= 0.99), "
        "measured once per machine and cached in home/cache; torch (see embedding_dtype) or onnx (see "
        "embedding_quantize) pin one")
    embedding_dtype: Literal["auto", "float32", "bfloat16"] = Field(
        default="auto", description="torch backend: auto = bfloat16 where the CPU has native bf16 (AVX512_BF16/AMX), "
        "else float32")
    embedding_quantize: Literal["int8", "none"] = Field(
        default="int8", description="onnx backend: int8 = dynamic per-channel int8 weights, none = fp32")
    embedding_threads: int | None = Field(default=None, description="ONNX Runtime intra-op threads (None: all cores)")
    embedding_batch_size: int = 32
    embedding_cache_path: Path | None = Field(
        default=None, description="sqlite cache of passage vectors (keyed by model, weights, window, backend and "
        "text); None = <machine_cache>/cache/embeddings.sqlite, shared by every home on this machine")
    embedding_device: str = "cpu"
    embedding_build_tool: str = Field(
        default="", description="the offline builder `drugrag setup` runs "
        "('' = ../shared/tools/build_multilingual_e5.py next to the checkout)")

    # chunking / ingest
    chunk_chars: int = 1500
    upsert_batch_size: int = 256
    ingest_overlap: bool = Field(default=True, description="load the model while reading sources and write the "
                                 "graph sources while embedding (threads)")

    # retrieval
    top_k: int = 8
    prefetch: int = 50
    max_question_chars: int = 2000

    # generation (issue: generative answers)
    generator: Literal["extractive", "transformers", "openai"] = "extractive"
    generator_model: str = ""
    generator_url: str = "http://localhost:8000/v1"
    generator_api_key: SecretStr = SecretStr("EMPTY")
    generator_prompt_format: str = "chat_template"
    generator_adapter: str = ""
    generator_max_new_tokens: int = 512
    generator_timeout_s: float = 60.0
    entailment_model: str = Field(default="", description="sentence-transformers CrossEncoder (NLI) dir or id that "
                                  "must also entail each generated fact; '' = off (the deterministic check always "
                                  "runs)")
    entailment_threshold: float = 0.5

    # UI
    ui_backend: Literal["inprocess", "http"] = "inprocess"
    api_url: str = "http://127.0.0.1:8000"
    client_api_key: SecretStr | None = Field(
        default=None, description="the API key the UI (ui_backend=http) sends to the API")

    # API edge (rag/apps/api.py, rag/apps/guard.py); list settings take a JSON list or comma-separated values
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="accepted API keys (plain, or 'sha256:<hex>' of a key); when set, every "
        "/v1/* route needs `Authorization: Bearer KEY` or `X-API-Key: KEY`")
    cors_origins: CsvList = Field(default_factory=list, description="browser origins allowed by CORS (none)")
    trusted_hosts: CsvList = Field(
        default_factory=lambda: ["localhost", "127.0.0.1", "::1"],
        description="Host header values the API answers ('*' = any, '*.example.org' = subdomains)")
    rate_limit_per_minute: int = Field(default=120, ge=0, description="requests per minute per API key (per client "
                                       "address without keys); 0 = no limit")
    rate_limit_burst: int = Field(default=30, ge=1)
    max_inflight: int = Field(default=4, ge=1, description="requests served at once; more wait in a bounded queue")
    max_queue: int = Field(default=16, ge=0, description="requests waiting for a slot; beyond it 503 + Retry-After")
    queue_timeout_s: float = Field(default=2.0, gt=0, description="longest wait for a slot before 503")
    max_body_bytes: int = Field(default=65536, ge=1024, description="largest request body (413 beyond)")
    health_cache_s: float = Field(default=2.0, ge=0, description="how long /healthz reuses its last probe")
    log_format: Literal["text", "json"] = Field(default="text", description="json: one JSON object per log line")
    access_log: bool = True

    @field_validator("api_keys", "cors_origins", "trusted_hosts", mode="before")
    @classmethod
    def _lists(cls, v: Any) -> Any:
        return _split_list(v)

    @property
    def embedding_model_path(self) -> str:
        return self.embedding_model or str(self.home / "models" / "multilingual-e5-small")

    @property
    def embedding_cache_file(self) -> Path:
        return self.embedding_cache_path or self.machine_cache / "cache" / "embeddings.sqlite"

    @property
    def edge_path(self) -> Path:
        return self.home / "qdrant-edge"

    @property
    def kuzu_path(self) -> Path:
        return self.home / "kuzu"

    def resolve_data(self, p: str) -> Path | None:
        if not p:
            return None
        path = Path(p)
        return path if path.is_absolute() else self.data_dir / path

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        cfg = os.environ.get("DRUGRAG_SETTINGS_FILE")
        if cfg:  # optional YAML settings file, below env vars in priority
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=cfg))
        return tuple(sources)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
