from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from governance import mfa_views
from portal import views

urlpatterns = [
    path("", views.DashboardView.as_view(), name="dashboard"),
    path("login/", mfa_views.LoginView.as_view(), name="login"),  # the password, then the second factor
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/token/", views.ApiTokenView.as_view(), name="api_token"),
    path("account/", include("governance.mfa_urls")),
    path("account/reset/<uidb64>/<token>/", views.PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
    path("account/reset/done/", views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("healthz", views.health, name="health"),
    path("governance/", include("governance.urls")),
    path("governance/", include("workflow.urls")),
    path("training/", include("training.urls")),
    path("audits/", include("audits.urls")),
    path("audits/", include("workflow.pack_urls")),
    path("serving/", include("serving.urls")),
    path("v1/", include("serving.gateway_urls")),  # the OpenAI-compatible gateway: consumer keys, not sessions
    path("monitoring/", include("incidents.urls")),
    path("api/", include("portal.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api_schema"), name="api_docs"),
    path("admin/", admin.site.urls),
]

# A path no route matches: JSON under /api/ (an id the router's pattern refuses, such as `4.5`), as
# the API's own 404s are; the HTML page everywhere else.
handler404 = "portal.api_urls.not_found"
