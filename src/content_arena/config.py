"""Configuration: one YAML file (``arena.yaml``) plus ``ARENA_*`` environment variables.

Precedence, highest first: environment (``ARENA_QUALITY_GATE__MAX_EVASION_RATE=0.1``), the YAML
file, the defaults below. Nested keys use ``__`` in environment names. A bad value fails at start-up
with :class:`ConfigError`, whose message names every offending key and the reason.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from content_arena.operating_point import OperatingPoint

log = logging.getLogger(__name__)

CONFIG_ENV = "ARENA_CONFIG"
DEFAULT_CONFIG_FILE = "arena.yaml"


class ConfigError(ValueError):
    """A configuration value is missing, malformed or out of range."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class QualityGateConfig(_Section):
    """The gate's limits. Every check is computed at the model's policy threshold (``defender.operating_point``)."""

    max_evasion_rate: float = Field(0.15, ge=0.0, le=1.0)
    # Any one strategy evading more than this fails the gate too. The overall rate pools every strategy's
    # variants, so one strong attacker among many weak rules would be diluted and the loop would learn
    # nothing from it; the pooled limit applied to each strategy keeps a strong attacker visible.
    max_strategy_evasion_rate: float = Field(0.15, ge=0.0, le=1.0)
    # F1 at the policy threshold: with an FPR policy it moves with recall and with the share of toxic texts.
    min_f1_score: float = Field(0.85, ge=0.0, le=1.0)
    min_f1_drop: float = Field(0.05, ge=0.0, le=1.0)
    # Share of toxic held-out texts caught at the policy threshold. An FPR policy fixes how many clean
    # texts are flagged, so recall is what is left to judge the model by; below this the champion lets most
    # of what it should catch through. A higher limit fails weak champions sooner (more retraining), a lower
    # one accepts a model that mostly holds its false-positive promise by flagging little.
    min_recall: float = Field(0.60, ge=0.0, le=1.0)
    # Attacked clean texts may be flagged this many points above the clean false-positive rate. A strategy
    # fails only when its rise is above this limit *and* significant (attacked_clean_fpr_alpha): a few
    # clean texts more or less is the sampling spread of a small test split, not a real rise.
    max_attacked_clean_fpr_increase: float = Field(0.02, ge=0.0, le=1.0)
    # Family-wise significance level of the attacked-clean FPR rise: the most often the gate may fail a model
    # whose attacks flag no more clean texts than they unflag, over all strategies together. Each strategy's
    # rise is tested with an exact one-sided sign (McNemar) test on the same clean texts before and after the
    # attack, and the strategies with any changed decision are corrected by Holm's step-down: it holds this
    # level under any dependence between strategies (they garble the same texts) and, unlike Bonferroni,
    # tests the next strategy at a looser level once a stronger one is significant. Lower: fewer false
    # alarms, and a real rise needs more (or more one-sided) changed texts to be caught.
    attacked_clean_fpr_alpha: float = Field(0.05, gt=0.0, le=1.0)


class DefenderConfig(_Section):
    """How scores become decisions: the policy operating point and the score calibration."""

    # The promise to the moderation team the threshold keeps on validation texts: ``fpr`` at most, or
    # ``precision`` / ``recall`` at least, ``value``. FPR is the default because flagged clean comments
    # are what users see; a lower value flags fewer clean comments and catches fewer toxic ones.
    operating_point: OperatingPoint = Field(default_factory=OperatingPoint)
    # toxic_score as a probability, fitted on validation texts and saved with the model: "isotonic"
    # (Platt below 200 validation texts or 30 of the smaller class, where a step curve would fit noise),
    # "platt" (two parameters, smoother, less flexible) or "none" (raw model scores).
    calibration: Literal["isotonic", "platt", "none"] = "isotonic"


class StorageConfig(_Section):
    url: str = "sqlite:///{home}/arena.db"
    # How long a battle's store calls retry while PostgreSQL does not answer (a managed failover takes
    # about 25 s) before the battle fails; API requests give up sooner (503) so clients can retry.
    retry_window_s: float = Field(90.0, ge=0.0, le=3600.0)


class QueueConfig(_Section):
    # Empty means the in-process queue and lock (embedded default); redis://… in a cluster.
    url: str | None = None
    training_lock_ttl_s: int = Field(3600, gt=0)
    # Period of the recovery pass that requeues stranded battles and pipeline runs (Redis restarted,
    # worker died, database back after an outage).
    recovery_interval_s: float = Field(30.0, gt=0.0, le=3600.0)


class MlflowConfig(_Section):
    tracking_uri: str = "sqlite:///{home}/mlflow.db"
    registry_uri: str | None = None
    artifact_location: str = "{home}/mlartifacts"
    experiment: str = "content-arena"
    model_name: str = "content-filter"
    # How MLflow's HTTP client retries a tracking server that does not answer; None keeps MLflow's own
    # defaults (7 retries, back-off factor 2, 120 s timeout: minutes before a pipeline step fails).
    http_retries: int | None = Field(None, ge=0, le=100)
    http_backoff_factor: int | None = Field(None, ge=0, le=120)  # MLflow reads an integer
    http_timeout_s: int | None = Field(None, ge=1, le=3600)


class ModelConfig(_Section):
    # A local directory or a hub id for users who have one; None builds a small model from config.
    base_model: str | None = None
    # "char": one token per character, so the n-gram branch hashes character n-grams, which survive
    # misspellings; "bpe": byte-level BPE, where a small vocabulary keeps tokens close to characters (a
    # large one makes whole words, which an attacker breaks with one edit).
    tokenizer: Literal["char", "bpe"] = "char"
    # Characters ("char": the most frequent ones, the rest [UNK]) or BPE tokens.
    vocab_size: int = Field(2000, ge=256, le=250_000)
    # Hashed token n-gram branch of the model built from config (0 buckets: a plain BERT encoder). More
    # buckets mean fewer unseen n-grams of a garbled text landing on a known one's weight, at 4 bytes per
    # bucket and dimension. The fitted branch is a linear model (rank one), so a few dimensions suffice;
    # they bound what a challenger's adapter can add per n-gram. Measurements: docs/experiments/.
    ngram_buckets: int = Field(2_097_152, ge=0, le=16_777_216)
    ngram_dim: int = Field(4, ge=1)
    ngram_orders: list[int] = Field(default_factory=lambda: [1, 2, 3])
    # False: the model built from config is the n-gram branch alone, a linear model over hashed n-grams
    # solved in seconds and scored without a transformer pass. True: a small BERT encoder of the sizes
    # below is trained on top of the fitted branch and kept only if it lifts validation AUROC by
    # ``experimental.min_encoder_gain``; on a few thousand labelled comments it rarely does, and it costs
    # most of the training time. Ignored with 0 buckets (the model is then the encoder).
    encoder: bool = False
    hidden_size: int = Field(128, ge=16)
    num_layers: int = Field(2, ge=1, le=48)
    num_heads: int = Field(4, ge=1)
    intermediate_size: int = Field(512, ge=16)
    max_length: int = Field(128, ge=8, le=4096)
    # The threshold kept when there are too few validation texts for defender.operating_point.
    threshold: float = Field(0.5, gt=0.0, lt=1.0)

    @field_validator("ngram_orders")
    @classmethod
    def _orders(cls, value: list[int]) -> list[int]:
        if not value or any(n < 1 or n > 8 for n in value):
            raise ValueError("n-gram orders must be between 1 and 8, at least one")
        return sorted(set(value))

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> ModelConfig:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        return self


class TrainingConfig(_Section):
    epochs: int = Field(6, ge=1, le=1000)
    batch_size: int = Field(32, ge=1, le=4096)
    learning_rate: float = Field(1e-3, gt=0.0, lt=1.0)
    weight_decay: float = Field(0.01, ge=0.0)
    warmup_ratio: float = Field(0.06, ge=0.0, lt=1.0)
    challenger_epochs: int = Field(4, ge=1, le=1000)
    # Stop training once this many epochs in a row have not beaten the best validation F1 (null: run
    # every epoch). The best epoch is restored either way, so epochs that cannot beat it are not spent.
    patience: int | None = Field(2, ge=1)
    challenger_learning_rate: float = Field(2e-3, gt=0.0, lt=1.0)
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0)
    # auto: QLoRA 4-bit when CUDA and bitsandbytes are present, else LoRA. "lora" forces LoRA.
    quantization: Literal["auto", "4bit", "none"] = "auto"
    seed: int = 13
    torch_threads: int | None = Field(None, ge=1)
    max_train_examples: int | None = Field(None, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _retired(cls, data: Any) -> Any:
        """Accept the keys that defender.operating_point replaced, with a warning, so old files still load."""
        if isinstance(data, dict):
            found = sorted(key for key in RETIRED_TRAINING_KEYS if key in data)
            if found:
                data = {k: v for k, v in data.items() if k not in RETIRED_TRAINING_KEYS}
                log.warning("ignoring training.%s: %s", ", training.".join(found),
                            "; ".join(RETIRED_TRAINING_KEYS[key] for key in found))
        return data


# Keys that no longer do anything, and what replaced them. A file that sets them still loads (with a
# warning) rather than failing: the setting they held has one successor, which applies without them.
RETIRED_TRAINING_KEYS = {
    "tune_threshold": "the threshold is chosen by defender.operating_point on validation texts",
    "challenger_threshold": "a challenger gets its own threshold by defender.operating_point on the same validation texts",
    "refit_on_validation": "validation texts stay out of the weights so the calibration and threshold fitted on "
                           "them hold for unseen texts",
}


class AttackConfig(_Section):
    strategies: list[str] = Field(
        default_factory=lambda: ["jamo_split", "nfd", "homoglyph", "invisible", "spacing", "leet_phonetic"]
    )
    rounds: int = Field(600, ge=1, le=10_000_000)
    seed: int = 0
    batch_size: int = Field(256, ge=1, le=65_536)
    # Seed texts and attacked variants are cut to this many characters (a composite can grow a text
    # several times over); bounds the memory and time of one round.
    max_text_length: int = Field(5000, ge=1, le=1_000_000)
    # Across cycles (``arena pipeline run --cycles N``): a strategy whose evasion of the champion falls
    # below this escalates into composites, higher levels and a larger adaptive budget (see
    # attacks/evolution.py); null keeps the configured strategies fixed.
    evolve_below: float | None = Field(0.05, ge=0.0, le=1.0)

    @field_validator("strategies")
    @classmethod
    def _not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one strategy is needed")
        return value


class AugmentConfig(_Section):
    variants_per_failure: int = Field(4, ge=0, le=100)
    # Garbled clean negatives per toxic example in the augmented set: they teach the challenger that
    # garbling alone is not toxicity. More of them lower attacked-clean FPR but dilute the evasions it
    # learns from; one per toxic example balances the two.
    clean_negatives_ratio: float = Field(1.0, ge=0.0, le=10.0)
    # Original training examples mixed into the challenger's set, as a multiple of the augmented ones;
    # null replays every one. A sample lets the adapter drift toward the augmented texts' balance (its
    # scores move, not its ranking), so every original is replayed by default.
    replay_ratio: float | None = Field(None, ge=0.0, le=10.0)
    # With the ``adaptive`` strategy bound to the champion (see data_augmentor): searches per toxic pool
    # text and the share of toxic positives from the search.
    adaptive_pool_searches: int = Field(2, ge=0, le=100)
    adaptive_share: float = Field(0.8, gt=0.0, le=1.0)
    # Across cycles: extra copies of each hard example (a toxic training text the champion misses, a
    # clean one it flags) in the challenger's set, and how many examples of earlier cycles' failures are
    # replayed (0 turns replay off).
    hard_example_copies: int = Field(1, ge=0, le=10)
    replay_failures: int = Field(2000, ge=0, le=1_000_000)
    # Across cycles: one attacked copy of each training text (a rule family of the population or the
    # adaptive search's random moves), and the ``hard_mined`` toxic copies the champion scores lowest and
    # clean copies it scores highest join the challenger's set: the boundary at the policy threshold, from
    # the whole transformation space rather than from the texts the battle happened to find (0: off).
    hard_mined: int = Field(0, ge=0, le=100_000)


class DataConfig(_Section):
    # None means the seed corpus shipped inside the package.
    path: str | None = None
    format: str = "seed"
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    split_seed: int = 0


class LLMConfig(_Section):
    host: str | None = None
    # auto: picked from the host (a /v1 path or openai+ prefix means OpenAI-compatible).
    backend: Literal["auto", "ollama", "ollama-chat", "openai"] = "auto"
    api_key: str | None = None
    model: str = "llama3.2"
    timeout: float = Field(30.0, gt=0)
    retries: int = Field(2, ge=0, le=20)
    temperature: float = Field(0.9, ge=0.0, le=2.0)


class InferenceConfig(_Section):
    batch_size: int = Field(64, ge=1, le=4096)
    torch_threads: int | None = Field(None, ge=1)


class ApiConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    # JSON file {"<token>": "read"|"admin", ...}, usually a mounted Secret; ARENA_API__TOKENS as JSON too.
    tokens_file: str | None = None
    tokens: dict[str, Literal["read", "admin"]] = Field(default_factory=dict)
    # With no tokens configured the API refuses every request unless this is true (local use only).
    allow_anonymous: bool = False
    rate_limit_per_minute: int = Field(600, ge=1)
    max_text_length: int = Field(5000, ge=1, le=1_000_000)
    max_batch_size: int = Field(256, ge=1, le=100_000)
    max_rounds: int = Field(100_000, ge=1)
    cors_origins: list[str] = Field(default_factory=list)
    micro_batch_wait_ms: float = Field(2.0, ge=0.0, le=1000.0)
    workers: int = Field(1, ge=1, le=64)
    # Addresses (IPs) of reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed; empty:
    # none, the peer address is the client (a proxy-local caller cannot pick its rate-limit bucket).
    trusted_proxies: list[str] = Field(default_factory=list)
    # Request line + headers larger than this get 431 (uvicorn's h11 limit and a middleware check).
    max_header_bytes: int = Field(16_384, ge=1024, le=1_048_576)


class ServingConfig(_Section):
    namespace: str = "content-arena"
    inference_service: str = "content-filter"
    canary_traffic_percent: int = Field(10, ge=1, le=99)
    prometheus_url: str | None = None
    # Canary judgement: roll back when the canary's error rate or toxic-rate drift exceeds these.
    max_canary_error_rate: float = Field(0.01, ge=0.0, le=1.0)
    max_toxic_rate_drift: float = Field(0.10, ge=0.0, le=1.0)
    canary_observation_s: int = Field(300, ge=0)
    ready_timeout_s: int = Field(600, ge=1)
    storage_uri_prefix: str = "pvc://models/content-filter"
    # How the KServe runtime (`arena serve-model`) runs the model's weights: "int8" quantises the
    # Linear layers of the transformer blocks dynamically (CPU only: the runtime then serves on CPU),
    # faster for a pretrained backbone at a small cost in precision (see docs/own-model.md); "none"
    # serves them as saved, in float32 on CPU.
    quantize: Literal["none", "int8"] = "none"
    # Which runtime runs the (float32) weights wherever a defender is loaded: the library, the API and
    # the KServe runtime. "onnx" exports the model once (kept under {home}/onnx) and serves it with ONNX
    # Runtime on CPU, within float rounding of torch and faster for a pretrained backbone; it needs
    # the [onnx] extra and falls back to torch, with one warning, without it. Not combined with int8.
    runtime: Literal["torch", "onnx"] = "torch"

    @model_validator(mode="after")
    def _one_way_to_run(self) -> ServingConfig:
        if self.runtime == "onnx" and self.quantize == "int8":
            raise ValueError("serving.runtime onnx serves float32 weights; set serving.quantize none with it")
        return self


class MonitoringConfig(_Section):
    """Live-traffic signals, alert actions and review samples (see docs/monitoring.md)."""

    # Signals on the classify path of the API and the KServe runtime; false scores with no extra work.
    enabled: bool = True
    # Score drift (PSI) is measured over about this many of the latest texts (an exponentially decayed
    # histogram) and reported once at least drift_min_texts have been seen for a model version.
    drift_window: int = Field(5000, ge=10, le=10_000_000)
    drift_min_texts: int = Field(200, ge=1)
    # A firing alert labelled action=retrain queues a pipeline run (the one-run rule still holds).
    # Off by default: runs stay manual.
    alert_triggers_pipeline: bool = False
    # Review samples: texts whose score is within review_band of the threshold, and texts the normaliser
    # changed in at least review_min_kinds ways, are kept for a person to label (at most
    # review_per_minute per process; unlabelled ones are deleted after review_retention_days).
    review_sampling: bool = True
    review_band: float = Field(0.05, ge=0.0, le=0.5)
    review_min_kinds: int = Field(2, ge=1, le=7)
    review_per_minute: int = Field(30, ge=0, le=100_000)
    review_retention_days: int = Field(30, ge=1, le=3650)


class ExperimentalConfig(_Section):
    """Knobs for experiments; defaults are the recipe; not a product setting.

    Each key switches one research choice of the default recipe so that a bench or a study can compare
    it with its alternative. A deployment leaves this section out. A key set at its former place
    (``model.``, ``training.`` or ``augment.``, see :data:`EXPERIMENTAL_KEYS`) still loads here, with a
    warning naming ``experimental.<key>``.
    """

    # How a text's n-grams are pooled: "idf" weights each by its inverse document frequency in the
    # training corpus and L2-normalises, as TF-IDF does, so rare n-grams that carry an insult are not
    # drowned by frequent ones; "mean" is the plain average.
    ngram_pooling: Literal["mean", "idf"] = "idf"
    # With "idf" pooling, n-grams found in fewer training texts than this weigh nothing: garbling a text
    # adds unseen n-grams, and at the highest IDF they would dilute the known ones in the L2-normalised
    # vector. A challenger gives weight to the n-grams of its own training texts (the evasions it learns
    # from). 0: every n-gram counts, and garbled text reads as less toxic.
    ngram_min_df: int = Field(1, ge=0)
    # The n-gram branch reads each syllable by its phonetic key (hangul.phonetic_key: tense and
    # aspirated initials made plain, near-homophone vowels merged), so respellings such as 씨발/시발
    # or 새끼/세끼 share their n-grams. The encoder still sees the text as written. Off by default: it
    # trades clean ranking (words that differ only in sound merge) for fewer phonetic evasions.
    ngram_phonetic_fold: bool = False
    # Word recognition in front of the model (defender/recognizer.py): a word the champion's corpus never
    # had is read back as the closest, then most frequent, known word of the same script within one edit of
    # its reading key (``faggpts`` -> ``faggots``, ``새끠`` -> ``새끼``). Known words are never touched. The
    # vocabulary is saved with the champion and inherited by its challengers. Keys shorter than
    # ``recognizer_min_key`` letters are left alone; only words seen ``recognizer_min_count`` times or more
    # are targets. It undoes most one-edit evasions at a small cost in clean ranking (a rare genuine word
    # may be read as a known one).
    word_recognition: bool = True
    recognizer_min_count: int = Field(1, ge=1)
    recognizer_min_key: int = Field(3, ge=1)
    # Only Korean words with a pair of neighbouring characters (ends included) that no vocabulary word has
    # are read back; the others are left as written. It keeps rare genuine words (a slur compound read as
    # a common word loses its signal) and skips most lookups, at the cost of the edits whose every pair
    # some known word has (a vowel or consonant swapped for a common one).
    recognizer_novel_only: bool = False
    # With ``model.encoder`` true, the second stage keeps the encoder only if it lifts validation AUROC by
    # at least this over the n-gram branch alone; otherwise the champion is saved without it (use_encoder
    # false: the branch's scores, at several times the speed). null always keeps the encoder.
    min_encoder_gain: float | None = Field(0.005, ge=0.0, le=1.0)
    # How the first stage fits the n-gram branch: "lbfgs" solves it as an NB-scaled, L2-regularised
    # logistic regression to convergence, its strength picked on validation AUROC (deterministic, no
    # epochs to tune); "adam": ``training.epochs`` of Adam, the best validation epoch kept.
    ngram_solver: Literal["lbfgs", "adam"] = "lbfgs"
    # Rule strategies whose variants of the champion's own training texts (labels kept) are added to
    # its training set, for ``harden_share`` of those texts: off by default, because it trades one
    # robustness figure for others (garbled clean texts are flagged less above the clean FPR, but the
    # clean ranking can suffer).
    harden_strategies: list[str] = Field(default_factory=list)
    harden_share: float = Field(1.0, gt=0.0, le=1.0)
    # With the ``adaptive`` strategy bound to the champion: echoes of each successful search's edits
    # applied to other texts (see data_augmentor). More echoes teach the moves more than the searched
    # strings, at the cost of more augmented texts per search.
    adaptive_echoes: int = Field(1, ge=0, le=100)


# The research toggles' former places: a file, override or environment variable that still sets one
# there loads, with one warning per key, and the value lands in ``experimental``.
EXPERIMENTAL_KEYS: dict[str, tuple[str, ...]] = {
    "model": ("ngram_pooling", "ngram_min_df", "ngram_phonetic_fold", "word_recognition",
              "recognizer_min_count", "recognizer_min_key"),
    "training": ("min_encoder_gain", "ngram_solver", "harden_share", "harden_strategies"),
    "augment": ("adaptive_echoes",),
}


def _move_experimental_keys(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with every research toggle found at its former place moved under ``experimental``.

    A key set at both places keeps the former place's value (it is the one the caller just wrote, e.g. an
    environment variable over the file); each moved key logs one warning naming ``experimental.<key>``.
    """
    moved: dict[str, Any] = {}
    for section, keys in EXPERIMENTAL_KEYS.items():
        values = data.get(section)
        if not isinstance(values, dict):
            continue
        found = [key for key in keys if key in values]
        if not found:
            continue
        data = {**data, section: {k: v for k, v in values.items() if k not in found}}
        for key in found:
            log.warning("%s.%s has moved: set experimental.%s instead (this value is applied there)",
                        section, key, key)
            moved[key] = _from_environment(values[key])
    if not moved:
        return data
    current = data.get("experimental")
    if isinstance(current, BaseModel):
        current = current.model_dump(exclude_unset=True)
    if current is None:
        current = {}
    if isinstance(current, dict):
        data = {**data, "experimental": {**current, **moved}}
    return data


def _from_environment(value: Any) -> Any:
    """A list given as JSON text, as an environment variable at a former place arrives (the settings
    source parses JSON only for the fields it knows at that place); any other value unchanged."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class ArenaConfig(BaseSettings):
    """Everything the library reads. Build with :func:`load_config`."""

    model_config = SettingsConfigDict(
        env_prefix="ARENA_", env_nested_delimiter="__", extra="forbid", validate_assignment=True
    )

    home: str = ".arena"
    defender: DefenderConfig = Field(default_factory=DefenderConfig)
    quality_gate: QualityGateConfig = Field(default_factory=QualityGateConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    queue: QueueConfig = Field(default_factory=QueueConfig)
    mlflow: MlflowConfig = Field(default_factory=MlflowConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    attack: AttackConfig = Field(default_factory=AttackConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    inference: InferenceConfig = Field(default_factory=InferenceConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    serving: ServingConfig = Field(default_factory=ServingConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    # Knobs for experiments; defaults are the recipe; not a product setting.
    experimental: ExperimentalConfig = Field(default_factory=ExperimentalConfig)

    @model_validator(mode="before")
    @classmethod
    def _former_places(cls, data: Any) -> Any:
        """Load research toggles still set in model/training/augment into ``experimental``, with a warning."""
        return _move_experimental_keys(data) if isinstance(data, dict) else data

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML file arrives as init kwargs; the environment overrides it.
        return (env_settings, init_settings)

    # Paths with "{home}" are resolved against ``home`` so one setting moves all local state.
    def resolve(self, value: str) -> str:
        return value.replace("{home}", self.home)

    @property
    def home_path(self) -> Path:
        return Path(self.home)

    @property
    def storage_url(self) -> str:
        return self.resolve(self.storage.url)

    @property
    def tracking_uri(self) -> str:
        return self.resolve(self.mlflow.tracking_uri)

    @property
    def registry_uri(self) -> str:
        return self.resolve(self.mlflow.registry_uri or self.mlflow.tracking_uri)

    @property
    def artifact_location(self) -> str:
        return self.resolve(self.mlflow.artifact_location)

    def llm_options(self) -> dict[str, Any] | None:
        return self.llm.model_dump() if self.llm.host else None


def _format_validation_error(error: ValidationError, source: str) -> str:
    parts = []
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"]) or "<root>"
        parts.append(f"{key}: {item['msg']}")
    return f"invalid configuration ({source}): " + "; ".join(parts)


def load_config(path: str | os.PathLike[str] | None = None, **overrides: Any) -> ArenaConfig:
    """Read ``path`` (or ``$ARENA_CONFIG``, or ``./arena.yaml`` when present) and the environment.

    ``overrides`` are nested dicts merged over the file (used by tests and the CLI).
    """
    explicit = path or os.environ.get(CONFIG_ENV)
    candidate = Path(explicit) if explicit else Path(DEFAULT_CONFIG_FILE)
    data: dict[str, Any] = {}
    source = "defaults and environment"
    if explicit and not candidate.is_file():
        raise ConfigError(f"config file not found: {candidate}")
    if candidate.is_file():
        source = str(candidate)
        try:
            loaded = yaml.safe_load(candidate.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot parse {candidate}: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{candidate}: top level must be a mapping, got {type(loaded).__name__}")
        data = loaded
    data = _deep_merge(data, overrides)
    try:
        return ArenaConfig(**data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, source)) from None


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
