"""The regional CloudWatch dashboard: the worker, both queues and the jobs by outcome."""

from __future__ import annotations

from typing import Any

from analytics_platform.etl import metrics as worker_metrics

PERIOD_SECONDS = 300
#: Errors as a share of invocations, in the form CloudWatch's metric math accepts (``MAX`` takes time series
#: only, and the guide keeps it out of alarms): 0 for a period without invocations instead of a division by zero.
#: The ids ``errors`` and ``invocations`` name the Lambda ``Errors`` and ``Invocations`` sums.
ERROR_RATE_EXPRESSION = "IF(invocations > 0, 100 * errors / invocations, 0)"


def dashboard_body(
    *, region: str, function_name: str, queue_name: str, dlq_name: str, error_rate_threshold: float
) -> dict[str, Any]:
    """Widgets for the worker and both queues; every metric carries its dimension."""

    def lam(metric: str, stat: str = "Sum") -> list[Any]:
        return ["AWS/Lambda", metric, "FunctionName", function_name, {"stat": stat}]

    def sqs(metric: str, queue: str, stat: str = "Maximum") -> list[Any]:
        return ["AWS/SQS", metric, "QueueName", queue, {"stat": stat}]

    def widget(title: str, metrics: list[Any], x: int, y: int, **extra: Any) -> dict[str, Any]:
        return {
            "type": "metric",
            "x": x,
            "y": y,
            "width": 12,
            "height": 6,
            "properties": {
                "title": title,
                "region": region,
                "metrics": metrics,
                "period": PERIOD_SECONDS,
                "view": "timeSeries",
                **extra,
            },
        }

    return {
        "widgets": [
            widget("ETL invocations and errors", [lam("Invocations"), lam("Errors"), lam("Throttles")], 0, 0),
            widget("ETL duration (ms)", [lam("Duration", "Average"), lam("Duration", "p99")], 12, 0),
            widget(
                "ETL error rate (%)",
                [
                    [*lam("Errors")[:4], {"id": "errors", "stat": "Sum", "visible": False}],
                    [*lam("Invocations")[:4], {"id": "invocations", "stat": "Sum", "visible": False}],
                    [{"expression": ERROR_RATE_EXPRESSION, "label": "error rate %", "id": "rate"}],
                ],
                0,
                6,
                annotations={"horizontal": [{"label": "alarm", "value": error_rate_threshold}]},
            ),
            widget(
                "Queue depth and age",
                [
                    sqs("ApproximateNumberOfMessagesVisible", queue_name),
                    sqs("ApproximateNumberOfMessagesNotVisible", queue_name),
                    sqs("ApproximateAgeOfOldestMessage", queue_name),
                ],
                12,
                6,
            ),
            widget("Dead-letter queue depth", [sqs("ApproximateNumberOfMessagesVisible", dlq_name)], 0, 12),
            widget(
                "Jobs by outcome",
                [
                    [worker_metrics.NAMESPACE, name, worker_metrics.SERVICE_DIMENSION, function_name, {"stat": "Sum"}]
                    for name in (
                        worker_metrics.JOBS_SUCCEEDED,
                        worker_metrics.JOBS_FAILED,
                        worker_metrics.JOBS_DEAD_LETTERED,
                        worker_metrics.JOBS_RETRIED,
                    )
                ],
                12,
                12,
            ),
        ]
    }
