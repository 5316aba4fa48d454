"""The gateway's three endpoints under /v1/ (portal/urls.py). Authenticated by the consumer's key
only: no session, no CSRF (no cookie is ever read, so there is nothing to forge)."""

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from serving import gateway


def _wrong_method(request, allowed: str) -> JsonResponse:
    response = JsonResponse({"error": {"message": f"Use {allowed} for {request.path}.", "type": "invalid_request_error",
                                       "param": None, "code": "method_not_allowed"}}, status=405)
    response["Allow"] = allowed
    return response


@csrf_exempt
def chat_completions(request):
    if request.method != "POST":
        return _wrong_method(request, "POST")
    return gateway.handle_completion(request, gateway.CHAT)


@csrf_exempt
def completions(request):
    if request.method != "POST":
        return _wrong_method(request, "POST")
    return gateway.handle_completion(request, gateway.COMPLETIONS)


@csrf_exempt
def models(request):
    if request.method != "GET":
        return _wrong_method(request, "GET")
    return gateway.handle_models(request)
