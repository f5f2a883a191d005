"""On the Ray Train controller: each registered epoch report becomes one MLflow step and one console line.

Ray Train calls a ``UserCallback``'s ``after_report`` on the controller once every worker has
reported an epoch and the checkpoint of that report is registered, and never for a report
lost with a dying worker. Logging there, rather than from rank 0 after ``ray.train.report``
returns, is what makes each epoch's metrics reach MLflow exactly once whenever a worker
dies: an epoch is logged if and only if Ray will resume after it.
"""
from __future__ import annotations

from typing import Any

from ray.train import UserCallback

NODE_ID = "node_id"  # a string each rank adds to its report: where it trained


class EpochReporter(UserCallback):
    """Logs rank 0's epoch metrics to the MLflow run ``run_id`` at step = epoch, and prints the epoch line."""

    def __init__(self, tracking_uri: str, run_id: str, epochs: int) -> None:
        self.tracking_uri, self.run_id, self.epochs = tracking_uri, run_id, epochs
        self._nodes: list[str] | None = None

    def after_report(self, run_context, metrics: list[dict[str, Any]], checkpoint) -> None:
        from mlflow.tracking import MlflowClient

        from ..tracking import log_metrics

        client = MlflowClient(tracking_uri=self.tracking_uri)
        nodes = [str(m.get(NODE_ID, "")) for m in metrics]
        if nodes != self._nodes:  # a restarted worker group may train elsewhere: describe this attempt
            client.set_tag(self.run_id, "train_node_ids", ",".join(nodes))
            self._nodes = nodes
        numbers = {k: float(v) for k, v in metrics[0].items() if isinstance(v, (int, float))}
        log_metrics(client, self.run_id, numbers, step=int(numbers["epoch"]))
        print(epoch_line(numbers, self.epochs), flush=True)  # the controller's stdout reaches the driver


def epoch_line(m: dict[str, float], epochs: int) -> str:
    return (f"epoch {int(m['epoch']) + 1}/{epochs}  loss {m['train_loss']:.3f}  train top-1 {m['train_top1']:.1f}  "
            f"val top-1 {m['val_top1']:.1f}  top-5 {m['val_top5']:.1f}  mean class {m['val_mean_class_acc']:.1f}  "
            f"{m['train_clips_per_s']:.1f} clips/s  lr {m['lr']:.4f}")
