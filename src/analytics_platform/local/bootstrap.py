"""Local Lambda execution environment, run as a script by :mod:`lambda_runner` (never imported).

It plays the part of the Lambda runtime API: the deployed package's folder is first on ``sys.path``,
the handler is imported once (a warm container; a ``ready`` line ends this init phase), and each request
line on stdin is one invocation.
Responses go to the file descriptor named in ``TAP_RESPONSE_FD``; stdout and stderr are the function's
log stream, as in Lambda.
"""

import importlib
import json
import os
import sys
import time
import traceback
import uuid


class Context:
    """The Lambda context object."""

    def __init__(self, request: dict) -> None:
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024"))
        self.invoked_function_arn = request["function_arn"]
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + request["timeout_seconds"]

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> None:
    module_name, function_name = os.environ["_HANDLER"].rsplit(".", 1)
    responses = os.fdopen(int(os.environ["TAP_RESPONSE_FD"]), "w", buffering=1)
    handler = getattr(importlib.import_module(module_name), function_name)
    # the init phase is over: the runner starts the first invocation's clock only now, as Lambda does
    responses.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        try:
            result = handler(request["event"], Context(request))
            reply = {"ok": True, "result": result}
        except Exception as error:  # an invocation error, as Lambda reports it
            traceback.print_exc()
            reply = {"ok": False, "errorType": type(error).__name__, "errorMessage": str(error)}
        sys.stdout.flush()
        sys.stderr.flush()
        responses.write(json.dumps(reply, default=str) + "\n")


if __name__ == "__main__":
    main()
