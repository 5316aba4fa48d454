from rest_framework.routers import DefaultRouter

from serving import api

router = DefaultRouter()
router.register("deployments", api.DeploymentViewSet, basename="deployment")

urlpatterns = router.urls
