"""One frozen dataclass per training run; its stable hash names the run in the store.

The hash covers exactly the fields that change the trajectory or the recorded metrics,
plus :data:`STORE_FORMAT`. It leaves out ``epochs`` (a longer run *extends* a shorter one
with the same hash, see :mod:`sphere_regimes.store`) and the execution details
(``device``, ``checkpoint_every``). A field added after the first release carries
``hash="if_not_default"``: it enters the hash only when set to a non-default value, so the
runs stored before it existed keep their names.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from .optim import CONSTRAINTS, INDIVIDUAL_GROUPINGS

STORE_FORMAT = 1
"""Version of the on-disk layout and metric definitions; part of every run hash."""

DATASETS = ("fashion_mnist", "cifar10", "cifar100")
MODELS = ("convnet_si", "convnet_af", "resnet18_si", "resnet18_af")
FACTORY_MODEL = "factory"  # model built by an importable callable ``factory`` (your own network, see regime_map)
OPTIMIZERS = ("sphere", "sgd")
DTYPES = ("float32", "float64")
COMPUTE_DTYPES = ("float32", "bfloat16")


def _hashed(default: Any, policy: str = "always") -> Any:
    return field(default=default, metadata={"hash": policy})


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one training run (paper §4-§6 settings by default).

    Sphere mode (``optimizer="sphere"``): projected SGD at a fixed effective learning rate
    ``elr = lr / ||w||^2`` with ``lr = elr * ||w_0||^2`` (paper §4). SGD mode
    (``optimizer="sgd"``): plain SGD over the full space with ``lr``, ``weight_decay`` and
    ``momentum`` (paper §6, conventional training). Fine-tuning: ``init_from`` names a finished
    run of the same network whose final weights (and BN statistics) are this run's initial point.

    Precision: ``dtype`` is the weights' dtype (and the data's). ``compute_dtype="float32"`` (the
    default) computes every pass in ``dtype``. ``compute_dtype="bfloat16"`` (float32 weights only)
    runs under ``torch.autocast(device_type, dtype=torch.bfloat16)`` exactly these passes: the
    forward pass of each training step (its backward follows the forward's precision), the forward
    of the train-mode metric pass and its backward for the effective gradient, the forward of the
    test pass, and the forward with its first and second backward of the Hutchinson sharpness
    probes. Autocast puts the convolutions and the linear head in bfloat16 (BatchNorm, ReLU and
    max-pool then see bfloat16 activations); the logits are cast to float32 before the loss. The
    weights, their gradients, the optimizer step, the sphere projection and every metric reduction
    (loss sums, error counts, norms, angles, cosines, effective gradient, sharpness sums) stay in
    float32 or float64. The batched engine (:mod:`.batched`) computes in float32 only.

    Batches: by default an epoch ends with the partial batch of the last ``N mod batch_size`` images
    of its shuffled order (as the official code). ``drop_last_batch=True`` trains on whole batches only:
    an epoch takes ``N // batch_size`` steps of ``batch_size`` images (the order is reshuffled every
    epoch, so every image is still used over epochs), and the train-mode metric pass and the sharpness
    probes, whose batch statistics and mean over minibatches are part of the metric, use the whole
    batches of their fixed order (the first ``(N // batch_size) * batch_size`` images); the test pass
    uses every test image.
    """

    dataset: str = _hashed("fashion_mnist")
    train_size: int | None = _hashed(None)  # first N training images; None = all
    model: str = _hashed("convnet_si")
    width: int = _hashed(32)  # channels of the first conv layer
    depth: int = _hashed(3)  # ConvNet: number of conv-BN-ReLU-MaxPool blocks
    head_norm: float = _hashed(10.0)  # Frobenius norm of the (frozen) last layer
    optimizer: str = _hashed("sphere")
    elr: float | None = _hashed(None)  # sphere: effective LR on the sphere, lr / ||w||^2
    constraint: str = _hashed("total")  # sphere: "total" or "individual" norm constraint
    grouping: str = _hashed("layer")  # individual constraint: per "layer" or per "filter"
    lr: float | None = _hashed(None)  # sgd: learning rate
    weight_decay: float = _hashed(0.0)  # sgd: L2 coefficient lambda
    momentum: float = _hashed(0.0)  # sgd: heavy-ball momentum
    batch_size: int = _hashed(128)
    seed: int = _hashed(0)  # init of the body and order of the batches
    head_seed: int = _hashed(0)  # init of the last layer, shared across runs
    augment: bool = _hashed(False)  # on-device random crop (pad 4) + horizontal flip
    dense_metric_epochs: int = _hashed(20)  # full metrics every epoch up to this epoch ...
    metric_every: int = _hashed(1)  # ... then every this many epochs (and at the end)
    dtype: str = _hashed("float32")
    init_from: str | None = _hashed(None, "if_not_default")  # run id whose final weights start this run
    sharpness_every: int = _hashed(0, "if_not_default")  # Hutchinson sharpness every this many epochs; 0 = never
    sharpness_images: int = _hashed(1024, "if_not_default")  # ... on the first this many training images
    sharpness_probes: int = _hashed(2, "if_not_default")  # ... with this many Rademacher probes per minibatch
    compute_dtype: str = _hashed("float32", "if_not_default")  # precision of the passes, see below
    factory: str | None = _hashed(None, "if_not_default")  # model "factory": "module:callable" that builds the net
    factory_sha256: str = _hashed("", "if_not_default")  # ... sha256 of that module's source (an edit is a new run)
    factory_head_norm: float | None = _hashed(None, "if_not_default")  # ... head rescaled to this norm (None: as built)
    drop_last_batch: bool = _hashed(False, "if_not_default")  # train on whole batches only, see below
    epochs: int = _hashed(1, policy="never")
    device: str = _hashed("auto", policy="never")  # "auto", "cpu", "cuda", "cuda:1", ...
    checkpoint_every: int = _hashed(1, policy="never")  # resume checkpoint period, epochs

    def __post_init__(self) -> None:
        _validate(self)

    # -- identity -------------------------------------------------------------------
    def hashed_fields(self) -> dict[str, Any]:
        """The fields that name the run, with the store format."""
        values: dict[str, Any] = {"store_format": STORE_FORMAT}
        for f in dataclasses.fields(self):
            policy = f.metadata.get("hash", "always")
            value = getattr(self, f.name)
            if policy == "never" or (policy == "if_not_default" and value == f.default):
                continue
            values[f.name] = value
        return values

    @property
    def run_id(self) -> str:
        """Stable 16-hex-digit name of the run: sha256 of the canonical JSON of the hashed fields."""
        canonical = json.dumps(self.hashed_fields(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    # -- (de)serialisation ----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunConfig:
        """Build from a mapping; unknown keys raise ``ValueError`` naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown RunConfig field(s) {unknown}; known fields: {sorted(known)}")
        return cls(**values)

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    # -- derived quantities ---------------------------------------------------------
    @property
    def is_sphere(self) -> bool:
        return self.optimizer == "sphere"

    def has_full_metrics(self, epoch: int) -> bool:
        """Whether epoch ``epoch`` gets the expensive metric passes (epoch 0 is the init)."""
        return (
            epoch <= self.dense_metric_epochs
            or epoch % self.metric_every == 0
            or epoch == self.epochs
        )

    def has_sharpness(self, epoch: int) -> bool:
        """Whether epoch ``epoch`` gets the Hutchinson sharpness (every ``sharpness_every`` epochs
        from the init, and at the end)."""
        return self.sharpness_every > 0 and (epoch % self.sharpness_every == 0 or epoch == self.epochs)

    def label(self) -> str:
        """Short human-readable description for tables and legends."""
        if self.is_sphere:
            core = f"ELR {self.elr:g} ({self.constraint if self.constraint == 'total' else 'individual, ' + self.grouping})"
        else:
            core = f"SGD lr {self.lr:g} wd {self.weight_decay:g} mom {self.momentum:g}"
        precision = " bf16" if self.compute_dtype == "bfloat16" else ""
        network = self.factory if self.model == FACTORY_MODEL else f"{self.model}-{self.width}"
        return f"{network} {self.dataset} {core} seed {self.seed}{precision}"


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; choose one of {list(allowed)}")


def _positive_int(name: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_finite(name: str, value: Any, *, positive: bool) -> None:
    """A ``ValueError`` naming ``name`` unless ``value`` is a finite number, > 0 (``positive``) or >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    if not positive and value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")


def _validate_factory(config: RunConfig) -> None:
    """Model ``factory`` names its callable as ``module:name`` with its source's sha256; other models leave the
    factory fields unset."""
    if config.model != FACTORY_MODEL:
        if config.factory is not None or config.factory_sha256 or config.factory_head_norm is not None:
            raise ValueError(f"factory, factory_sha256 and factory_head_norm are for model {FACTORY_MODEL!r}")
        return
    if not isinstance(config.factory, str) or not re.fullmatch(r"[\w.]+:[\w.]+", config.factory):
        raise ValueError(f"model {FACTORY_MODEL!r} needs factory 'module:callable', got {config.factory!r}")
    if not isinstance(config.factory_sha256, str) or not re.fullmatch(r"[0-9a-f]{64}", config.factory_sha256):
        raise ValueError(f"factory_sha256 must be the sha256 of the factory's module source, got "
                         f"{config.factory_sha256!r}")
    if config.factory_head_norm is not None:
        check_finite("factory_head_norm", config.factory_head_norm, positive=True)


def _validate(config: RunConfig) -> None:
    """Reject invalid settings with a ``ValueError`` that names the field, before any work."""
    _choice("dataset", config.dataset, DATASETS)
    _choice("model", config.model, (*MODELS, FACTORY_MODEL))
    _validate_factory(config)
    _choice("optimizer", config.optimizer, OPTIMIZERS)
    _choice("constraint", config.constraint, CONSTRAINTS)
    _choice("grouping", config.grouping, INDIVIDUAL_GROUPINGS)
    _choice("dtype", config.dtype, DTYPES)
    _choice("compute_dtype", config.compute_dtype, COMPUTE_DTYPES)
    if config.compute_dtype == "bfloat16" and config.dtype != "float32":
        raise ValueError(f"compute_dtype 'bfloat16' needs float32 weights (dtype 'float32'), got dtype {config.dtype!r}: "
                         "autocast computes in bfloat16 from float32 weights")
    _positive_int("train_size", config.train_size, allow_none=True)
    _positive_int("width", config.width)
    _positive_int("depth", config.depth)
    _positive_int("batch_size", config.batch_size)
    _positive_int("epochs", config.epochs)
    _positive_int("metric_every", config.metric_every)
    _positive_int("checkpoint_every", config.checkpoint_every)
    if config.init_from is not None and (not isinstance(config.init_from, str)
                                         or not re.fullmatch(r"[0-9a-f]{16}", config.init_from)):
        raise ValueError(f"init_from must be the 16-hex-digit run id of a finished run, got {config.init_from!r}")
    _positive_int("sharpness_images", config.sharpness_images)
    _positive_int("sharpness_probes", config.sharpness_probes)
    if isinstance(config.sharpness_every, bool) or not isinstance(config.sharpness_every, int) \
            or config.sharpness_every < 0:
        raise ValueError(f"sharpness_every must be an integer >= 0 (0: never), got {config.sharpness_every!r}")
    if isinstance(config.dense_metric_epochs, bool) or not isinstance(config.dense_metric_epochs, int) \
            or config.dense_metric_epochs < 0:
        raise ValueError(f"dense_metric_epochs must be an integer >= 0, got {config.dense_metric_epochs!r}")
    for name in ("seed", "head_seed"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    for name in ("augment", "drop_last_batch"):
        if not isinstance(getattr(config, name), bool):
            raise ValueError(f"{name} must be True or False, got {getattr(config, name)!r}")
    check_finite("head_norm", config.head_norm, positive=True)
    if config.is_sphere:
        if config.elr is None:
            raise ValueError("optimizer 'sphere' needs elr (effective learning rate > 0)")
        check_finite("elr", config.elr, positive=True)
        if config.lr is not None or config.weight_decay != 0 or config.momentum != 0:
            raise ValueError("optimizer 'sphere' takes elr only: leave lr, weight_decay and momentum unset "
                             "(no momentum or weight decay on the sphere, paper §4)")
        if config.model.endswith("_af"):
            raise ValueError(f"model {config.model!r} has trainable non-scale-invariant parameters; "
                             "train it with optimizer 'sgd' (the sphere needs a fully scale-invariant net)")
    else:
        if config.lr is None:
            raise ValueError("optimizer 'sgd' needs lr (learning rate > 0)")
        check_finite("lr", config.lr, positive=True)
        check_finite("weight_decay", config.weight_decay, positive=False)
        check_finite("momentum", config.momentum, positive=False)
        if config.momentum >= 1:
            raise ValueError(f"momentum must be < 1, got {config.momentum!r}")
        if config.elr is not None:
            raise ValueError("optimizer 'sgd' takes lr, weight_decay and momentum; leave elr unset")
    if not isinstance(config.device, str) or not config.device:
        raise ValueError(f"device must be a string such as 'auto', 'cpu' or 'cuda', got {config.device!r}")
