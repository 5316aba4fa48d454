from django.urls import path

from serving import views

app_name = "serving"
urlpatterns = [
    path("deployments/", views.DeploymentListView.as_view(), name="deployment_list"),
    path("deployments/<int:pk>/", views.DeploymentDetailView.as_view(), name="deployment_detail"),
    path("deployments/<int:pk>/keys/", views.IssueKeyView.as_view(), name="issue_key"),
    path("deployments/<int:pk>/<str:verb>/", views.StateChangeView.as_view(), name="change_state"),
    path("runs/<int:run_pk>/deploy/", views.DeployView.as_view(), name="deploy"),
    path("keys/<int:pk>/revoke/", views.RevokeKeyView.as_view(), name="revoke_key"),
    path("flagged/", views.FlaggedQueueView.as_view(), name="flagged_queue"),
    path("flagged/<int:pk>/", views.FlaggedDetailView.as_view(), name="flagged_detail"),
]
