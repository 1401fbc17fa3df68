"""Pick the tf.distribute strategy for where the job runs, and say how the batch is split.

`--tpu NAME|local|grpc://host:port` -> TPUStrategy; `TF_CONFIG` set -> MultiWorkerMirrored;
several GPUs -> Mirrored; `cpu_replicas > 1` splits the CPU into logical devices under a
Mirrored strategy (testing distribution code on a laptop); otherwise the default strategy.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os

import tensorflow as tf

from tfcompact.errors import UserError

log = logging.getLogger("tfcompact.train")


@dataclasses.dataclass
class StrategyInfo:
    """The strategy plus the facts preflight and the logs need."""

    strategy: tf.distribute.Strategy
    kind: str  # "tpu" | "multi_worker" | "mirrored" | "default"
    num_replicas: int
    num_hosts: int

    @property
    def on_tpu(self) -> bool:
        return self.kind == "tpu"

    def describe_batch(self, global_batch: int) -> str:
        """One line stating global and per-replica batch (they are easily confused on TPUs)."""
        per = global_batch // max(1, self.num_replicas)
        return (f"strategy {self.kind}: {self.num_replicas} replica(s) on {self.num_hosts} "
                f"host(s); global batch {global_batch} = {per} per replica x "
                f"{self.num_replicas} replicas")


def split_cpu(num: int) -> list[str]:
    """Split the first CPU into `num` logical devices; must run before TensorFlow initialises."""
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(num)])
    except RuntimeError as e:
        existing = tf.config.list_logical_devices("CPU")
        if len(existing) != num:
            raise UserError(f"cpu_replicas={num}: TensorFlow is already initialised with "
                            f"{len(existing)} CPU device(s); set it before anything runs "
                            f"({e})") from None
    return [d.name for d in tf.config.list_logical_devices("CPU")]


def connect_tpu(tpu: str):
    """(resolver, topology) of an initialised TPU system; a one-line UserError if there is none.

    `tpu` is "local" on a TPU VM, a TPU name in the same project/zone, or grpc://host:port."""
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        topology = tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.OpError, RuntimeError) as e:
        text = str(e).strip()
        # TensorFlow's message runs on with the kernel registry; its first sentence says it.
        reason = text.split(". ")[0].splitlines()[0] if text else type(e).__name__
        if tpu == "local":
            import importlib.metadata as md

            try:
                md.version("libtpu")
                hint = "run on a Cloud TPU VM"
            except md.PackageNotFoundError:
                hint = "libtpu is not installed; run on a Cloud TPU VM set up by `tfcompact submit`"
            raise UserError(f"--tpu local: no TPU on this machine ({reason}); {hint}, or drop "
                            f"--tpu to train on this machine's CPU/GPUs") from None
        raise UserError(f"--tpu {tpu}: cannot reach the TPU ({reason}); on a TPU VM use --tpu "
                        f"local, elsewhere the TPU name in the same zone/project") from None
    return resolver, topology


def resolve_strategy(tpu: str | None = None, cpu_replicas: int = 0) -> StrategyInfo:
    """Build the strategy for this machine (see the module docstring for the order)."""
    if tpu:
        resolver, _ = connect_tpu(tpu)
        strategy = tf.distribute.TPUStrategy(resolver)
        num_hosts = int(getattr(strategy.extended, "num_hosts", 1) or 1)
        return StrategyInfo(strategy, "tpu", strategy.num_replicas_in_sync, num_hosts)
    if os.environ.get("TF_CONFIG"):
        try:
            cluster = json.loads(os.environ["TF_CONFIG"]).get("cluster", {})
        except json.JSONDecodeError as e:
            raise UserError(f"TF_CONFIG is not valid JSON: {e}") from None
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        hosts = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
        return StrategyInfo(strategy, "multi_worker", strategy.num_replicas_in_sync, max(1, hosts))
    if cpu_replicas and cpu_replicas > 1:
        devices = split_cpu(cpu_replicas)
        strategy = tf.distribute.MirroredStrategy(devices)
        return StrategyInfo(strategy, "mirrored", strategy.num_replicas_in_sync, 1)
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        strategy = tf.distribute.MirroredStrategy()
        return StrategyInfo(strategy, "mirrored", strategy.num_replicas_in_sync, 1)
    return StrategyInfo(tf.distribute.get_strategy(), "default", 1, 1)


def is_chief() -> bool:
    """Whether this process writes summaries, model directory files and `summary.json`:
    TF_CONFIG's chief (or worker 0 when there is no chief); on TPU VMs, worker 0. Every
    worker still takes part in saving checkpoints (collectives), into a throwaway copy."""
    if os.environ.get("TF_CONFIG"):
        tf_config = json.loads(os.environ["TF_CONFIG"])
        task = tf_config.get("task", {})
        if "chief" in tf_config.get("cluster", {}):
            return task.get("type") == "chief"
        return int(task.get("index", 0)) == 0
    return int(os.environ.get("CLOUD_TPU_TASK_ID", os.environ.get("TPU_WORKER_ID", "0")) or 0) == 0
