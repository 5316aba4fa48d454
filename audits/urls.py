from django.urls import path

from audits import pack_views, views

app_name = "audits"

urlpatterns = [
    path("<int:pk>/", views.AuditDetailView.as_view(), name="audit_detail"),
    path("<int:pk>/report.json", views.AuditReportJsonView.as_view(), name="audit_json"),
    path("<int:pk>/charts/<slug:name>.svg", views.AuditChartView.as_view(), name="audit_chart"),
    path("runs/<int:pk>/audit/", views.AuditRequestView.as_view(), name="audit_request"),
    path("runs/<int:pk>/decision/", views.ReleaseDecisionView.as_view(), name="release_decision"),
    path("runs/<int:pk>/adapter.zip", views.AdapterDownloadView.as_view(), name="adapter_download"),
    # Evidence packs
    path("runs/<int:pk>/pack/", pack_views.PackBuildView.as_view(), name="pack_build"),
    path("packs/", pack_views.PackListView.as_view(), name="pack_list"),
    path("packs/<int:pk>/", pack_views.PackDetailView.as_view(), name="pack_detail"),
    path("packs/<int:pk>/pack.zip", pack_views.PackDownloadView.as_view(), name="pack_download"),
    path("signing-key/", pack_views.PublicKeyView.as_view(), name="public_key"),
    path("signing-key.pem", pack_views.PublicKeyPemView.as_view(), name="public_key_pem"),
    path("verify/", pack_views.VerifyPackView.as_view(), name="verify_pack"),
]

from audits import sharing_views  # noqa: E402

urlpatterns += [
    path("packs/<int:pk>/shares/", sharing_views.PackSharesView.as_view(), name="pack_shares"),
    path("shares/<int:pk>/revoke/", sharing_views.ShareRevokeView.as_view(), name="share_revoke"),
    path("shared-with-me/", sharing_views.SharedWithMeView.as_view(), name="shared_with_me"),
]
