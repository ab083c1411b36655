"""In-process llama.cpp ranker (`llama-cpp-python`): GGUF models run natively on CPU.

The transformers `local` backend dequantises a GGUF file to float32 and runs it through torch;
llama.cpp runs the quantised weights with its own CPU kernels. Against the transformers
backend, on the same 25-candidate `loglik` prompts and one thread, it is 0.55x as fast with the
packaged Q4_1 on an AVX2/AVX-512 CPU, 0.9x with `weights: f16` and 1.1x with `bf16` on the
`avx512` build (docs/rankers.md, `experiments/bench_local_backends.py`): attention, done in
floating point by both, is half of a 2,000-token prompt. It shares the
prompt builder, parser, cache and retry accounting of every prompt ranker. Two modes, as for
`local`: `generate` writes the numbered list; `loglik` ranks each title by its mean token
log-probability as the first list item, all titles decoded in one batch on top of the
evaluated prompt's KV cache.
"""

from __future__ import annotations

import asyncio
import threading
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from rar.errors import MissingPathError
from rar.rankers.gguf_weights import gguf_with_weights
from rar.rankers.local_ranker import packaged_smollm2
from rar.rankers.prompt import Candidate
from rar.rankers.prompt_ranker import CallError, Completion, PromptRanker
from rar.rankers.ranker_config import RankerConfig

if TYPE_CHECKING:
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    from llama_cpp.llama_types import CreateChatCompletionResponse

    from rar.corpus import Corpus


def resolve_gguf(path: str | None) -> Path:
    """The GGUF file to load: `path`, or the packaged SmolLM2-135M-Instruct when None."""
    if path is None:
        folder, name = packaged_smollm2()
        return Path(folder) / name
    gguf = Path(path).expanduser()
    if not gguf.is_file():
        raise MissingPathError(f"ranker.llamacpp.model_path: no GGUF file at {gguf}")
    return gguf


# Titles scored in one decode as parallel sequences sharing the prompt's KV cells (seq 0 is the
# prompt); more titles than this go through several decodes.
TITLE_SEQS = 32


def _allow_title_sequences(llm: Llama) -> None:
    """Give `llm` a context with TITLE_SEQS + 1 sequences in one unified KV cache.

    `Llama` builds a one-sequence context; loglik mode scores every title as its own sequence
    branching off the prompt, so the context is built again with more sequences. The unified
    cache keeps the whole n_ctx for the prompt (a split cache gives each sequence a slice)."""
    import contextlib

    import llama_cpp
    from llama_cpp import _internals

    params = llm.context_params
    params.n_seq_max = min(TITLE_SEQS + 1, int(llama_cpp.llama_max_parallel_sequences()))
    params.kv_unified = True
    llm._ctx.close()  # type: ignore[no-untyped-call]  # untyped in llama-cpp-python
    llm._ctx = llm._stack.enter_context(
        contextlib.closing(_internals.LlamaContext(model=llm._model, params=params, verbose=False))
    )
    llm.n_tokens = 0


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype(np.float64)
    top = logits.max()
    out: np.ndarray = logits - top - np.log(np.exp(logits - top).sum())
    return out


class LlamaCppRanker(PromptRanker):
    backend = "llamacpp"

    def __init__(self, config: RankerConfig, corpus: Corpus):
        super().__init__(config, corpus)
        self.gguf = resolve_gguf(config.llamacpp.model_path)
        self._llm: Llama | None = None
        self._lock = threading.Lock()  # one llama context: calls run one at a time

    @property
    def model_name(self) -> str:
        return self.gguf.name

    def generation_params(self) -> dict[str, Any]:
        c = self.config
        return {
            "temperature": c.temperature,
            "max_tokens": c.max_tokens,
            "mode": c.llamacpp.mode,
            "weights": c.llamacpp.weights,  # a converted copy scores a little differently
        }

    def generates_text(self) -> bool:
        return self.config.llamacpp.mode != "loglik"

    def max_in_flight(self) -> int:
        return 1  # one model context in this process

    def load(self) -> Llama:
        """The GGUF model, loaded once (memory-mapped; about a second for small models)."""
        if self._llm is not None:
            return self._llm
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ImportError(
                "ranker.backend=llamacpp needs llama-cpp-python: `make venv` installs it, "
                "or `pip install 'rar[llama-cpp]'`"
            ) from exc
        lc = self.config.llamacpp
        llm = Llama(
            model_path=str(gguf_with_weights(self.gguf, lc.weights)),
            n_ctx=lc.n_ctx,
            n_threads=lc.n_threads,
            n_threads_batch=lc.n_threads,
            n_batch=lc.n_batch,
            flash_attn=lc.flash_attn,
            seed=lc.seed,
            verbose=False,
        )
        self._llm = llm
        return llm

    def _check_fits(self, n_prompt: int) -> None:
        n_ctx = self.config.llamacpp.n_ctx
        if n_prompt >= n_ctx:
            raise CallError(
                f"prompt of {n_prompt} tokens does not fit the context window "
                f"ranker.llamacpp.n_ctx={n_ctx}",
                retryable=False,
            )

    def _generate(self, prompt: str) -> Completion:
        with self._lock:
            llm = self.load()
            temperature = self.config.temperature or 0.0
            reply = llm.create_chat_completion(
                messages=[{"role": "user", "content": prompt}],
                temperature=temperature,
                top_k=1 if temperature == 0 else 40,
                max_tokens=self.config.max_tokens or 256,
            )
        # not streamed: one response (the library's return type also allows a stream)
        out = cast("CreateChatCompletionResponse", reply)
        usage = out.get("usage") or {}
        return Completion(
            text=out["choices"][0]["message"]["content"] or "",
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
        )

    @cached_property
    def _formatter(self) -> Jinja2ChatFormatter | None:
        """The GGUF file's chat template (None: the file has none)."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        vocab = self.load()
        template = vocab.metadata.get("tokenizer.chat_template")
        if not template:
            return None
        return Jinja2ChatFormatter(
            template,
            eos_token=vocab.detokenize([vocab.token_eos()], special=True).decode(),
            bos_token=vocab.detokenize([vocab.token_bos()], special=True).decode(),
        )

    def _chat_prefix(self, prompt: str) -> str:
        """The chat-formatted prompt followed by the start of the answer ("1.")."""
        if self._formatter is None:
            return prompt + "\n\n1."
        text = self._formatter(messages=[{"role": "user", "content": prompt}]).prompt
        return text + "1."

    def _last_logprobs(self) -> np.ndarray:
        llm = self.load()
        logits = llm._ctx.get_logits()  # type: ignore[no-untyped-call]  # untyped in llama-cpp-python
        return _log_softmax(np.ctypeslib.as_array(logits, shape=(llm.n_vocab(),)))

    def _score_continuations(self, n_prompt: int, conts: list[list[int]]) -> list[list[float]]:
        """Log-probabilities of tokens 2.. of each continuation, right after the prompt.

        Each continuation is its own sequence in one batch: `llama_memory_seq_cp` shares the
        prompt's KV cells with it (no copy, no re-evaluation), its tokens sit at positions
        n_prompt.. and attend to the prompt and to each other only. One decode of all titles
        (a few hundred tokens) runs through the matrix-multiply kernels; 25 decodes of 3-8
        tokens each would run through the slow matrix-vector path and cost as much again as
        the prompt. The scores are those of decoding each title alone."""
        import llama_cpp

        llm = self.load()
        mem, n_vocab = llm._ctx.memory, llm.n_vocab()
        n_seq = max(1, int(llm.context_params.n_seq_max) - 1)
        # the titles' tokens share the context window with the prompt
        limit = max(1, min(llm.n_batch, self.config.llamacpp.n_ctx - n_prompt - 1))
        out: list[list[float]] = [[] for _ in conts]
        todo = [i for i, c in enumerate(conts) if len(c) > 1]
        while todo:
            group: list[int] = []
            size = 0
            while todo and len(group) < n_seq and size + len(conts[todo[0]]) - 1 <= limit:
                size += len(conts[todo[0]]) - 1
                group.append(todo.pop(0))
            if not group:  # a title longer than the batch: alone, in its own decode
                group = [todo.pop(0)]
            batch = llm._batch.batch
            batch.n_tokens = 0
            for seq, i in enumerate(group, 1):
                llama_cpp.llama_memory_seq_rm(mem, seq, -1, -1)
                llama_cpp.llama_memory_seq_cp(mem, 0, seq, 0, n_prompt)
                for j, tok in enumerate(conts[i][:-1]):
                    k = batch.n_tokens
                    batch.token[k], batch.pos[k] = tok, n_prompt + j
                    batch.seq_id[k][0], batch.n_seq_id[k], batch.logits[k] = seq, 1, True
                    batch.n_tokens += 1
            llm._ctx.decode(llm._batch)
            logits = llm._ctx.get_logits()  # type: ignore[no-untyped-call]  # untyped in llama-cpp-python
            rows = np.ctypeslib.as_array(logits, shape=(batch.n_tokens * n_vocab,)).reshape(
                batch.n_tokens, n_vocab
            )
            k = 0
            for seq, i in enumerate(group, 1):
                for nxt in conts[i][1:]:
                    out[i].append(float(_log_softmax(rows[k])[nxt]))
                    k += 1
                llama_cpp.llama_memory_seq_rm(mem, seq, -1, -1)
        return out

    def score_titles(self, prompt: str, titles: list[str]) -> tuple[list[float], int]:
        """Mean log-probability of each title as the first list item, and the prompt's tokens.

        The prompt is evaluated once (sequence 0); the titles' tokens are then decoded together,
        each title as its own sequence on top of the prompt's KV cells."""
        with self._lock:
            llm = self.load()
            if llm.context_params.n_seq_max < 2:  # first loglik call: one sequence per title
                _allow_title_sequences(llm)
            ids = llm.tokenize(self._chat_prefix(prompt).encode(), add_bos=False, special=True)
            self._check_fits(len(ids) + 32)
            # reuse the KV cache of the longest prefix shared with the last prompt (at least the
            # last token is evaluated again, for its logits)
            keep = 0
            cached = llm.input_ids[: llm.n_tokens]
            limit = min(len(cached), len(ids) - 1)
            while keep < limit and cached[keep] == ids[keep]:
                keep += 1
            llm.n_tokens = keep
            llm.eval(ids[keep:])
            first = self._last_logprobs()
            conts = [
                llm.tokenize((" " + title).encode(), add_bos=False, special=False)
                for title in titles
            ]
            rest = self._score_continuations(len(ids), conts)
            scores = []
            for cont, more in zip(conts, rest, strict=True):
                logp = [float(first[cont[0]]), *more]
                scores.append(sum(logp) / len(logp))
            llm.n_tokens = len(ids)
        return scores, len(ids)

    def _loglik(self, prompt: str, candidates: list[Candidate]) -> Completion:
        titles = [c.display for c in candidates]
        scores, n_prompt = self.score_titles(prompt, titles)
        order = sorted(range(len(titles)), key=lambda i: -scores[i])
        text = "\n".join(f"{r}. {titles[i]}" for r, i in enumerate(order, 1))
        return Completion(text=text, prompt_tokens=n_prompt, completion_tokens=0)

    async def _complete(self, prompt: str) -> Completion:
        return await asyncio.to_thread(self._generate, prompt)

    async def _prepare(self) -> None:
        if self._llm is None:
            self.load()  # outside the per-call timeout

    async def _complete_request(self, prompt: str, candidates: list[Candidate]) -> Completion:
        if self.config.llamacpp.mode == "loglik":
            return await asyncio.to_thread(self._loglik, prompt, candidates)
        return await self._complete(prompt)

    def _classify(self, exc: BaseException) -> CallError:
        if isinstance(exc, CallError):
            return exc
        if isinstance(exc, ValueError) and "context window" in str(exc):
            n_ctx = self.config.llamacpp.n_ctx
            return CallError(f"llama.cpp: {exc} (ranker.llamacpp.n_ctx={n_ctx})", retryable=False)
        # an in-process model that failed once fails again: no retries
        return CallError(f"llama.cpp error: {type(exc).__name__}: {exc}", retryable=False)

    def close(self) -> None:
        super().close()
        if self._llm is not None:
            self._llm.close()
            self._llm = None
