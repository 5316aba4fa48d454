from django.urls import path

from training import views

app_name = "training"

urlpatterns = [
    path("review/", views.ReviewQueueView.as_view(), name="review_queue"),
    path("review/<int:pk>/", views.ReviewDetailView.as_view(), name="review_detail"),
]
