from rest_framework.routers import DefaultRouter

from workflow import api

router = DefaultRouter()
router.register("requests", api.TrainingRequestViewSet, basename="trainingrequest")
router.register("runs", api.TrainingRunViewSet, basename="trainingrun")

urlpatterns = router.urls
