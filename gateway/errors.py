"""Errors of the gateway. Each carries a message that is safe to show to an end-user or API client, and
the HTTP status and OpenAI error type/code the tenant API answers with."""

from typing import Any


class GatewayError(Exception):
    status_code = 500
    error_type = "api_error"
    code = "gateway_error"
    # The request field the error is about, as OpenAI's errors name it ("model", "messages"), if any.
    param: str | None = None

    def __init__(self, user_message: str, *, call: Any = None) -> None:
        super().__init__(user_message)
        self.user_message = user_message
        # The ModelCall row recorded for this failure, when one was written.
        self.call = call

    def as_openai_error(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.user_message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


class ModelNotAllowed(GatewayError):
    status_code = 404
    error_type = "invalid_request_error"
    code = "model_not_found"
    param = "model"


class ContextLengthExceeded(GatewayError):
    """The prompt cannot fit the model's context window: counted before the call with the model's own
    tokenizer, or said so by the provider. The caller's to fix; never a provider failure."""

    status_code = 400
    error_type = "invalid_request_error"
    code = "context_length_exceeded"
    param = "messages"


class RequestRejected(GatewayError):
    """The provider refused the request itself (HTTP 400/413/422: a bad parameter, content it will not
    take). The caller's to fix: answered with the provider's reason, never counted against the provider's
    circuit breaker, never retried on a fallback."""

    status_code = 400
    error_type = "invalid_request_error"
    code = "invalid_request"


class KillSwitchOn(GatewayError):
    status_code = 403
    error_type = "permission_error"
    code = "tenant_disabled"


class RateLimited(GatewayError):
    status_code = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"


class BudgetExceeded(GatewayError):
    status_code = 429
    error_type = "insufficient_quota"
    code = "budget_exceeded"


class ProviderUnavailable(GatewayError):
    status_code = 503
    error_type = "api_error"
    code = "provider_unavailable"


class StopRequested(GatewayError):
    """The caller asked this call's stream to stop (gateway.policy.request_stop). Streams only: it ends the
    stream as cut off, never reaches an HTTP client as an error."""

    status_code = 409
    error_type = "invalid_request_error"
    code = "stopped"


class TenantContextError(RuntimeError):
    """A model call was attempted outside the tenant it claims to be for. A bug, never a user error."""


class CrossTenantBlocked(GatewayError):
    """Another tenant's canary marker was found in the call (gateway.screening): stopped before the text
    reached anyone. The platform's security team has an incident for it (reference)."""

    status_code = 403
    error_type = "permission_error"
    code = "security_blocked"

    def __init__(self, user_message: str, *, call: Any = None, reference: str = "") -> None:
        super().__init__(user_message, call=call)
        self.reference = reference
