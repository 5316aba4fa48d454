"""/v1/: the OpenAI-compatible gateway (included by portal/urls.py)."""

from django.urls import path

from serving import gateway_views

app_name = "gateway"
urlpatterns = [
    path("chat/completions", gateway_views.chat_completions, name="chat_completions"),
    path("completions", gateway_views.completions, name="completions"),
    path("models", gateway_views.models, name="models"),
]
