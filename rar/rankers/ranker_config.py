"""RankerConfig: which backend ranks, with which model, prompt, parser, cache and limits.

Swapping a backend is a config change only (`backend:`, one of `rar.rankers.registry.RANKERS`).
API keys are never part of the config: only the *name* of the environment variable is.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from rar.config import ConfigModel
from rar.rankers.gguf_weights import WeightsFormat
from rar.rankers.registry import RANKER_NAMES, ranker_choices

DEFAULT_FIELDS = ["title", "year", "genres", "directors", "cast", "plot"]


class PromptConfig(ConfigModel):
    """What the prompt shows for each candidate and in which order."""

    fields: list[str] = Field(
        default_factory=lambda: list(DEFAULT_FIELDS),
        description="Corpus metadata fields shown per candidate (title is always shown).",
    )
    plot_max_chars: int = Field(
        200, ge=0, description="Truncate plots to this many characters (0 = no plot)."
    )
    max_list_items: int = Field(
        3, ge=1, description="Show at most this many genres/directors/cast members."
    )
    num_items: int | None = Field(
        None, ge=1, description="Ask the model for this many items (None = rank all candidates)."
    )
    candidate_order: Literal["retriever", "shuffled"] = Field(
        "retriever",
        description="Order of candidates in the prompt; shuffling removes position bias.",
    )
    seed: int = Field(0, description="Seed for the shuffled order (mixed with the sample id).")
    max_context_turns: int | None = Field(
        None, ge=1, description="Keep only the last N conversation turns (None = all)."
    )
    layout: Literal["paper", "prefix_cache"] = Field(
        "paper",
        description="paper = Figure 5 order (instructions, candidates, conversation); "
        "prefix_cache = instructions, conversation, candidates, so every candidate set of one "
        "conversation (GRPO g sets, DPO 2) shares a prefix that engine KV caches reuse.",
    )
    max_prompt_tokens: int | None = Field(
        None,
        ge=1,
        description="Token budget: trim candidate metadata (plot first, then cast, ...) until the "
        "prompt fits (None = no budget; the context window is always enforced).",
    )
    trim_order: list[str] = Field(
        default_factory=lambda: ["plot", "cast", "writers", "directors", "genres"],
        description="Metadata fields dropped, in this order, to fit the budget (the plot is "
        "first shortened by halves). Title and year are never dropped.",
    )
    tokenizer: str | None = Field(
        None,
        description="How prompt tokens are counted: None = auto (the local model's tokenizer, "
        "else an estimate); 'estimate' = characters / 4; 'server' = the llama.cpp server's "
        "/tokenize endpoint at base_url; a .gguf path = that file's tokenizer (llama-cpp-python); "
        "anything else = a transformers tokenizer id or directory.",
    )
    chat_overhead_tokens: int = Field(
        16,
        ge=0,
        description="Tokens the chat template adds around the prompt, reserved when the counter "
        "sees only the prompt text (not used for the local model, whose template is applied).",
    )


class ParserConfig(ConfigModel):
    """How replies are turned into rankings."""

    threshold: float = Field(0.85, ge=0.0, le=1.0, description="Fuzzy title-match threshold.")
    append_missing: bool = Field(
        True,
        description="Append candidates the reply omits, in retriever order, to `ranked_ids` "
        "(callers that need a complete list get one; scoring ignores them by default).",
    )
    score_appended: bool = Field(
        False,
        description="Score the appended candidates too. Default false: metrics and RL rewards "
        "use the label's rank in the LLM's own output, so a label it did not output is a miss.",
    )


class CacheConfig(ConfigModel):
    """SQLite response cache (reruns are free and reproducible)."""

    enabled: bool = Field(True, description="Use the response cache.")
    path: str = Field("runs/ranker_cache.sqlite", description="SQLite file of cached replies.")


class LimitsConfig(ConfigModel):
    """Concurrency, rate limits, timeouts, retries and the circuit breaker for remote backends.

    Concurrency adapts (AIMD, `rar.rankers.concurrency`): it starts at `initial_in_flight`,
    grows while replies stay about as fast as the fastest seen, and halves on timeouts, 429,
    503 and connection errors; `max_in_flight` is the ceiling. A one-slot server (llama.cpp,
    Ollama defaults) thus gets about 2 requests at a time instead of 16.
    """

    max_in_flight: int = Field(
        16, ge=1, description="Ceiling on concurrent requests (the adaptive limit stays below)."
    )
    adaptive: bool = Field(
        True, description="Adapt concurrency to the server (false = always max_in_flight)."
    )
    initial_in_flight: int = Field(
        2, ge=1, description="Concurrent requests at the start, before the server is measured."
    )
    rpm: float | None = Field(None, gt=0, description="Requests per minute (None = unlimited).")
    tpm: float | None = Field(None, gt=0, description="Tokens per minute (None = unlimited).")
    timeout_s: float = Field(
        180.0,
        gt=0,
        description="Per-call timeout in seconds, counted from the send (a one-slot CPU server "
        "takes ~8 s per answer, more with queued requests or bigger models).",
    )
    timeout_growth: float = Field(
        2.0,
        ge=1,
        description="After a timeout, later calls get this many times the current timeout (up to "
        "max_timeout_s): a server slower than timeout_s (a loaded CPU) is waited for instead of "
        "abandoned; after a success it shrinks back to max(timeout_s, 4 x that latency). "
        "1 = fixed.",
    )
    max_timeout_s: float = Field(
        1800.0, gt=0, description="Ceiling of the grown per-call timeout, in seconds."
    )
    max_call_s: float = Field(
        1800.0,
        gt=0,
        description="Longest one request waits for a reply, in seconds, over all its attempts "
        "and the backoffs between them (not its wait for our own gate or rate limits): an "
        "attempt's timeout is cut to what is left. A request that ends on a timeout when the "
        "server has answered no call for breaker_open_after_s stops the run: a server that "
        "accepts connections and never answers.",
    )
    max_retries: int = Field(
        4, ge=0, description="Retries after the first attempt on transient errors."
    )
    backoff_base_s: float = Field(1.0, ge=0, description="First retry delay; doubles each retry.")
    backoff_max_s: float = Field(30.0, ge=0, description="Upper bound on one retry delay.")
    jitter: float = Field(0.25, ge=0, le=1, description="Random +/- fraction added to each delay.")
    max_retry_after_s: float = Field(120.0, ge=0, description="Cap on a server's Retry-After.")
    retry_budget_ratio: float = Field(
        0.2,
        ge=0,
        description="Retry budget: retries per window <= this share of requests + retry_budget_min.",
    )
    retry_budget_min: int = Field(
        10, ge=0, description="Retries always allowed per window (so a small batch can retry)."
    )
    retry_budget_window_s: float = Field(
        60.0, gt=0, description="Sliding window of the retry budget, in seconds."
    )
    breaker_failures: int = Field(
        10,
        ge=0,
        description="Stop the run once at least this many consecutive connection errors, 5xx "
        "or timeouts with no success persisted for breaker_open_after_s (0 = never stop; "
        "connection errors and 502/503/504 then use the ordinary retries).",
    )
    breaker_open_after_s: float = Field(
        60.0,
        ge=0,
        description="Seconds a failure streak must last before the breaker stops the run: a "
        "server restart shorter than this is ridden out (requests wait for probes).",
    )
    probe_base_s: float = Field(
        0.5, gt=0, description="While the server is down: first probe delay, doubling per probe."
    )
    probe_max_s: float = Field(
        5.0, gt=0, description="While the server is down: longest delay between probes."
    )


class PriceConfig(ConfigModel):
    """USD per million tokens, for cost accounting."""

    prompt_per_1m: float = Field(0.0, ge=0, description="USD per 1M prompt tokens.")
    completion_per_1m: float = Field(0.0, ge=0, description="USD per 1M completion tokens.")


class SemanticConfig(ConfigModel):
    """Offline ranker: conversation embedding vs candidate corpus vectors."""

    recency_decay: float = Field(
        0.7, gt=0, le=1, description="Weight of a turn = decay ** (turns after it); 1 = uniform."
    )
    seeker_weight: float = Field(1.0, ge=0, description="Weight multiplier for seeker turns.")
    recommender_weight: float = Field(
        0.6, ge=0, description="Weight multiplier for recommender turns."
    )
    retriever_weight: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Reciprocal-rank blend weight of the retriever order (0 = off).",
    )
    rrf_k: float = Field(10.0, gt=0, description="Reciprocal-rank constant: 1 / (rrf_k + rank).")
    batch_size: int = Field(
        64,
        ge=1,
        description="Unused: turns are embedded by the corpus's shared turn encoder "
        "(rar/corpus/turn_encoder.py, batches of 256); kept so existing configs still load.",
    )


class LocalConfig(ConfigModel):
    """In-process transformers causal LM (GGUF too)."""

    model: str | None = Field(
        None, description="Hub id or directory; None = the packaged SmolLM2-135M-Instruct GGUF."
    )
    gguf_file: str | None = Field(None, description="GGUF file name inside `model` (directory).")
    mode: Literal["generate", "loglik"] = Field(
        "generate", description="Free-text generation, or rank by log-likelihood of each title."
    )
    device: str = Field("cpu", description="torch device.")
    convert_cache: bool = Field(
        True,
        description="Save a GGUF model once in transformers format under $RAR_CACHE_DIR/local_models "
        "(default ~/.cache/rar): parsing GGUF in Python takes a minute, loading the copy a second.",
    )
    num_threads: int | None = Field(None, ge=1, description="torch threads (None = leave as is).")


class LlamaCppConfig(ConfigModel):
    """In-process llama.cpp (llama-cpp-python): GGUF weights run natively on CPU."""

    model_path: str | None = Field(
        None, description="GGUF file; None = the packaged SmolLM2-135M-Instruct GGUF."
    )
    weights: WeightsFormat = Field(
        "as_is",
        description="Run the file's weights as stored, or a copy in this format converted once "
        "into $RAR_CACHE_DIR/gguf: on CPUs without AMX, f16 (AVX2) or bf16 (AVX-512 BF16) "
        "ranks 1.6-2x as fast as the packaged Q4_1 (docs/rankers.md).",
    )
    n_ctx: int = Field(
        4096, ge=256, description="Context window in tokens (a prompt past it fails clearly)."
    )
    n_threads: int | None = Field(
        None, ge=1, description="CPU threads (None = llama.cpp's default, half the cores)."
    )
    n_batch: int = Field(512, ge=1, description="Prompt tokens evaluated per batch.")
    flash_attn: bool = Field(
        True,
        description="llama.cpp's flash attention: on these CPUs it cut the CPU time of a "
        "2,000-token prompt by about a quarter (docs/rankers.md).",
    )
    mode: Literal["generate", "loglik"] = Field(
        "generate", description="Free-text generation, or rank by log-likelihood of each title."
    )
    seed: int = Field(0, description="Sampling seed (temperature > 0 only).")


class TrainedConfig(ConfigModel):
    """Trained offline ranker (`rar fit-ranker`): a learned map from conversation to movie vectors."""

    path: str | None = Field(None, description="Directory written by `rar fit-ranker`.")
    retriever_weight: float | None = Field(
        None, ge=0, description="Weight of -log(position in the given order); None = fitted value."
    )
    cooc_weight: float | None = Field(
        None,
        ge=0,
        description="Weight of the co-occurrence score of the mentioned movies (EASE, fitted on "
        "the training dialogues); 0 = conversation text and popularity only; None = fitted value.",
    )


class RankerConfig(ConfigModel):
    """Everything that decides how a candidate list gets ranked."""

    backend: Literal[RANKER_NAMES] = Field(  # type: ignore[valid-type]
        "semantic", description=f"Ranker backend: {ranker_choices()}."
    )
    model: str = Field("gpt-5-mini", description="Model name sent to the API (openai/gemini).")
    base_url: str | None = Field(
        None,
        description="Server URL (OpenAI-compatible: vLLM, Ollama, llama.cpp; or a Gemini endpoint).",
    )
    api_key_env: str | None = Field(
        None,
        description="Name of the env var holding the API key (default OPENAI_API_KEY / GEMINI_API_KEY).",
    )
    temperature: float | None = Field(
        0.0, ge=0, description="Sampling temperature (None = server default)."
    )
    max_tokens: int | None = Field(1024, ge=1, description="Maximum completion tokens.")
    max_reply_chars: int = Field(
        65_536,
        ge=1,
        description="Longest reply kept, in characters: a longer one (a server ignoring "
        "max_tokens) is cut before it is parsed, cached or saved, and counted as "
        "replies_truncated. 1,024 tokens are about 4,000 characters.",
    )
    context_window: int | None = Field(
        None,
        ge=1,
        description="The model's context window in tokens; a prompt plus max_tokens never "
        "exceeds it (None = the local model's own, else unchecked).",
    )
    extra_body: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra JSON fields sent with each OpenAI-compatible request, e.g. "
        "{cache_prompt: true} for llama.cpp's llama-server (part of the cache key).",
    )
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = Field(
        None, description="OpenAI reasoning effort for reasoning models (None = not sent)."
    )
    thinking: bool | None = Field(
        None, description="Gemini thinking on/off (None = model default; off sets budget 0)."
    )
    thinking_budget: int | None = Field(
        None, ge=-1, description="Gemini thinking budget in tokens (-1 = dynamic)."
    )
    prompt: PromptConfig = Field(default_factory=PromptConfig, description="Prompt options.")
    parser: ParserConfig = Field(default_factory=ParserConfig, description="Parser options.")
    cache: CacheConfig = Field(default_factory=CacheConfig, description="Response cache.")
    limits: LimitsConfig = Field(
        default_factory=LimitsConfig, description="Concurrency and retries."
    )
    price: PriceConfig = Field(default_factory=PriceConfig, description="Price table.")
    semantic: SemanticConfig = Field(
        default_factory=SemanticConfig, description="Semantic backend."
    )
    local: LocalConfig = Field(default_factory=LocalConfig, description="Local LM backend.")
    llamacpp: LlamaCppConfig = Field(
        default_factory=LlamaCppConfig, description="In-process llama.cpp backend."
    )
    trained: TrainedConfig = Field(default_factory=TrainedConfig, description="Trained backend.")
