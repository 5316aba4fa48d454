"""The REST API's one root (`/api/`): every app's viewsets, listed together."""

from rest_framework.routers import DefaultRouter

from governance.api.urls import router as governance_router
from workflow.api_urls import router as workflow_router

router = DefaultRouter()
for app_router in (governance_router, workflow_router):
    router.registry.extend(app_router.registry)

urlpatterns = router.urls
