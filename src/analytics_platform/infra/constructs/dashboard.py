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
    return {
        "widgets": [
            *_function_widgets(region, function_name, error_rate_threshold),
            *_queue_widgets(region, queue_name, dlq_name),
            _jobs_widget(region, function_name),
        ]
    }


def _lambda_metric(function_name: str, metric: str, stat: str = "Sum") -> list[Any]:
    return ["AWS/Lambda", metric, "FunctionName", function_name, {"stat": stat}]


def _sqs_metric(metric: str, queue: str, stat: str = "Maximum") -> list[Any]:
    return ["AWS/SQS", metric, "QueueName", queue, {"stat": stat}]


def _widget(region: str, title: str, metrics: list[Any], x: int, y: int, **extra: Any) -> dict[str, Any]:
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


def _function_widgets(region: str, function_name: str, error_rate_threshold: float) -> list[dict[str, Any]]:
    """Invocations, errors and throttles; duration; the error rate against its alarm's threshold."""

    def lam(metric: str, stat: str = "Sum") -> list[Any]:
        return _lambda_metric(function_name, metric, stat)

    return [
        _widget(region, "ETL invocations and errors", [lam("Invocations"), lam("Errors"), lam("Throttles")], 0, 0),
        _widget(region, "ETL duration (ms)", [lam("Duration", "Average"), lam("Duration", "p99")], 12, 0),
        _widget(
            region,
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
    ]


def _queue_widgets(region: str, queue_name: str, dlq_name: str) -> list[dict[str, Any]]:
    """The work queue's depth and age; the dead-letter queue's depth."""
    return [
        _widget(
            region,
            "Queue depth and age",
            [
                _sqs_metric("ApproximateNumberOfMessagesVisible", queue_name),
                _sqs_metric("ApproximateNumberOfMessagesNotVisible", queue_name),
                _sqs_metric("ApproximateAgeOfOldestMessage", queue_name),
            ],
            12,
            6,
        ),
        _widget(
            region, "Dead-letter queue depth", [_sqs_metric("ApproximateNumberOfMessagesVisible", dlq_name)], 0, 12
        ),
    ]


def _jobs_widget(region: str, function_name: str) -> dict[str, Any]:
    """The worker's own job metrics by outcome."""
    return _widget(
        region,
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
    )
