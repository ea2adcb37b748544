"""Wire-level test data for the LLM fallback gateway.

Every body here is copied from /work/shared/PROVIDERS.md as closely as possible (wording, spacing,
key order). Where PROVIDERS.md elides a value with "…" (ids, org names, key prefixes) a plausible
concrete value was filled in, and where it marks something "?" a plausible body was invented; the
`source` string of each case says which. Evidence grades: R = recorded traffic, D = provider docs
or source code, U = user reports, ? = not confirmed (see PROVIDERS.md §8).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ErrorCase:
    id: str  # e.g. "openai-429-insufficient-quota"
    flavor: str  # openai | groq | gemini | deepseek | ollama
    status: int
    body: bytes  # raw bytes exactly as on the wire
    expect: str  # quota_exhausted | daily_limit | rate_limited | auth | model_not_found | transient | caller_fault
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    retry_after_s: float | None = None  # the cooldown hint the classifier must extract, None = no hint
    bench: bool = True  # False = fail over but do not cool the provider down (request-specific)
    source: str = ""  # grade + source from PROVIDERS.md


# --------------------------------------------------------------------------------------------------
# Shared fragments of Google RPC error details (Gemini). Kept as literal text so bodies stay wire-exact.
# --------------------------------------------------------------------------------------------------

_GEMINI_HELP = (
    b'{"@type":"type.googleapis.com/google.rpc.Help","links":[{"description":"Learn more about Gemini API quotas",'
    b'"url":"https://ai.google.dev/gemini-api/docs/rate-limits"}]}'
)

_GEMINI_QUOTA_MSG_HEAD = (
    b"You exceeded your current quota, please check your plan and billing details. For more information on this "
    b"error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, head to: "
    b"https://ai.dev/usage?tab=rate-limit. \\n* Quota exceeded for metric: "
    b"generativelanguage.googleapis.com/generate_content_free_tier_requests, "
)

_GEMINI_KEY_INVALID_ERROR = (
    b'{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT",'
    b'"details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID",'
    b'"domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}},'
    b'{"@type":"type.googleapis.com/google.rpc.LocalizedMessage","locale":"en-US",'
    b'"message":"API key not valid. Please pass a valid API key."}]}}'
)

_OPENAI_QUOTA_MSG = (
    b"You exceeded your current quota, please check your plan and billing details. For more information on this "
    b"error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors."
)

_OPENAI_RPM_MSG_HEAD = (
    b"Rate limit reached for gpt-4o-mini in organization org-3bHkQ0cFpl2UdTaXfCmIqJ7R on requests per min (RPM): "
    b"Limit 3, Used 3, Requested 1. Please try again in "
)
_OPENAI_RPM_MSG_TAIL = b". Visit https://platform.openai.com/account/rate-limits to learn more."

_GROQ_ORG = b"`org_01hx6c2yq8fj7tm1v0r5w3k9ab`"


ERROR_CASES: list[ErrorCase] = [
    # ============================================ OpenAI ============================================
    ErrorCase(
        id="openai-429-insufficient-quota",
        flavor="openai",
        status=429,
        body=(
            b'{"error":{"message":"' + _OPENAI_QUOTA_MSG + b'","type":"insufficient_quota","param":null,'
            b'"code":"insufficient_quota"}}'
        ),
        expect="quota_exhausted",
        source=(
            "U: https://github.com/mattvr/ShellGPT/issues/23, "
            "https://github.com/ztjhz/BetterChatGPT/discussions/494 (PROVIDERS.md §1)"
        ),
    ),
    ErrorCase(
        id="openai-429-credit-balance-exhausted",
        flavor="openai",
        status=429,
        body=(
            b'{"error":{"message":"You have no credits remaining.","type":"insufficient_quota","param":null,'
            b'"code":"credit_balance_exhausted"}}'
        ),
        expect="quota_exhausted",
        source=(
            "U: https://dev.to/sublynow/your-openai-api-429-is-not-always-a-rate-limit-reading-insufficientquota-by-"
            "errorcode-1mbl; param:null assumed as in the classic body (?)"
        ),
    ),
    ErrorCase(
        id="openai-429-organization-spend-limit-exceeded",
        flavor="openai",
        status=429,
        body=(
            b'{"error":{"message":"You have no credits remaining.","type":"insufficient_quota","param":null,'
            b'"code":"organization_spend_limit_exceeded"}}'
        ),
        expect="quota_exhausted",
        source=(
            "U: https://dev.to/sublynow/your-openai-api-429-is-not-always-a-rate-limit-reading-insufficientquota-by-"
            "errorcode-1mbl; message reused from the credit variant (?)"
        ),
    ),
    ErrorCase(
        id="openai-429-project-spend-limit-exceeded",
        flavor="openai",
        status=429,
        body=(
            b'{"error":{"message":"You have no credits remaining.","type":"insufficient_quota","param":null,'
            b'"code":"project_spend_limit_exceeded"}}'
        ),
        expect="quota_exhausted",
        source=(
            "U: https://dev.to/sublynow/your-openai-api-429-is-not-always-a-rate-limit-reading-insufficientquota-by-"
            "errorcode-1mbl; message reused from the credit variant (?)"
        ),
    ),
    ErrorCase(
        id="openai-429-organization-usage-limit-exceeded",
        flavor="openai",
        status=429,
        body=(
            b'{"error":{"message":"You have no credits remaining.","type":"insufficient_quota","param":null,'
            b'"code":"organization_usage_limit_exceeded"}}'
        ),
        expect="quota_exhausted",
        source=(
            "U: https://dev.to/sublynow/your-openai-api-429-is-not-always-a-rate-limit-reading-insufficientquota-by-"
            "errorcode-1mbl; message reused from the credit variant (?)"
        ),
    ),
    ErrorCase(
        id="openai-429-insufficient-quota-code-null",
        flavor="openai",
        status=429,
        body=(
            b'{"error":{"message":"' + _OPENAI_QUOTA_MSG + b'","type":"insufficient_quota","param":null,"code":null}}'
        ),
        expect="quota_exhausted",
        source="U: https://huggingface.co/spaces/microsoft/HuggingGPT/discussions/5 (older responses had code: null)",
    ),
    ErrorCase(
        id="openai-429-rpm-message-hint",
        flavor="openai",
        status=429,
        body=(
            b'{"error":{"message":"'
            + _OPENAI_RPM_MSG_HEAD
            + b"20s"
            + _OPENAI_RPM_MSG_TAIL
            + b'","type":"requests","param":null,"code":"rate_limit_exceeded"}}'
        ),
        expect="rate_limited",
        retry_after_s=20.0,
        source=(
            "U: https://github.com/SevaSk/ecoute/issues/194; org id 'org-…' filled with a plausible value; "
            "no headers, hint only in the message"
        ),
    ),
    ErrorCase(
        id="openai-429-rpm-x-ratelimit-reset",
        flavor="openai",
        status=429,
        body=(
            b'{"error":{"message":"'
            + _OPENAI_RPM_MSG_HEAD
            + b"6m0s"
            + _OPENAI_RPM_MSG_TAIL
            + b'","type":"requests","param":null,"code":"rate_limit_exceeded"}}'
        ),
        expect="rate_limited",
        headers={"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "6m0s"},
        retry_after_s=360.0,
        source=(
            "U: https://github.com/SevaSk/ecoute/issues/194 body; D: x-ratelimit-* headers (rate-limits guide, "
            "Go durations); wait in message changed to 6m0s to match the header (?)"
        ),
    ),
    ErrorCase(
        id="openai-429-rpm-retry-after-ms",
        flavor="openai",
        status=429,
        body=(
            b'{"error":{"message":"'
            + _OPENAI_RPM_MSG_HEAD
            + b"1.5s"
            + _OPENAI_RPM_MSG_TAIL
            + b'","type":"requests","param":null,"code":"rate_limit_exceeded"}}'
        ),
        expect="rate_limited",
        headers={"retry-after-ms": "1500"},
        retry_after_s=1.5,
        source=(
            "U: https://github.com/SevaSk/ecoute/issues/194 body; retry-after-ms on OpenAI 429s is ? (honoured by "
            "openai-python _base_client.py, D); wait in message changed to 1.5s to match"
        ),
    ),
    ErrorCase(
        id="openai-429-rpm-retry-after",
        flavor="openai",
        status=429,
        body=(
            b'{"error":{"message":"'
            + _OPENAI_RPM_MSG_HEAD
            + b"7s"
            + _OPENAI_RPM_MSG_TAIL
            + b'","type":"requests","param":null,"code":"rate_limit_exceeded"}}'
        ),
        expect="rate_limited",
        headers={"retry-after": "7"},
        retry_after_s=7.0,
        source=(
            "U: https://github.com/SevaSk/ecoute/issues/194 body; retry-after on OpenAI 429s is ? (honoured by "
            "openai-python _base_client.py, D); wait in message changed to 7s to match"
        ),
    ),
    ErrorCase(
        id="openai-429-tpm-request-too-large",
        flavor="openai",
        status=429,
        body=(
            b'{"error":{"message":"Request too large for gpt-4o in organization org-3bHkQ0cFpl2UdTaXfCmIqJ7R on tokens '
            b"per min (TPM): Limit 30000, Requested 200002. The input or output tokens must be reduced in order to run "
            b'successfully. Visit https://platform.openai.com/account/rate-limits to learn more.","type":"tokens",'
            b'"param":null,"code":"rate_limit_exceeded"}}'
        ),
        expect="rate_limited",
        bench=False,
        source=(
            "R: cassettes/clients/openai_test_rb/test_throws_rate_limit_error.yml; org id and message tail after "
            "'Requested 200002.' filled in (?); no retry-after header, as recorded"
        ),
    ),
    ErrorCase(
        id="openai-401-invalid-api-key",
        flavor="openai",
        status=401,
        body=(
            b'{"error":{"message":"Incorrect API key provided: sk-test1**********************5678. You can find your '
            b'API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,'
            b'"code":"invalid_api_key"}}'
        ),
        expect="auth",
        source="R: cassettes/clients/openai_test_rb/test_throws_authentication_error.yml; masked key 'sk-…' filled (?)",
    ),
    ErrorCase(
        id="openai-404-model-not-found",
        flavor="openai",
        status=404,
        body=(
            b'{"error":{"message":"The model `randomodel` does not exist or you do not have access to it.",'
            b'"type":"invalid_request_error","param":null,"code":"model_not_found"}}'
        ),
        expect="model_not_found",
        source="R: cassettes/clients/openai_test_rb/test_throws_not_found_error.yml",
    ),
    ErrorCase(
        id="openai-400-invalid-type",
        flavor="openai",
        status=400,
        body=(
            b'{"error":{"message":"Invalid type for \'messages[0]\': expected an object, but got a string instead.",'
            b'"type":"invalid_request_error","param":"messages[0]","code":"invalid_type"}}'
        ),
        expect="caller_fault",
        source="R: cassettes/clients/openai_test_rb/test_throws_bad_request_error.yml",
    ),
    ErrorCase(
        id="openai-400-context-length-exceeded",
        flavor="openai",
        status=400,
        body=(
            b'{"error":{"message":"This model\'s maximum context length is 8192 tokens. However, your messages '
            b'resulted in 8227 tokens. Please reduce the length of the messages.","type":"invalid_request_error",'
            b'"param":"messages","code":"context_length_exceeded"}}'
        ),
        expect="caller_fault",
        source=(
            "U: https://github.com/crewAIInc/crewAI-examples/issues/121, "
            "https://github.com/chathub-dev/chathub/issues/126"
        ),
    ),
    ErrorCase(
        id="openai-500-server-error",
        flavor="openai",
        status=500,
        body=(
            b'{"error":{"message":"The server had an error processing your request. Sorry about that! You can retry '
            b"your request, or contact us through our help center at help.openai.com if you keep seeing this error. "
            b'(Please include the request ID req_5f2b1c3d9e8a4b7c6d0e1f2a3b4c5d6e in your email.)",'
            b'"type":"server_error","param":null,"code":null}}'
        ),
        expect="transient",
        source=(
            "U: https://github.com/openai/openai-cua-sample-app/issues/54, https://github.com/LlmKira/Openaibot/"
            "issues/177; request id '…' filled (?)"
        ),
    ),
    ErrorCase(
        id="openai-503-overloaded",
        flavor="openai",
        status=503,
        body=(
            b'{"error":{"message":"That model is currently overloaded with other requests. You can retry your request, '
            b"or contact us through our help center at help.openai.com if the error persists. (Please include the "
            b'request ID req_0a1b2c3d4e5f60718293a4b5c6d7e8f9 in your message.)","type":"server_error","param":null,'
            b'"code":null}}'
        ),
        expect="transient",
        source=(
            "U: https://github.com/waylaidwanderer/node-chatgpt-api/issues/34, https://github.com/openai/openai-python/"
            "issues/414; request id '…' filled (?)"
        ),
    ),
    ErrorCase(
        id="openai-502-cloudflare-html",
        flavor="openai",
        status=502,
        body=(
            b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
            b"</center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n"
        ),
        expect="transient",
        headers={"content-type": "text/html", "server": "cloudflare"},
        source=(
            "?: PROVIDERS.md §8, edge errors come as a Cloudflare-style HTML page; page text is plausible, not recorded"
        ),
    ),
    # ============================================= Groq =============================================
    ErrorCase(
        id="groq-401-invalid-api-key",
        flavor="groq",
        status=401,
        body=b'{"error":{"message":"Invalid API Key","type":"invalid_request_error","code":"invalid_api_key"}}',
        expect="auth",
        source="R: cassettes/clients/groq_test_rb/test_throws_authentication_error.yml",
    ),
    ErrorCase(
        id="groq-404-model-not-found",
        flavor="groq",
        status=404,
        body=(
            b'{"error":{"message":"The model `randomodel` does not exist or you do not have access to it.",'
            b'"type":"invalid_request_error","code":"model_not_found"}}'
        ),
        expect="model_not_found",
        source="R: cassettes/clients/groq_test_rb/test_throws_not_found_error.yml",
    ),
    ErrorCase(
        id="groq-400-bad-request",
        flavor="groq",
        status=400,
        body=(
            b'{"error":{"message":"\'messages.0\' : value must be an object with the discriminator property: \'role\'",'
            b'"type":"invalid_request_error"}}'
        ),
        expect="caller_fault",
        source="R: cassettes/clients/groq_test_rb/test_throws_bad_request_error.yml (no code)",
    ),
    ErrorCase(
        id="groq-400-context-length",
        flavor="groq",
        status=400,
        body=(
            b'{"error":{"message":"Please reduce the length of the messages or completion.",'
            b'"type":"invalid_request_error","param":"messages"}}'
        ),
        expect="caller_fault",
        source=(
            "R: cassettes/live/prompt_too_long_test_rb/test_live_prompt_too_long_groq_completions_openai/"
            "gpt-oss-120b.yml (no code)"
        ),
    ),
    ErrorCase(
        id="groq-429-tpm",
        flavor="groq",
        status=429,
        body=(
            b'{"error":{"message":"Rate limit reached for model `openai/gpt-oss-20b` in organization '
            + _GROQ_ORG
            + b" service tier `on_demand` on tokens per minute (TPM): Limit 8000, Used 5536, Requested 5599. Please "
            b"try again in 23.5125s. Need more tokens? Upgrade to Dev Tier today at "
            b'https://console.groq.com/settings/billing","type":"tokens","code":"rate_limit_exceeded"}}'
        ),
        expect="rate_limited",
        headers={"retry-after": "24"},
        retry_after_s=24.0,
        source="U: quoted in public code (PROVIDERS.md §2); org id 'org_…' filled (?); retry-after header wins",
    ),
    ErrorCase(
        id="groq-429-rpd-daily-quota",
        flavor="groq",
        status=429,
        body=(
            b'{"error":{"message":"Rate limit reached for model `llama-3.3-70b-versatile` in organization '
            + _GROQ_ORG
            + b" service tier `on_demand` on requests per day (RPD): Limit 1000, Used 1000, Requested 1. Please try "
            b"again in 39m59.9s. Need more requests? Upgrade to Dev Tier today at "
            b'https://console.groq.com/settings/billing","type":"requests","code":"rate_limit_exceeded"}}'
        ),
        expect="daily_limit",
        headers={"retry-after": "2400"},
        retry_after_s=2400.0,
        source=(
            "U: same shape as TPM, '… on requests per day (RPD)' (PROVIDERS.md §2); numbers and org id plausible (?)"
        ),
    ),
    ErrorCase(
        id="groq-429-tpd-daily-quota",
        flavor="groq",
        status=429,
        body=(
            b'{"error":{"message":"Rate limit reached for model `llama-3.3-70b-versatile` in organization '
            + _GROQ_ORG
            + b" service tier `on_demand` on tokens per day (TPD): Limit 100000, Used 99654, Requested 1200. Please "
            b"try again in 9m59.8s. Need more tokens? Upgrade to Dev Tier today at "
            b'https://console.groq.com/settings/billing","type":"tokens","code":"rate_limit_exceeded"}}'
        ),
        expect="daily_limit",
        headers={"retry-after": "600"},
        retry_after_s=600.0,
        source="U: same shape as TPM, '… tokens per day (TPD)' (PROVIDERS.md §2); numbers and org id plausible (?)",
    ),
    ErrorCase(
        id="groq-413-request-too-large",
        flavor="groq",
        status=413,
        body=(
            b'{"error":{"message":"Request too large for model `llama-3.3-70b-versatile` in organization '
            + _GROQ_ORG
            + b" service tier `on_demand` on tokens per minute (TPM): Limit 8000, Requested 9000, please reduce your "
            b"message size and try again. Need more tokens? Upgrade to Dev Tier today at "
            b'https://console.groq.com/settings/billing","type":"tokens","code":"rate_limit_exceeded"}}'
        ),
        expect="rate_limited",
        bench=False,
        source=(
            "U: PROVIDERS.md §2 (message quoted); model/org filled, envelope type/code and 'Need more tokens' tail "
            "assumed from the 429 shape (?)"
        ),
    ),
    ErrorCase(
        id="groq-400-organization-restricted",
        flavor="groq",
        status=400,
        body=(
            b'{"error":{"message":"Organization has been restricted. Please reach out to support if you believe this '
            b'was in error.","type":"invalid_request_error","code":"organization_restricted"}}'
        ),
        expect="quota_exhausted",
        source="U (through a proxy): https://github.com/songquanpeng/one-api/issues/1764",
    ),
    ErrorCase(
        id="groq-500-internal",
        flavor="groq",
        status=500,
        body=b'{"error":{"message":"Internal Server Error","type":"internal_server_error"}}',
        expect="transient",
        source="D: status only (console.groq.com/docs/errors); body wording ? (plausible OpenAI-shaped)",
    ),
    ErrorCase(
        id="groq-503-unavailable",
        flavor="groq",
        status=503,
        body=(
            b'{"error":{"message":"Service Unavailable. The server is temporarily overloaded, please try again later.",'
            b'"type":"internal_server_error"}}'
        ),
        expect="transient",
        source="D: status only (console.groq.com/docs/errors); body wording ? (plausible OpenAI-shaped)",
    ),
    ErrorCase(
        id="groq-498-flex-capacity",
        flavor="groq",
        status=498,
        body=(
            b'{"error":{"message":"Flex tier capacity exceeded. Please try again later.","type":"server_error",'
            b'"code":"flex_tier_capacity_exceeded"}}'
        ),
        expect="transient",
        source="D: status 498 = flex tier capacity exceeded (console.groq.com/docs/errors); body wording ?",
    ),
    # ============================================ Gemini ============================================
    ErrorCase(
        id="gemini-429-list-resource-exhausted",
        flavor="gemini",
        status=429,
        body=(
            b'[{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).",'
            b'"status":"RESOURCE_EXHAUSTED"}}]'
        ),
        expect="rate_limited",
        source="U: https://github.com/n4ze3m/page-assist/issues/406 (curl to /v1beta/openai/chat/completions)",
    ),
    ErrorCase(
        id="gemini-429-per-minute-quota",
        flavor="gemini",
        status=429,
        body=(
            b'{"error":{"code":429,"message":"'
            + _GEMINI_QUOTA_MSG_HEAD
            + b'limit: 15, model: gemini-2.0-flash\\nPlease retry in 37s.","status":"RESOURCE_EXHAUSTED",'
            b'"details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{'
            b'"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests",'
            b'"quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier",'
            b'"quotaDimensions":{"location":"global","model":"gemini-2.0-flash"},"quotaValue":"15"}]},'
            + _GEMINI_HELP
            + b',{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"37s"}]}}'
        ),
        expect="rate_limited",
        retry_after_s=37.0,
        source=(
            "U: https://github.com/continuedev/continue/issues/10062, https://github.com/google-gemini/gemini-cli/"
            "issues/22486; dict envelope; limit/quotaValue/retry values plausible (?), message wait rounded to 37s"
        ),
    ),
    ErrorCase(
        id="gemini-429-per-day-quota",
        flavor="gemini",
        status=429,
        body=(
            b'[{"error":{"code":429,"message":"'
            + _GEMINI_QUOTA_MSG_HEAD
            + b'limit: 200, model: gemini-2.0-flash\\nPlease retry in 59.462415998s.","status":"RESOURCE_EXHAUSTED",'
            b'"details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{'
            b'"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests",'
            b'"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier",'
            b'"quotaDimensions":{"location":"global","model":"gemini-2.0-flash"},"quotaValue":"200"}]},'
            + _GEMINI_HELP
            + b',{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"59s"}]}}]'
        ),
        expect="daily_limit",
        source=(
            "U: https://github.com/continuedev/continue/issues/12643, https://github.com/llmsresearch/paperbanana/"
            "issues/10; list envelope; per-day retryDelay 59s deliberately not trusted; limit value plausible (?)"
        ),
    ),
    ErrorCase(
        id="gemini-429-free-tier-limit-0",
        flavor="gemini",
        status=429,
        body=(
            b'{"error":{"code":429,"message":"'
            + _GEMINI_QUOTA_MSG_HEAD
            + b'limit: 0, model: gemini-2.5-pro\\nPlease retry in 20.04466179s.","status":"RESOURCE_EXHAUSTED",'
            b'"details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{'
            b'"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests",'
            b'"quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier",'
            b'"quotaDimensions":{"location":"global","model":"gemini-2.5-pro"},"quotaValue":"0"}]},'
            + _GEMINI_HELP
            + b',{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"20s"}]}}'
        ),
        expect="quota_exhausted",
        source=(
            "U: https://github.com/continuedev/continue/issues/10062 (message quoted in PROVIDERS.md §3); limit: 0 = "
            "tier has no access, so no hint; '…' parts of the message and the details filled (?)"
        ),
    ),
    ErrorCase(
        id="gemini-402-prepaid-credit-depleted",
        flavor="gemini",
        status=402,
        body=(
            b'{"error":{"code":402,"message":"Your prepaid credits have been depleted. Please add credits to your '
            b'billing account to continue using the API.","status":"RESOURCE_EXHAUSTED"}}'
        ),
        expect="quota_exhausted",
        source=(
            "D: https://ai.google.dev/gemini-api/docs/generate-content/api-errors (402 RESOURCE_EXHAUSTED), "
            "https://www.developersdigest.tech/errors/api/gemini-api/402-resource-exhausted; message wording ?"
        ),
    ),
    ErrorCase(
        id="gemini-400-api-key-invalid-list",
        flavor="gemini",
        status=400,
        body=b"[" + _GEMINI_KEY_INVALID_ERROR + b"]",
        expect="auth",
        source=(
            "U: https://github.com/continuedev/continue/issues/8516; LocalizedMessage text '…' filled with the "
            "top-level message (?)"
        ),
    ),
    ErrorCase(
        id="gemini-400-api-key-invalid-dict",
        flavor="gemini",
        status=400,
        body=_GEMINI_KEY_INVALID_ERROR,
        expect="auth",
        source="U: https://github.com/google-gemini/gemini-cli/issues/5191 (plain-object envelope) + #8516 body",
    ),
    ErrorCase(
        id="gemini-403-permission-denied",
        flavor="gemini",
        status=403,
        body=(
            b'{"error":{"code":403,"message":"Generative Language API has not been used in project 123456789012 '
            b"before or it is disabled. Enable it by visiting https://console.developers.google.com/apis/api/"
            b"generativelanguage.googleapis.com/overview?project=123456789012 then retry. If you enabled this API "
            b'recently, wait a few minutes for the action to propagate to our systems and retry.",'
            b'"status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo",'
            b'"reason":"SERVICE_DISABLED","domain":"googleapis.com","metadata":{"consumer":"projects/123456789012",'
            b'"service":"generativelanguage.googleapis.com"}},{"@type":"type.googleapis.com/google.rpc.Help",'
            b'"links":[{"description":"Google developers console API activation",'
            b'"url":"https://console.developers.google.com/apis/api/generativelanguage.googleapis.com/overview?'
            b'project=123456789012"}]}]}}'
        ),
        expect="auth",
        source="D: status table (403 PERMISSION_DENIED); message and details are a plausible SERVICE_DISABLED body (?)",
    ),
    ErrorCase(
        id="gemini-400-location-not-supported",
        flavor="gemini",
        status=400,
        body=(
            b'{"error":{"code":400,"message":"User location is not supported for the API use.",'
            b'"status":"FAILED_PRECONDITION"}}'
        ),
        expect="auth",
        source="D: status table (400 FAILED_PRECONDITION, region); message text commonly reported, details omitted (?)",
    ),
    ErrorCase(
        id="gemini-400-invalid-argument",
        flavor="gemini",
        status=400,
        body=(
            b'{"error":{"code":400,"message":"Invalid JSON payload received. Unknown name \\"foo\\": Cannot find '
            b'field.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest",'
            b'"fieldViolations":[{"description":"Invalid JSON payload received. Unknown name \\"foo\\": Cannot find '
            b'field."}]}]}}'
        ),
        expect="caller_fault",
        source="D: status table (400 INVALID_ARGUMENT); message and BadRequest details plausible (?)",
    ),
    ErrorCase(
        id="gemini-404-not-found",
        flavor="gemini",
        status=404,
        body=(
            b'{"error":{"code":404,"message":"models/gemini-9.9-flash is not found for API version v1beta, or is not '
            b"supported for generateContent. Call ListModels to see the list of available models and their supported "
            b'methods.","status":"NOT_FOUND"}}'
        ),
        expect="model_not_found",
        source="D: status table (404 NOT_FOUND); message wording plausible (?)",
    ),
    ErrorCase(
        id="gemini-500-internal",
        flavor="gemini",
        status=500,
        body=(
            b'{"error":{"code":500,"message":"An internal error has occurred. Please retry or report in '
            b'https://developers.generativeai.google/guide/troubleshooting","status":"INTERNAL"}}'
        ),
        expect="transient",
        source="D: status table (500 INTERNAL); message text ? (PROVIDERS.md §8)",
    ),
    ErrorCase(
        id="gemini-503-overloaded",
        flavor="gemini",
        status=503,
        body=(
            b'{"error":{"code":503,"message":"The model is overloaded. Please try again later.",'
            b'"status":"UNAVAILABLE"}}'
        ),
        expect="transient",
        source="U: https://github.com/google-gemini/gemini-cli/issues/5191",
    ),
    ErrorCase(
        id="gemini-503-high-demand",
        flavor="gemini",
        status=503,
        body=(
            b'{"error":{"code":503,"message":"This model is currently experiencing high demand. Spikes in demand are '
            b'usually temporary. Please try again later.","status":"UNAVAILABLE"}}'
        ),
        expect="transient",
        source="U: https://github.com/continuedev/continue/issues/10639 (newer message); envelope as the 503 above",
    ),
    ErrorCase(
        id="gemini-504-deadline-exceeded",
        flavor="gemini",
        status=504,
        body=(
            b'{"error":{"code":504,"message":"Deadline expired before operation could complete.",'
            b'"status":"DEADLINE_EXCEEDED"}}'
        ),
        expect="transient",
        source="D: status table (504 DEADLINE_EXCEEDED); message wording plausible (?)",
    ),
    # =========================================== DeepSeek ===========================================
    ErrorCase(
        id="deepseek-402-insufficient-balance",
        flavor="deepseek",
        status=402,
        body=(
            b'{"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,'
            b'"code":"invalid_request_error"}}'
        ),
        expect="quota_exhausted",
        source=(
            "U: https://github.com/yueguobin/gns3-copilot/issues/93, https://github.com/continuedev/continue/issues/"
            "9942; type/code values ? (from fixtures in public code)"
        ),
    ),
    ErrorCase(
        id="deepseek-401-authentication-fails",
        flavor="deepseek",
        status=401,
        body=(
            b'{"error":{"message":"Authentication Fails, Your api key: ****abcd is invalid",'
            b'"type":"authentication_error","param":null,"code":"invalid_request_error"}}'
        ),
        expect="auth",
        source="U: quoted in public logs and repos (PROVIDERS.md §4)",
    ),
    ErrorCase(
        id="deepseek-400-context-length",
        flavor="deepseek",
        status=400,
        body=(
            b'{"error":{"message":"This model\'s maximum context length is 131072 tokens. However, you requested '
            b"131134 tokens (122942 in the messages, 8192 in the completion). Please reduce the length of the "
            b'messages or completion.","type":"invalid_request_error","param":null,"code":"invalid_request_error"}}'
        ),
        expect="caller_fault",
        source="U: https://github.com/evalstate/fast-agent/issues/621",
    ),
    ErrorCase(
        id="deepseek-400-model-not-exist",
        flavor="deepseek",
        status=400,
        body=b'{"error":{"message":"Model Not Exist","type":"invalid_request_error"}}',
        expect="model_not_found",
        source="U: PROVIDERS.md §4 (most reports say 400)",
    ),
    ErrorCase(
        id="deepseek-404-model-not-exist",
        flavor="deepseek",
        status=404,
        body=b'{"error":{"message":"Model Not Exist","type":"invalid_request_error"}}',
        expect="model_not_found",
        source="?: PROVIDERS.md §4/§8, one report says 404 for Model Not Exist",
    ),
    ErrorCase(
        id="deepseek-422-invalid-parameters",
        flavor="deepseek",
        status=422,
        body=(
            b'{"error":{"message":"Failed to deserialize the JSON body into the target type: messages[0]: missing '
            b'field `content` at line 1 column 40","type":"invalid_request_error","param":null,'
            b'"code":"invalid_request_error"}}'
        ),
        expect="caller_fault",
        source="D: https://api-docs.deepseek.com/quick_start/error_codes (422 Invalid Parameters); body wording ?",
    ),
    ErrorCase(
        id="deepseek-429-rate-limit",
        flavor="deepseek",
        status=429,
        body=b'{"error":{"message":"Rate Limit Reached","type":"rate_limit_error","param":null,"code":null}}',
        expect="rate_limited",
        source="D: error_codes (429 Rate Limit Reached), no rate-limit headers; body wording ? (PROVIDERS.md §8)",
    ),
    ErrorCase(
        id="deepseek-500-server-error",
        flavor="deepseek",
        status=500,
        body=b'{"error":{"message":"Server Error","type":"server_error","param":null,"code":null}}',
        expect="transient",
        source="D: error_codes (500 Server Error); body wording ? (PROVIDERS.md §8)",
    ),
    ErrorCase(
        id="deepseek-503-server-overloaded",
        flavor="deepseek",
        status=503,
        body=b'{"error":{"message":"Server Overloaded","type":"server_error","param":null,"code":null}}',
        expect="transient",
        source="D: error_codes (503 Server Overloaded); body wording ? (PROVIDERS.md §8)",
    ),
    # ============================================ Ollama ============================================
    ErrorCase(
        id="ollama-404-model-not-found",
        flavor="ollama",
        status=404,
        body=(
            b'{"error":{"message":"model \\"llama9\\" not found, try pulling it first","type":"not_found_error",'
            b'"param":null,"code":null}}'
        ),
        expect="model_not_found",
        source="D: ollama/ollama openai/openai.go NewError + server/routes.go (fmt %q quoting)",
    ),
    ErrorCase(
        id="ollama-404-model-not-found-api-error",
        flavor="ollama",
        status=404,
        body=(
            b'{"error":{"message":"model \\"llama9\\" not found, try pulling it first","type":"api_error",'
            b'"param":null,"code":null}}'
        ),
        expect="model_not_found",
        source="D: ollama/ollama openai/openai.go, older releases used api_error for 404",
    ),
    ErrorCase(
        id="ollama-503-server-busy",
        flavor="ollama",
        status=503,
        body=(
            b'{"error":{"message":"server busy, please try again.  maximum pending requests exceeded",'
            b'"type":"api_error","param":null,"code":null}}'
        ),
        expect="rate_limited",
        source="D: ollama/ollama server/sched.go (queue full, two spaces) wrapped by openai.NewError",
    ),
    ErrorCase(
        id="ollama-400-messages-too-short",
        flavor="ollama",
        status=400,
        body=(
            b'{"error":{"message":"[] is too short - \'messages\'","type":"invalid_request_error","param":null,'
            b'"code":null}}'
        ),
        expect="caller_fault",
        source="D: ollama/ollama middleware/openai.go (missing messages) wrapped by openai.NewError",
    ),
    ErrorCase(
        id="ollama-500-api-error",
        flavor="ollama",
        status=500,
        body=(
            b'{"error":{"message":"llama runner process has terminated: exit status 2","type":"api_error",'
            b'"param":null,"code":null}}'
        ),
        expect="transient",
        source="D: openai.NewError envelope (api_error for non-400/404); message wording plausible (?)",
    ),
]


# --------------------------------------------------------------------------------------------------
# Success bodies for the fake upstreams.
# --------------------------------------------------------------------------------------------------

# Non-streaming chat.completion, one per flavor.
# openai: U community.openai.com curl capture + newer service_tier/usage details (PROVIDERS.md §1).
# groq: R cassettes/gateway_test_rb/test_groq_simple_message_without_tools.yml (ids/fingerprint filled, ?).
# gemini: U alphabetical keys, Google-style id, no system_fingerprint (PROVIDERS.md §3).
# deepseek: OpenAI shape + prompt_cache_hit/miss_tokens (D); id/fingerprint values plausible (?).
# ollama: D ollama/ollama openai/openai.go ChatCompletion (field order from the Go struct).
CHAT_OK: dict[str, bytes] = {
    "openai": (
        b'{"id":"chatcmpl-C4nVqSg0bHnEeWLZh3oRtJ8mKXyPa","object":"chat.completion","created":1755000000,'
        b'"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant",'
        b'"content":"Hello from openai","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],'
        b'"usage":{"prompt_tokens":13,"completion_tokens":5,"total_tokens":18,'
        b'"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},'
        b'"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,'
        b'"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_34a54ae93c"}'
    ),
    "groq": (
        b'{"id":"chatcmpl-5f0c7e2a-3b1d-4c8e-9a6f-2d4b8e1c7a90","object":"chat.completion","created":1755000001,'
        b'"model":"llama-3.3-70b-versatile","choices":[{"index":0,"message":{"role":"assistant",'
        b'"content":"Hello from groq"},"logprobs":null,"finish_reason":"stop"}],"usage":{"queue_time":0.044,'
        b'"prompt_tokens":55,"prompt_time":0.011,"completion_tokens":11,"completion_time":0.031,"total_tokens":66,'
        b'"total_time":0.043},"usage_breakdown":null,"system_fingerprint":"fp_9a8b91ba77",'
        b'"x_groq":{"id":"req_01k2f8qz7bfw0s9y3c4d5e6g7h"},"service_tier":"on_demand"}'
    ),
    "gemini": (
        b'{"choices":[{"finish_reason":"stop","index":0,"message":{"content":"Hello from gemini","role":"assistant"}}],'
        b'"created":1766470234,"id":"WTJKadyrE5y7juMPkaCRKQ","model":"gemini-2.0-flash","object":"chat.completion",'
        b'"usage":{"completion_tokens":22,"prompt_tokens":46,"total_tokens":68}}'
    ),
    "deepseek": (
        b'{"id":"930c60df-bf64-41c9-a88e-3ec75f81e00e","object":"chat.completion","created":1755000002,'
        b'"model":"deepseek-chat","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from deepseek"},'
        b'"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":11,"completion_tokens":4,'
        b'"total_tokens":15,"prompt_tokens_details":{"cached_tokens":0},"prompt_cache_hit_tokens":0,'
        b'"prompt_cache_miss_tokens":11},"system_fingerprint":"fp_8802369eaa_prod0425fp8"}'
    ),
    "ollama": (
        b'{"id":"chatcmpl-417","object":"chat.completion","created":1755000003,"model":"llama3.2:latest",'
        b'"system_fingerprint":"fp_ollama","choices":[{"index":0,"message":{"role":"assistant",'
        b'"content":"Hello from ollama"},"finish_reason":"stop"}],"usage":{"prompt_tokens":27,"completion_tokens":4,'
        b'"total_tokens":31}}'
    ),
}


# Streamed answers with stream_options.include_usage=true. One list item = one complete SSE event.
# openai: R cassettes/live/stream_text_test_rb/...openai_apikey_completions_gpt-5_1.yml + D include_usage docs
#   (usage:null on every chunk, obfuscation padding, delta {} finish chunk, then choices [] usage chunk).
# groq: R cassettes/live/stream_text_test_rb/...groq_completions_openai/gpt-oss-120b.yml (x_groq {id,seed} on the
#   first chunk, x_groq.usage + usage on the finish chunk, then a choices [] usage chunk).
# gemini: ? exact usage chunk unconfirmed (PROVIDERS.md §3/§8). Modelled with alphabetical keys and usage on the
#   last content chunk (which carries finish_reason), i.e. NO separate choices [] chunk (envoyproxy/ai-gateway#1503).
# deepseek: ? modelled on OpenAI (role chunk, content, finish, choices [] usage chunk with cache-hit fields).
# ollama: D ollama/ollama openai/openai.go ToChunk + middleware/openai.go (role on every delta, no usage key
#   except on the final choices [] chunk).
STREAM_OK: dict[str, list[bytes]] = {
    "openai": [
        b'data: {"id":"chatcmpl-C4nW1kQm8ZrTfYx2bVd9LpEaHs7Ug","object":"chat.completion.chunk","created":1755000010,'
        b'"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_34a54ae93c",'
        b'"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,'
        b'"finish_reason":null}],"usage":null,"obfuscation":"Qx8Yz2"}\n\n',
        b'data: {"id":"chatcmpl-C4nW1kQm8ZrTfYx2bVd9LpEaHs7Ug","object":"chat.completion.chunk","created":1755000010,'
        b'"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_34a54ae93c",'
        b'"choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null,'
        b'"obfuscation":"p4"}\n\n',
        b'data: {"id":"chatcmpl-C4nW1kQm8ZrTfYx2bVd9LpEaHs7Ug","object":"chat.completion.chunk","created":1755000010,'
        b'"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_34a54ae93c",'
        b'"choices":[{"index":0,"delta":{"content":" from"},"logprobs":null,"finish_reason":null}],"usage":null,'
        b'"obfuscation":"Kd3"}\n\n',
        b'data: {"id":"chatcmpl-C4nW1kQm8ZrTfYx2bVd9LpEaHs7Ug","object":"chat.completion.chunk","created":1755000010,'
        b'"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_34a54ae93c",'
        b'"choices":[{"index":0,"delta":{"content":" openai"},"logprobs":null,"finish_reason":null}],"usage":null,'
        b'"obfuscation":"m"}\n\n',
        b'data: {"id":"chatcmpl-C4nW1kQm8ZrTfYx2bVd9LpEaHs7Ug","object":"chat.completion.chunk","created":1755000010,'
        b'"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_34a54ae93c",'
        b'"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null,'
        b'"obfuscation":"Zb7Rw"}\n\n',
        b'data: {"id":"chatcmpl-C4nW1kQm8ZrTfYx2bVd9LpEaHs7Ug","object":"chat.completion.chunk","created":1755000010,'
        b'"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_34a54ae93c",'
        b'"choices":[],"usage":{"prompt_tokens":13,"completion_tokens":5,"total_tokens":18,'
        b'"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},'
        b'"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,'
        b'"rejected_prediction_tokens":0}},"obfuscation":"u0TcJ"}\n\n',
        b"data: [DONE]\n\n",
    ],
    "groq": [
        b'data: {"id":"chatcmpl-8c1e4b7a-2f3d-4e5a-9b6c-7d8e9f0a1b2c","object":"chat.completion.chunk",'
        b'"created":1755000011,"model":"llama-3.3-70b-versatile","system_fingerprint":"fp_9a8b91ba77",'
        b'"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],'
        b'"x_groq":{"id":"req_01k2f9a0b1c2d3e4f5g6h7j8k9","seed":1234567890}}\n\n',
        b'data: {"id":"chatcmpl-8c1e4b7a-2f3d-4e5a-9b6c-7d8e9f0a1b2c","object":"chat.completion.chunk",'
        b'"created":1755000011,"model":"llama-3.3-70b-versatile","system_fingerprint":"fp_9a8b91ba77",'
        b'"choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}]}\n\n',
        b'data: {"id":"chatcmpl-8c1e4b7a-2f3d-4e5a-9b6c-7d8e9f0a1b2c","object":"chat.completion.chunk",'
        b'"created":1755000011,"model":"llama-3.3-70b-versatile","system_fingerprint":"fp_9a8b91ba77",'
        b'"choices":[{"index":0,"delta":{"content":" from"},"logprobs":null,"finish_reason":null}]}\n\n',
        b'data: {"id":"chatcmpl-8c1e4b7a-2f3d-4e5a-9b6c-7d8e9f0a1b2c","object":"chat.completion.chunk",'
        b'"created":1755000011,"model":"llama-3.3-70b-versatile","system_fingerprint":"fp_9a8b91ba77",'
        b'"choices":[{"index":0,"delta":{"content":" groq"},"logprobs":null,"finish_reason":null}]}\n\n',
        b'data: {"id":"chatcmpl-8c1e4b7a-2f3d-4e5a-9b6c-7d8e9f0a1b2c","object":"chat.completion.chunk",'
        b'"created":1755000011,"model":"llama-3.3-70b-versatile","system_fingerprint":"fp_9a8b91ba77",'
        b'"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],'
        b'"x_groq":{"id":"req_01k2f9a0b1c2d3e4f5g6h7j8k9","usage":{"queue_time":0.044,"prompt_tokens":55,'
        b'"prompt_time":0.011,"completion_tokens":4,"completion_time":0.012,"total_tokens":59,"total_time":0.023}},'
        b'"usage":{"queue_time":0.044,"prompt_tokens":55,"prompt_time":0.011,"completion_tokens":4,'
        b'"completion_time":0.012,"total_tokens":59,"total_time":0.023}}\n\n',
        b'data: {"id":"chatcmpl-8c1e4b7a-2f3d-4e5a-9b6c-7d8e9f0a1b2c","object":"chat.completion.chunk",'
        b'"created":1755000011,"model":"llama-3.3-70b-versatile","system_fingerprint":"fp_9a8b91ba77",'
        b'"choices":[],"usage":{"queue_time":0.044,"prompt_tokens":55,"prompt_time":0.011,"completion_tokens":4,'
        b'"completion_time":0.012,"total_tokens":59,"total_time":0.023}}\n\n',
        b"data: [DONE]\n\n",
    ],
    "gemini": [
        b'data: {"choices":[{"delta":{"content":"Hello","role":"assistant"},"index":0}],"created":1766470240,'
        b'"id":"YDJKaZ2bC8uJjuMP4qSXqQ","model":"gemini-2.0-flash","object":"chat.completion.chunk"}\n\n',
        b'data: {"choices":[{"delta":{"content":" from","role":"assistant"},"index":0}],"created":1766470240,'
        b'"id":"YDJKaZ2bC8uJjuMP4qSXqQ","model":"gemini-2.0-flash","object":"chat.completion.chunk"}\n\n',
        b'data: {"choices":[{"delta":{"content":" gemini","role":"assistant"},"finish_reason":"stop","index":0}],'
        b'"created":1766470240,"id":"YDJKaZ2bC8uJjuMP4qSXqQ","model":"gemini-2.0-flash",'
        b'"object":"chat.completion.chunk","usage":{"completion_tokens":4,"prompt_tokens":46,"total_tokens":50}}\n\n',
        b"data: [DONE]\n\n",
    ],
    "deepseek": [
        b'data: {"id":"b7e3a1c2-5d4f-4a6b-8c9d-0e1f2a3b4c5d","object":"chat.completion.chunk","created":1755000012,'
        b'"model":"deepseek-chat","system_fingerprint":"fp_8802369eaa_prod0425fp8","choices":[{"index":0,'
        b'"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}\n\n',
        b'data: {"id":"b7e3a1c2-5d4f-4a6b-8c9d-0e1f2a3b4c5d","object":"chat.completion.chunk","created":1755000012,'
        b'"model":"deepseek-chat","system_fingerprint":"fp_8802369eaa_prod0425fp8","choices":[{"index":0,'
        b'"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null}\n\n',
        b'data: {"id":"b7e3a1c2-5d4f-4a6b-8c9d-0e1f2a3b4c5d","object":"chat.completion.chunk","created":1755000012,'
        b'"model":"deepseek-chat","system_fingerprint":"fp_8802369eaa_prod0425fp8","choices":[{"index":0,'
        b'"delta":{"content":" from"},"logprobs":null,"finish_reason":null}],"usage":null}\n\n',
        b'data: {"id":"b7e3a1c2-5d4f-4a6b-8c9d-0e1f2a3b4c5d","object":"chat.completion.chunk","created":1755000012,'
        b'"model":"deepseek-chat","system_fingerprint":"fp_8802369eaa_prod0425fp8","choices":[{"index":0,'
        b'"delta":{"content":" deepseek"},"logprobs":null,"finish_reason":null}],"usage":null}\n\n',
        b'data: {"id":"b7e3a1c2-5d4f-4a6b-8c9d-0e1f2a3b4c5d","object":"chat.completion.chunk","created":1755000012,'
        b'"model":"deepseek-chat","system_fingerprint":"fp_8802369eaa_prod0425fp8","choices":[{"index":0,'
        b'"delta":{"content":""},"logprobs":null,"finish_reason":"stop"}],"usage":null}\n\n',
        b'data: {"id":"b7e3a1c2-5d4f-4a6b-8c9d-0e1f2a3b4c5d","object":"chat.completion.chunk","created":1755000012,'
        b'"model":"deepseek-chat","system_fingerprint":"fp_8802369eaa_prod0425fp8","choices":[],'
        b'"usage":{"prompt_tokens":11,"completion_tokens":4,"total_tokens":15,"prompt_tokens_details":'
        b'{"cached_tokens":0},"prompt_cache_hit_tokens":0,"prompt_cache_miss_tokens":11}}\n\n',
        b"data: [DONE]\n\n",
    ],
    "ollama": [
        b'data: {"id":"chatcmpl-582","object":"chat.completion.chunk","created":1755000013,"model":"llama3.2:latest",'
        b'"system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"},'
        b'"finish_reason":null}]}\n\n',
        b'data: {"id":"chatcmpl-582","object":"chat.completion.chunk","created":1755000013,"model":"llama3.2:latest",'
        b'"system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":" from"},'
        b'"finish_reason":null}]}\n\n',
        b'data: {"id":"chatcmpl-582","object":"chat.completion.chunk","created":1755000013,"model":"llama3.2:latest",'
        b'"system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":" ollama"},'
        b'"finish_reason":null}]}\n\n',
        b'data: {"id":"chatcmpl-582","object":"chat.completion.chunk","created":1755000013,"model":"llama3.2:latest",'
        b'"system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":""},'
        b'"finish_reason":"stop"}]}\n\n',
        b'data: {"id":"chatcmpl-582","object":"chat.completion.chunk","created":1755000013,"model":"llama3.2:latest",'
        b'"system_fingerprint":"fp_ollama","choices":[],"usage":{"prompt_tokens":27,"completion_tokens":4,'
        b'"total_tokens":31}}\n\n',
        b"data: [DONE]\n\n",
    ],
}


# Embeddings (OpenAI list shape, 4 floats). Groq and DeepSeek have no embeddings API.
# openai: R cassettes/clients/openai_test_rb/test_embeddings_api.yml (vector shortened to 4 floats).
# gemini: ? shape on the compat endpoint unconfirmed (usage especially, PROVIDERS.md §8); alphabetical keys assumed.
# ollama: D ollama/ollama openai/openai.go EmbeddingList.
EMBEDDINGS_OK: dict[str, bytes] = {
    "openai": (
        b'{"object":"list","data":[{"object":"embedding","embedding":[0.0023064255,-0.009327292,-0.0028842222,'
        b'0.017836425],"index":0}],"model":"text-embedding-3-small","usage":{"prompt_tokens":2,"total_tokens":2}}'
    ),
    "gemini": (
        b'{"data":[{"embedding":[0.0123091,-0.04211325,0.0057783,0.03094231],"index":0,"object":"embedding"}],'
        b'"model":"text-embedding-004","object":"list","usage":{"prompt_tokens":2,"total_tokens":2}}'
    ),
    "ollama": (
        b'{"object":"list","data":[{"object":"embedding","embedding":[0.010071029,-0.0017594862,0.05007221,'
        b'0.04692972],"index":0}],"model":"nomic-embed-text:latest","usage":{"prompt_tokens":2,"total_tokens":2}}'
    ),
}


# GET /models list bodies.
# openai: D ListCompletion shape (mirrored in ollama/ollama openai/openai.go); entries plausible.
# groq: ? Groq adds active/context_window/public_apps/max_completion_tokens per model (not in PROVIDERS.md).
# gemini: ids listed as models/<name> (PROVIDERS.md §3); remaining fields ?.
# deepseek: models deepseek-chat, deepseek-reasoner, list shape as OpenAI (PROVIDERS.md §4).
# ollama: D ollama/ollama openai/openai.go ToListCompletion (owned_by = namespace "library").
MODELS_OK: dict[str, bytes] = {
    "openai": (
        b'{"object":"list","data":[{"id":"gpt-4o-mini-2024-07-18","object":"model","created":1721172717,'
        b'"owned_by":"system"},{"id":"gpt-4o-mini","object":"model","created":1721172741,"owned_by":"system"},'
        b'{"id":"text-embedding-3-small","object":"model","created":1705948997,"owned_by":"system"}]}'
    ),
    "groq": (
        b'{"object":"list","data":[{"id":"llama-3.3-70b-versatile","object":"model","created":1733447754,'
        b'"owned_by":"Meta","active":true,"context_window":131072,"public_apps":null,"max_completion_tokens":32768}]}'
    ),
    "gemini": (
        b'{"object":"list","data":[{"id":"models/gemini-2.0-flash","object":"model","owned_by":"google"},'
        b'{"id":"models/text-embedding-004","object":"model","owned_by":"google"}]}'
    ),
    "deepseek": (
        b'{"object":"list","data":[{"id":"deepseek-chat","object":"model","owned_by":"deepseek"},'
        b'{"id":"deepseek-reasoner","object":"model","owned_by":"deepseek"}]}'
    ),
    "ollama": (
        b'{"object":"list","data":[{"id":"llama3.2:latest","object":"model","created":1755000000,'
        b'"owned_by":"library"},{"id":"nomic-embed-text:latest","object":"model","created":1754990000,'
        b'"owned_by":"library"}]}'
    ),
}


# DeepSeek GET /user/balance (free; used by `gateway doctor`).
# OK: D https://api-docs.deepseek.com/zh-cn/api/get-user-balance.md (the documented example, verbatim).
# EMPTY: ? the documented shape with is_available false and zero balances ("whether the account has balance
#   available for API calls"); no recorded empty answer was found.
DEEPSEEK_BALANCE_OK = (
    b'{"is_available":true,"balance_infos":[{"currency":"CNY","total_balance":"110.00",'
    b'"granted_balance":"10.00","topped_up_balance":"100.00"}]}'
)
DEEPSEEK_BALANCE_EMPTY = (
    b'{"is_available":false,"balance_infos":[{"currency":"CNY","total_balance":"0.00",'
    b'"granted_balance":"0.00","topped_up_balance":"0.00"}]}'
)

# Legacy text completions (SURFACE.md §2): `object: "text_completion"`, `choices[].text`, the same shape
# streamed; with include_usage a last `choices: []` chunk carries usage. openai: D ex_openai
# CreateCompletionResponse + OpenAI's stream_options docs; ollama: D ollama openai/openai.go
# (ToCompletion/ToCompleteChunk, `fp_ollama`), usage chunk as for its chat.
COMPLETIONS_OK: dict[str, bytes] = {
    "openai": (
        b'{"id":"cmpl-C4nX2fQ9rT1bY8uV3wZ6kL0pHs","object":"text_completion","created":1755000020,'
        b'"model":"gpt-3.5-turbo-instruct:20230824-v2","choices":[{"text":"Hello from openai","index":0,'
        b'"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":4,"total_tokens":9}}'
    ),
    "ollama": (
        b'{"id":"cmpl-412","object":"text_completion","created":1755000021,"model":"llama3.2",'
        b'"system_fingerprint":"fp_ollama","choices":[{"text":"Hello from ollama","index":0,"finish_reason":"stop"}],'
        b'"usage":{"prompt_tokens":27,"completion_tokens":4,"total_tokens":31}}'
    ),
}


def _completion_events(flavor: str, model: str, words: list[str], usage: bytes) -> list[bytes]:
    head = b'data: {"id":"cmpl-s1","object":"text_completion","created":1755000030,"model":"%s",' % model.encode()
    events = [head + b'"choices":[{"text":"%s","index":0,"finish_reason":null}]}\n\n' % w.encode() for w in words]
    events.append(head + b'"choices":[{"text":"","index":0,"finish_reason":"stop"}]}\n\n')
    events.append(head + b'"choices":[],"usage":' + usage + b"}\n\n")
    return [*events, b"data: [DONE]\n\n"]


COMPLETIONS_STREAM_OK: dict[str, list[bytes]] = {
    flavor: _completion_events(flavor, model, ["Hello", " from", f" {flavor}"], usage)
    for flavor, model, usage in (
        ("openai", "gpt-3.5-turbo-instruct", b'{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}'),
        ("ollama", "llama3.2", b'{"prompt_tokens":27,"completion_tokens":3,"total_tokens":30}'),
    )
}


# ------------------------------------------ speech ------------------------------------------------
# POST /audio/speech answers raw audio, chunked, with a content-type per format (SURFACE.md §1:
# Kokoro-FastAPI's mapping; OpenAI's is unconfirmed but alike). Each flavor's audio is distinct bytes
# in several chunks, so a test can tell who spoke and that every chunk arrived, in order.
SPEECH_CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}


def speech_audio(flavor: str, chunks: int = 4, size: int = 3000) -> list[bytes]:
    """Known audio bytes from `flavor`: `chunks` pieces of `size` bytes."""
    return [bytes([index]) + (f"{flavor} audio {index} ".encode() * size)[: size - 1] for index in range(chunks)]


ERROR_CASES += [
    ErrorCase(
        id="groq-400-speech-format",
        flavor="groq",
        status=400,
        body=(
            b'{"error":{"message":"response_format must be one of [wav]","type":"invalid_request_error",'
            b'"param":"response_format"}}'
        ),
        expect="caller_fault",
        source="[B] openclaw/openclaw#62215 (SURFACE.md §1, Groq)",
    ),
]
