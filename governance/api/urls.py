from rest_framework.routers import DefaultRouter

from governance.api import views

router = DefaultRouter()
router.register("data-classes", views.DataClassViewSet, basename="dataclass")
router.register("processors", views.ProcessorViewSet, basename="processor")
router.register("attestations", views.AttestationViewSet, basename="attestation")
router.register("dpas", views.DataProcessingAgreementViewSet, basename="dataprocessingagreement")
router.register("compute-targets", views.ComputeTargetViewSet, basename="computetarget")
router.register("redaction-rules", views.RedactionRuleViewSet, basename="redactionrule")
router.register("datasets", views.DatasetViewSet, basename="dataset")
router.register("audit-events", views.AuditEventViewSet, basename="auditevent")

urlpatterns = router.urls
