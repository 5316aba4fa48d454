"""The REST API's one root (`/api/`): every app's viewsets, listed together."""

from rest_framework.routers import DefaultRouter

from governance.api.urls import router as governance_router
from serving.api_urls import router as serving_router
from workflow.api_urls import router as workflow_router

router = DefaultRouter()
for app_router in (governance_router, workflow_router, serving_router):
    router.registry.extend(app_router.registry)

urlpatterns = router.urls


def not_found(request, exception=None):
    """The portal's 404 handler (portal/urls.py): a JSON body for any path under /api/ that no
    route matches, as the API's own 404s are; Django's page everywhere else."""
    from django.http import JsonResponse
    from django.views.defaults import page_not_found

    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "No API endpoint at this path: GET /api/ lists them."}, status=404)
    if request.path.startswith("/v1/"):  # the gateway's clients read OpenAI-shaped errors
        return JsonResponse({"error": {"message": "No gateway endpoint at this path: POST /v1/chat/completions, POST "
                                       "/v1/completions or GET /v1/models.", "type": "invalid_request_error", "param": None,
                                       "code": "not_found"}}, status=404)
    return page_not_found(request, exception)
