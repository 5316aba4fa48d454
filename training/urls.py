from django.urls import path

from training import views

app_name = "training"

urlpatterns = [
    path("review/", views.ReviewQueueView.as_view(), name="review_queue"),
    path("review/<int:pk>/", views.ReviewDetailView.as_view(), name="review_detail"),
]

urlpatterns += [
    path("runs/", views.RunListView.as_view(), name="run_list"),
    path("runs/<int:pk>/", views.RunDetailView.as_view(), name="run_detail"),
    path("runs/<int:pk>/cancel/", views.RunCancelView.as_view(), name="run_cancel"),
    path("runs/<int:pk>/artifacts/<int:artifact_pk>/", views.RunArtifactView.as_view(), name="run_artifact"),
]
