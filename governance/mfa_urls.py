"""The user's own second factor and justifications, under /account/ (`mfa` namespace)."""

from django.urls import path

from governance import mfa_views

app_name = "mfa"

urlpatterns = [
    path("second-factor/", mfa_views.SetupView.as_view(), name="setup"),
    path("second-factor/verify/", mfa_views.VerifyView.as_view(), name="verify"),
    path("justify/", mfa_views.JustifyView.as_view(), name="justify"),
]
