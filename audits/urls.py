from django.urls import path

from audits import views

app_name = "audits"

urlpatterns = [
    path("<int:pk>/", views.AuditDetailView.as_view(), name="audit_detail"),
    path("<int:pk>/report.json", views.AuditReportJsonView.as_view(), name="audit_json"),
    path("<int:pk>/charts/<slug:name>.svg", views.AuditChartView.as_view(), name="audit_chart"),
    path("runs/<int:pk>/audit/", views.AuditRequestView.as_view(), name="audit_request"),
    path("runs/<int:pk>/decision/", views.ReleaseDecisionView.as_view(), name="release_decision"),
    path("runs/<int:pk>/adapter.zip", views.AdapterDownloadView.as_view(), name="adapter_download"),
]

from audits import sharing_views  # noqa: E402

urlpatterns += [
    path("packs/<int:pk>/shares/", sharing_views.PackSharesView.as_view(), name="pack_shares"),
    path("shares/<int:pk>/revoke/", sharing_views.ShareRevokeView.as_view(), name="share_revoke"),
    path("shared-with-me/", sharing_views.SharedWithMeView.as_view(), name="shared_with_me"),
]
