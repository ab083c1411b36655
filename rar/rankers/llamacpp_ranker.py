"""In-process llama.cpp ranker (`llama-cpp-python`): GGUF models run natively on CPU.

The transformers `local` backend dequantises a GGUF file to float32 and runs it through torch;
llama.cpp runs the quantised weights with its own CPU kernels, which is several times faster
for small models (see `experiments/bench_local_backends.py`). It shares the prompt builder,
parser, cache and retry accounting of every prompt ranker. Two modes, as for `local`:
`generate` writes the numbered list; `loglik` ranks each title by its mean token
log-probability as the first list item, reusing the evaluated prompt's KV cache per title.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rar.errors import MissingPathError
from rar.rankers.local_ranker import packaged_smollm2
from rar.rankers.prompt import Candidate
from rar.rankers.prompt_ranker import CallError, Completion, PromptRanker
from rar.rankers.ranker_config import RankerConfig

if TYPE_CHECKING:
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


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype(np.float64)
    top = logits.max()
    return logits - top - np.log(np.exp(logits - top).sum())


class LlamaCppRanker(PromptRanker):
    backend = "llamacpp"

    def __init__(self, config: RankerConfig, corpus: Corpus):
        super().__init__(config, corpus)
        self.gguf = resolve_gguf(config.llamacpp.model_path)
        self._llm = None
        self._formatter = None
        self._lock = threading.Lock()  # one llama context: calls run one at a time

    @property
    def model_name(self) -> str:
        return self.gguf.name

    def generation_params(self) -> dict[str, Any]:
        c = self.config
        return {"temperature": c.temperature, "max_tokens": c.max_tokens, "mode": c.llamacpp.mode}

    def max_in_flight(self) -> int:
        return 1  # one model context in this process

    def load(self) -> None:
        """Load the GGUF model once (memory-mapped; about a second for small models)."""
        if self._llm is not None:
            return
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ImportError(
                "ranker.backend=llamacpp needs llama-cpp-python: `make venv` installs it, "
                "or `pip install 'rar[llama-cpp]'`"
            ) from exc
        lc = self.config.llamacpp
        self._llm = Llama(
            model_path=str(self.gguf),
            n_ctx=lc.n_ctx,
            n_threads=lc.n_threads,
            n_threads_batch=lc.n_threads,
            n_batch=lc.n_batch,
            flash_attn=lc.flash_attn,
            seed=lc.seed,
            verbose=False,
        )

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
            self.load()
            temperature = self.config.temperature or 0.0
            out = self._llm.create_chat_completion(
                messages=[{"role": "user", "content": prompt}],
                temperature=temperature,
                top_k=1 if temperature == 0 else 40,
                max_tokens=self.config.max_tokens or 256,
            )
        usage = out.get("usage") or {}
        return Completion(
            text=out["choices"][0]["message"]["content"] or "",
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
        )

    def _chat_prefix(self, prompt: str) -> str:
        """The chat-formatted prompt followed by the start of the answer ("1.")."""
        if self._formatter is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            meta = self._llm.metadata
            template = meta.get("tokenizer.chat_template")
            if not template:
                self._formatter = False
            else:
                vocab = self._llm
                self._formatter = Jinja2ChatFormatter(
                    template,
                    eos_token=vocab.detokenize([vocab.token_eos()], special=True).decode(),
                    bos_token=vocab.detokenize([vocab.token_bos()], special=True).decode(),
                )
        if self._formatter is False:
            return prompt + "\n\n1."
        text = self._formatter(messages=[{"role": "user", "content": prompt}]).prompt
        return text + "1."

    def _last_logprobs(self) -> np.ndarray:
        llm = self._llm
        return _log_softmax(np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)))

    def _decode_all_logits(self, tokens: list[int]) -> np.ndarray:
        """Decode `tokens` after the current position in one batch, with logits for every one.

        `Llama.eval` keeps all logits only for contexts built with `logits_all` (an n_ctx x
        vocabulary array, 800 MB for SmolLM2 at 4k), and one-token evals cost a thread
        synchronisation per layer each, so the title's tokens go through one decode here."""
        llm = self._llm
        n_past = llm.n_tokens
        llm._ctx.kv_cache_seq_rm(-1, n_past, -1)
        llm._batch.set_batch(batch=tokens, n_past=n_past, logits_all=True)
        llm._ctx.decode(llm._batch)
        rows = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(len(tokens) * llm.n_vocab(),))
        llm.input_ids[n_past : n_past + len(tokens)] = tokens
        llm.n_tokens = n_past + len(tokens)
        return rows.reshape(len(tokens), llm.n_vocab()).copy()

    def score_titles(self, prompt: str, titles: list[str]) -> tuple[list[float], int]:
        """Mean log-probability of each title as the first list item, and the prompt's tokens.

        The prompt is evaluated once; for each title the context is rewound to the prompt's end
        (llama.cpp drops the KV cells past `n_tokens`) and only the title's tokens are decoded."""
        with self._lock:
            self.load()
            llm = self._llm
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
            scores = []
            for title in titles:
                cont = llm.tokenize((" " + title).encode(), add_bos=False, special=False)
                logp = [float(first[cont[0]])]
                if len(cont) > 1:
                    llm.n_tokens = len(ids)  # rewind to the end of the prompt
                    rows = self._decode_all_logits(cont[:-1])  # one decode per title
                    logp += [
                        float(_log_softmax(row)[nxt])
                        for row, nxt in zip(rows, cont[1:], strict=True)
                    ]
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
