"""Request and response bodies of the API (they also make the OpenAPI document at /docs)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

# A name is stored per round in a varchar(100) column (attacks.registry.MAX_STRATEGY_NAME_LENGTH).
StrategyName = Annotated[str, Field(min_length=1, max_length=100)]
StrategySpec = Annotated[str, Field(min_length=1, max_length=2000)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- errors ---------------------------------------------------------------------------------------


class ErrorOut(BaseModel):
    detail: str


class ConflictOut(BaseModel):
    detail: str
    running_run_id: str | None = None


# -- battles --------------------------------------------------------------------------------------


class BattleCreate(_Body):
    # Strict: JSON true or "5" is refused (422), not read as 1 or 5.
    rounds: StrictInt = Field(ge=1, description="Rounds to play (at most api.max_rounds).")
    strategies: Annotated[list[StrategyName], Field(max_length=50)] | StrategySpec | None = Field(
        None, description="Strategy names, a comma list, 'a+b' composites or 'all'; default attack.strategies."
    )
    seed_source: Literal["seed", "training_data"] = Field(
        "seed", description="Toxic seed texts: the configured dataset's training split, or the stored training data."
    )
    model: Literal["champion", "challenger"] = Field("champion", description="Which model alias to attack.")


class BattleCreated(BaseModel):
    id: str
    status: str


class BattleProgress(BaseModel):
    rounds_completed: int
    rounds_planned: int
    fraction: float


class BattleOut(BaseModel):
    id: str
    status: Literal["pending", "running", "completed", "failed", "stopped"]
    model_name: str
    model_version: str | None
    strategies: list[str]
    source: str
    seed_source: str
    progress: BattleProgress
    evaded_count: int
    evasion_rate: float
    error: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None


class BattleList(BaseModel):
    battles: list[BattleOut]
    limit: int
    offset: int


class RoundOut(BaseModel):
    round_number: int
    strategy: str
    original_text: str
    attacked_text: str
    true_label: int
    toxic_score: float
    predicted_toxic: bool
    evaded: bool
    created_at: str | None


class RoundsPage(BaseModel):
    battle_id: str
    total: int
    limit: int
    offset: int
    rounds: list[RoundOut]


class StopOut(BaseModel):
    id: str
    status: str
    stop_requested: bool


class ResumeOut(BaseModel):
    id: str
    status: str


# -- models ---------------------------------------------------------------------------------------


class ModelOut(BaseModel):
    name: str
    version: int
    alias: str | None
    status: str
    uri: str
    metrics: dict[str, Any]
    created_at: str
    updated_at: str
    serving: bool = Field(description="This API is serving this version for /classify.")


class ModelsOut(BaseModel):
    name: str
    serving_version: str | None
    models: list[ModelOut]


class PromoteRequest(_Body):
    version: StrictInt = Field(ge=1, description="A registered version (a JSON integer; true or \"1\" is refused).")


class PromoteOut(BaseModel):
    champion_version: int
    previous_version: int | None
    serving_version: str | None


# -- classify -------------------------------------------------------------------------------------


class ClassifyRequest(_Body):
    text: str | None = Field(None, description="One text; or use texts.")
    texts: list[str] | None = Field(None, description="Several texts (at most api.max_batch_size).")

    @model_validator(mode="after")
    def _exactly_one(self) -> ClassifyRequest:
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of text or texts")
        return self


class ClassificationOut(BaseModel):
    toxic_score: float
    is_toxic: bool
    confidence: float


class ClassifyOut(BaseModel):
    model_version: str | None
    results: list[ClassificationOut]


# -- pipeline -------------------------------------------------------------------------------------


class TriggerIn(_Body):
    cycles: StrictInt = Field(1, ge=1, le=100, description="Cycles of the loop, each attacking the current champion.")
    until_pass: bool = Field(False, description="Stop once the gate passes twice in a row.")


class TriggerOut(BaseModel):
    run_id: str
    status: str


class PipelineRunOut(BaseModel):
    id: str
    status: Literal["queued", "running", "completed", "failed"]
    requested_by: str
    worker: str | None
    decision: str | None
    summary: dict[str, Any] | None
    error: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None


class PipelineRunList(BaseModel):
    runs: list[PipelineRunOut]


# -- operations -----------------------------------------------------------------------------------


class HealthOut(BaseModel):
    status: str


class ReadyOut(BaseModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, bool]
    failed: list[str]
