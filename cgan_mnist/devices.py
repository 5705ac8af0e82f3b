"""Where training runs: the tf.distribute strategy, the chief, mixed precision.

- ``default``: one device, the GPU when there is one, else the CPU.
- ``mirrored``: every local GPU (or, with none, every logical CPU device),
  one replica each, gradients all-reduced every step.
- ``multi-worker``: MultiWorkerMirroredStrategy over the machines named in
  the ``TF_CONFIG`` environment variable; run the same command on each.

Only the chief (worker 0, or the single process) writes outputs; the other
workers write their share of each checkpoint to a temporary folder, as
MultiWorkerMirroredStrategy requires, and delete it at the end.
"""

from __future__ import annotations


def make_strategy(name: str):
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multi-worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}")


def is_chief(strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict())


def mixed_precision_policy(enabled: bool) -> str | None:
    """float16 (with loss scaling) on GPUs; bfloat16 on CPUs, whose AVX512_BF16 and
    AMX units compute it natively and whose range needs no loss scaling."""
    if not enabled:
        return None
    import tensorflow as tf

    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"


def check_tf_config(environ=None) -> None:
    """Refuse a TF_CONFIG that MultiWorkerMirroredStrategy could not use, in one line.

    Plain JSON checks, before TensorFlow starts: a "cluster" of named lists of
    "host:port" addresses, and a "task" with a "type" in it and an "index" in range.
    """
    import json
    import os

    from .errors import UsageError

    text = (os.environ if environ is None else environ).get("TF_CONFIG", "")
    fix = ('set TF_CONFIG to JSON like {"cluster": {"worker": ["host1:port", "host2:port"]}, '
           '"task": {"type": "worker", "index": 0}}')
    try:
        spec = json.loads(text) if text else None
    except ValueError:
        raise UsageError(f"--strategy multi-worker: TF_CONFIG is not valid JSON; {fix}") from None
    cluster, task = (spec.get("cluster"), spec.get("task")) if isinstance(spec, dict) else (None,
                                                                                           None)
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise UsageError(f"--strategy multi-worker: TF_CONFIG needs a cluster and a task; {fix}")
    workers = cluster.get(task.get("type"))
    index = task.get("index")
    if (not isinstance(workers, list) or not all(isinstance(w, str) for w in workers)
            or not isinstance(index, int) or isinstance(index, bool)
            or not 0 <= index < len(workers)):
        raise UsageError("--strategy multi-worker: TF_CONFIG's task does not name one of its "
                         f"cluster's {task.get('type')!r} addresses; {fix}")
