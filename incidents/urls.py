from django.urls import path

from incidents import views

app_name = "incidents"
urlpatterns = [
    path("alerts/", views.AlertListView.as_view(), name="alert_list"),
    path("alerts/<int:pk>/acknowledge/", views.AlertAcknowledgeView.as_view(), name="alert_acknowledge"),
    path("incidents/", views.IncidentListView.as_view(), name="incident_list"),
    path("incidents/new/", views.IncidentOpenView.as_view(), name="incident_open"),
    path("incidents/<int:pk>/", views.IncidentDetailView.as_view(), name="incident_detail"),
    path("incidents/<int:pk>/contain/<str:what>/", views.IncidentContainView.as_view(), name="incident_contain"),
    path("incidents/<int:pk>/notification/", views.IncidentNotificationView.as_view(), name="incident_notification"),
    path("incidents/<int:pk>/close/", views.IncidentCloseView.as_view(), name="incident_close"),
    path("incidents/<int:pk>/packs/", views.IncidentPackBuildView.as_view(), name="incident_pack_build"),
    path("incidents/<int:pk>/packs/<int:pack_pk>/", views.IncidentPackDownloadView.as_view(), name="incident_pack_download"),
    path("watermark/", views.WatermarkDetectView.as_view(), name="watermark_detect"),
]
